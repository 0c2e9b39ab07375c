"""An iPhone photo (HEIC, taken sideways) with AVIF and HEIC tiles, uploaded through the real web and built by a
worker; an AVIF whose header declares too many pixels is refused at the door."""

from __future__ import annotations

import io
import json
import struct
import urllib.request
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import redis
from PIL import Image

from tests.helpers.images import make_target, make_tiles, resemblance
from tests.helpers.keeper import queued_count
from tests.helpers.web import WebServer
from workers.cli import client
from workers.protocol.keys import Keys
from workers.service.daemon import Worker

pytestmark = pytest.mark.integration


def encoded(array: np.ndarray, fmt: str, exif: Image.Exif | None = None) -> bytes:
    buffer = io.BytesIO()
    extra = {"exif": exif.tobytes()} if exif is not None else {}
    Image.fromarray(array.astype(np.uint8), "RGB").save(buffer, fmt, quality=95, **extra)
    return buffer.getvalue()


def post(web: WebServer, files: list[tuple[str, str, bytes]], fields: dict[str, str]) -> tuple[int, dict]:
    body, content_type = client.encode_multipart(fields, files)
    return client.request(web.base_url + "/api/mosaics", body, content_type)


def test_heic_target_and_avif_heic_tiles_are_built_upright(web: WebServer, r: redis.Redis) -> None:
    stored = make_target(240, 160)  # landscape pixels, as the phone's sensor stores them
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view: a portrait photo
    upright = np.rot90(stored, k=-1)  # what the person saw: 160 wide, 240 tall
    tiles = make_tiles(32)
    files = [("target", "IMG_0001.HEIC", encoded(stored, "HEIF", exif))]
    files += [("tiles", f"t{n}.{'avif' if n % 2 else 'heic'}", encoded(t, "AVIF" if n % 2 else "HEIF"))
              for n, t in enumerate(tiles)]
    status, reply = post(web, files, {"grid": "8", "tile_px": "10"})
    assert status == 202, reply
    package = json.loads(cast(str, r.hget(Keys(web.settings.redis.prefix).job(reply["id"]), "package")))
    assert package["target"].split("?")[0].endswith("/target.heic")
    assert {url.split("?")[0].rsplit(".", 1)[1] for url in package["tiles"]} == {"avif", "heic"}
    with urllib.request.urlopen(package["target"]) as fetched:  # the worker's view of the upload
        assert fetched.headers["Content-Type"].startswith("image/")

    worker = Worker(web.settings, slot=0)
    for _ in range(5):
        if not worker.run_once():
            break
    view = client.request(web.base_url + reply["status_url"])[1]
    assert view["state"] == "done", view
    assert view["details"]["tiles_used"] == 32 and view["details"]["grid"] == "8x12"  # portrait: upright
    mosaic = np.asarray(Image.open(Path(web.settings.paths.media) / f"{reply['id']}.jpg").convert("RGB"))
    assert mosaic.shape == (120, 80, 3)
    error, random_error = resemblance(mosaic, np.ascontiguousarray(upright), tiles, cols=8, rows=12)
    assert error < 0.5 * random_error, (error, random_error)


def test_an_avif_declaring_too_many_pixels_is_refused_before_decoding(web: WebServer, r: redis.Redis) -> None:
    data = encoded(make_target(96, 64), "AVIF")
    at = data.find(b"ispe")
    bomb = data[: at + 8] + struct.pack(">II", 12000, 12000) + data[at + 16:]  # a 144-megapixel header
    tile = encoded(make_tiles(1)[0], "HEIF")
    status, reply = post(web, [("target", "t.avif", bomb), ("tiles", "a.heic", tile)], {"grid": "8"})
    assert status == 413, reply
    assert reply["error"]["code"] == "too_large" and "12000x12000" in reply["error"]["message"]
    assert queued_count(r, Keys(web.settings.redis.prefix)) == 0
