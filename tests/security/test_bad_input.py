"""Bad input through the real web app (waitress, Redis): each once answered HTTP 500 (issue 13, finding 13).

An MPO camera file is taken as a JPEG; a host that does not resolve, a host with an empty label and a name that
resolves to a loopback address each get a 400 JSON error, and the reply never says what a name resolves to."""

from __future__ import annotations

import io
import json
import socket
import time
import urllib.request

import pytest
import redis
from PIL import Image

from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.keeper import queued_count
from tests.helpers.web import WebServer
from workers.cli import client
from workers.protocol.keys import Keys

pytestmark = pytest.mark.integration


def mpo(size: tuple[int, int], colours: tuple[tuple[int, int, int], tuple[int, int, int]]) -> bytes:
    buffer = io.BytesIO()
    first, second = (Image.new("RGB", size, colour) for colour in colours)
    first.save(buffer, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(buffer.getvalue())).format == "MPO"
    return buffer.getvalue()


def post_json(web: WebServer, target: str, tiles: list[str]) -> tuple[int, dict]:
    body = json.dumps({"target_url": target, "tile_urls": tiles, "options": {"grid": "10", "tile_px": "8"}})
    return client.request(web.base_url + "/api/mosaics", body.encode(), "application/json")


def refusal(reply: tuple[int, dict]) -> str:
    status, payload = reply
    assert status == 400, payload
    assert set(payload) == {"error"} and set(payload["error"]) == {"code", "message"}
    assert payload["error"]["code"] == "url_refused"
    return str(payload["error"]["message"])


def queued(r: redis.Redis, web: WebServer) -> int:
    return queued_count(r, Keys(web.settings.redis.prefix))


def test_an_mpo_target_and_tile_are_queued_as_jpegs(web: WebServer, r: redis.Redis) -> None:
    target = mpo((240, 160), ((200, 30, 30), (30, 200, 30)))
    tiles = [mpo((32, 32), ((30, 30, 200), (200, 200, 30)))] + [encode(t) for t in make_tiles(3)]
    status, reply = client.submit(web.base_url, target, tiles, {"grid": "12", "tile_px": "8"})
    assert status == 202, reply
    assert queued(r, web) == 1
    package = json.loads(str(r.hget(Keys(web.settings.redis.prefix).job(reply["id"]), "package")))
    assert package["target"].split("?")[0].endswith("/target.jpg")
    assert package["tiles"][0].split("?")[0].endswith(".jpg")
    with urllib.request.urlopen(package["target"]) as fetched:  # what the worker will decode: the whole file
        assert fetched.read() == target


@pytest.mark.parametrize("url", ["http://no-such-host.invalid/x.png", "http://a..b/x.png", "http://.x.test/x.png"])
def test_a_bad_host_is_a_400_not_a_500(web: WebServer, r: redis.Redis, url: str) -> None:
    as_target = refusal(post_json(web, url, ["http://127.0.0.1:9/a.png"]))
    as_tile = refusal(post_json(web, "http://127.0.0.1:9/t.png", ["http://127.0.0.1:9/a.png", url]))
    host = url.split("/")[2]
    assert host in as_target and host in as_tile
    assert queued(r, web) == 0


def test_a_bad_host_in_a_form_is_a_400(web: WebServer, r: redis.Redis) -> None:
    status, reply = client.submit(web.base_url, encode(make_target()), [encode(make_tiles(1)[0])],
                                  {"grid": "10"}, tile_urls=["http://a..b/x.png", "http://no-such-host.invalid/y"])
    assert status == 400 and reply["error"]["code"] == "url_refused", reply
    assert queued(r, web) == 0


def test_a_name_that_resolves_to_loopback_is_refused_without_its_address(web: WebServer, r: redis.Redis) -> None:
    addresses = {str(info[4][0]) for info in socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)}
    assert addresses  # 127.0.0.1 here (and ::1): only 127.0.0.1 itself is allowlisted in the test settings
    message = refusal(post_json(web, "http://localhost:9/t.png", ["http://127.0.0.1:9/a.png"]))
    assert "localhost is not an allowed host" in message
    for address in addresses | {"127.0.0.1", "::1"}:
        assert address not in message
    assert queued(r, web) == 0


def test_many_bad_hosts_answer_promptly(web: WebServer, r: redis.Redis) -> None:
    tiles = [f"http://no-such-host-{n}.invalid/x.png" for n in range(40)]
    started = time.monotonic()
    refusal(post_json(web, "http://127.0.0.1:9/t.png", tiles))
    assert time.monotonic() - started < 15  # the lookup budget (5 s) and a slow CI's margin
    assert queued(r, web) == 0
