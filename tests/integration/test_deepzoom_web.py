"""The zoomable view end to end: a real worker and Redis make it, the real web app serves it (and nothing else)."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis
from PIL import Image

from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.web import WebServer
from workers.cli import client
from workers.service.daemon import Worker

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, str, bytes]:
    """(status, content type, body) without raising on 4xx."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=30) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def test_finished_job_has_a_zoomable_view_the_web_serves(web: WebServer, r: redis.Redis,
                                                         file_server: tuple[str, Path]) -> None:
    base, folder = file_server
    tiles = make_tiles(12)
    (folder / "by-url.png").write_bytes(encode(tiles[0]))
    status, reply = client.submit(web.base_url, encode(make_target()), [encode(t) for t in tiles[1:]],
                                  {"grid": "24x16", "tile_px": "16"}, tile_urls=[f"{base}/by-url.png"])
    assert status == 202, reply
    worker = Worker(web.settings, slot=0)
    while worker.run_once():
        pass
    code, view = client.request(web.base_url + reply["status_url"])
    assert view["state"] == "done", view
    folder_url = f"/media/{reply['id']}.dz"
    assert view["dzi_url"] == f"{folder_url}/image.dzi" and view["tilemap_url"] == f"{folder_url}/map.json"
    assert view["thumb_url"] == f"{folder_url}/thumb.jpg" and view["result_url"] == f"/media/{reply['id']}.jpg"
    assert view["details"]["timings"]["deepzoom"] > 0

    status, kind, body = get(web.base_url + view["dzi_url"])
    assert status == 200 and kind.startswith("application/xml")
    assert b'TileSize="254"' in body and b'Width="384" Height="256"' in body
    status, kind, body = get(web.base_url + f"{folder_url}/image_files/9/1_0.jpg")  # 384x256: top level 9
    assert status == 200 and kind == "image/jpeg" and Image.open(io.BytesIO(body)).size == (384 - 253, 255)
    status, kind, body = get(web.base_url + view["thumb_url"])
    assert status == 200 and Image.open(io.BytesIO(body)).size == (320, 213)
    status, kind, body = get(web.base_url + view["tilemap_url"])
    tile_map = json.loads(body)
    assert status == 200 and tile_map["cols"] == 24 and tile_map["rows"] == 16 and len(tile_map["cells"]) == 384
    labels = set(tile_map["labels"])
    assert labels <= {f"tile{i}.png" for i in range(11)} | {f"{base}/by-url.png"}  # names, never signed URLs
    assert len(labels) > 5

    for path in (f"{folder_url}/../../etc/passwd", "/media/x.dz/../../etc/passwd", f"{folder_url}/image_files/9",
                 f"{folder_url}/image_files/9/1_0.png", f"{folder_url}/other.json", f"{folder_url}/",
                 f"{folder_url}", "/media/..%2F..%2Fetc%2Fpasswd",
                 f"/media/{reply['id']}.dz/image_files/100/0_0.jpg"):
        assert get(web.base_url + path)[0] == 404, path
    assert not list(Path(web.settings.paths.media).glob(".*"))  # no temporaries left behind
