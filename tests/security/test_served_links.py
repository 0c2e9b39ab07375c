"""/media and /inputs through the real web app never follow a link out of their folder.

A worker node writes into the media folder; had it planted ``<id>.jpg`` → the web host's config/local.yaml
(or a ``<id>.dz`` folder → /etc), the web would have served the secret. Every link (file or folder, pointing
out or in) and every second name of a file (a hardlink) answers 404, as a missing file does, while the
regular files beside them are served, with Range and caching headers as before.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from tests.helpers.settings import SettingsFactory
from tests.helpers.web import WebServer, serving
from web.inputs import InputStore

pytestmark = pytest.mark.integration

SECRET = b"redis:\n  password: the-web-hosts-own-secret\n"
JOB = "L" * 22
GOOD = "G" * 22
RESULT = b"\xff\xd8 a real result"


def get(url: str, **headers: str) -> tuple[int, Message, bytes]:
    """(status, headers, body) without raising on 4xx."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=30) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A stand-in for config/local.yaml: outside both folders, readable by the web."""
    path = tmp_path / "config" / "local.yaml"
    path.parent.mkdir()
    path.write_bytes(SECRET)
    return path


@pytest.fixture
def web(make_settings: SettingsFactory) -> Iterator[WebServer]:
    with serving(make_settings) as server:
        for folder in (server.settings.paths.media, server.settings.paths.uploads):
            Path(folder).mkdir(parents=True, exist_ok=True)
        yield server


def assert_refused(url: str) -> None:
    status, headers, body = get(url)
    assert status == 404, (url, status, body)
    assert SECRET not in body and b"the-web-hosts-own-secret" not in body
    assert headers["Content-Type"] == "application/json" and json.loads(body)["error"]["code"] == "not_found"


def test_links_in_the_media_folder_are_not_followed(web: WebServer, secret: Path) -> None:
    media = Path(web.settings.paths.media)
    (media / f"{GOOD}.jpg").write_bytes(RESULT)
    (media / f"{JOB}.jpg").symlink_to(secret)  # a file link out of the folder
    (media / f"{JOB}a.png").symlink_to(media / f"{GOOD}.jpg")  # a link inside the folder: refused too
    outside = secret.parent / "dz"
    (outside / "image_files" / "0").mkdir(parents=True)
    (outside / "map.json").write_bytes(SECRET)
    (outside / "image_files" / "0" / "0_0.jpg").write_bytes(SECRET)
    (media / f"{JOB}.dz").symlink_to(outside, target_is_directory=True)  # a folder link out
    real = media / f"{GOOD}.dz"
    (real / "image_files").mkdir(parents=True)
    (real / "image_files" / "0").symlink_to(outside / "image_files" / "0", target_is_directory=True)
    (real / "thumb.jpg").write_bytes(b"thumb")
    os.link(secret, real / "map.json")  # a second name of the secret (same inode), not a link

    for name in (f"{JOB}.jpg", f"{JOB}a.png", f"{JOB}.dz/map.json", f"{JOB}.dz/image_files/0/0_0.jpg",
                 f"{GOOD}.dz/image_files/0/0_0.jpg", f"{GOOD}.dz/map.json"):
        assert_refused(f"{web.base_url}/media/{name}")

    status, headers, body = get(f"{web.base_url}/media/{GOOD}.jpg")
    assert status == 200 and body == RESULT and headers["Content-Type"] == "image/jpeg"
    assert headers["Accept-Ranges"] == "bytes" and headers["ETag"] and headers["Last-Modified"]
    status, headers, body = get(f"{web.base_url}/media/{GOOD}.jpg", Range="bytes=3-6")
    assert status == 206 and body == b"a re" and headers["Content-Range"] == f"bytes 3-6/{len(RESULT)}"
    status, _, _ = get(f"{web.base_url}/media/{GOOD}.jpg", **{"If-None-Match": headers["ETag"]})
    assert status == 304
    assert get(f"{web.base_url}/media/{GOOD}.dz/thumb.jpg")[2] == b"thumb"


def test_links_in_the_uploads_folder_are_not_followed(web: WebServer, secret: Path) -> None:
    s = web.settings
    inputs = InputStore(s.paths.uploads, s.web.signing_key, s.web.public_url, s.web.input_url_ttl)
    good_url = inputs.save(GOOD, "target.png", b"an uploaded picture")
    link_url = inputs.save(JOB, "target.png", b"replaced below")
    uploads = Path(s.paths.uploads)
    (uploads / JOB / "target.png").unlink()
    (uploads / JOB / "target.png").symlink_to(secret)  # a file link, at a name the web signed
    folder_url = inputs.url("F" * 22, "tile-0.png")
    (uploads / ("F" * 22)).symlink_to(secret.parent, target_is_directory=True)  # a folder link
    (secret.parent / "tile-0.png").write_bytes(SECRET)

    assert_refused(link_url)
    assert_refused(folder_url)
    status, _, body = get(good_url)
    assert status == 200 and body == b"an uploaded picture"
