"""The HTTP API on a real server against a real Redis: good requests queue, bad ones queue nothing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import cast

import pytest
import redis

from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.keeper import queued_count
from tests.helpers.processes import free_port
from tests.helpers.settings import SettingsFactory
from tests.helpers.web import WebServer, serving
from workers.cli import client
from workers.protocol.keys import Keys

pytestmark = pytest.mark.integration


def queued(r: redis.Redis, web: WebServer) -> int:
    return queued_count(r, Keys(web.settings.redis.prefix))


def post_json(web: WebServer, body: bytes) -> tuple[int, dict]:
    return client.request(web.base_url + "/api/mosaics", body, "application/json")


def assert_error(reply: tuple[int, dict], status: int, code: str | None = None) -> str:
    got_status, payload = reply
    assert got_status == status, payload
    assert set(payload["error"]) == {"code", "message"}
    if code:
        assert payload["error"]["code"] == code
    return str(payload["error"]["message"])


def test_multipart_submission_is_queued_with_signed_inputs(web: WebServer, r: redis.Redis) -> None:
    tiles = [encode(t) for t in make_tiles(5)]
    status, reply = client.submit(web.base_url, encode(make_target()), tiles, {"grid": "12", "tile_px": "8"})
    assert status == 202, reply
    assert set(reply) == {"id", "status_url", "page_url", "delete_token"}
    assert len(reply["id"]) >= 22
    assert queued(r, web) == 1
    code, view = client.request(web.base_url + reply["status_url"])
    assert code == 200 and view["state"] == "queued" and view["progress"] == 0
    package = json.loads(cast(str, r.hget(Keys(web.settings.redis.prefix).job(reply["id"]), "package")))
    assert package["v"] == 1 and len(package["tiles"]) == 5
    assert package["options"].items() >= {"cols": 12, "rows": 0, "tile_px": 8, "seed": 0}.items()
    with urllib.request.urlopen(package["target"]) as fetched:  # the worker's view of an upload
        assert fetched.read() == encode(make_target())
    page = urllib.request.urlopen(web.base_url + reply["page_url"]).read().decode()
    assert reply["status_url"] in page


def test_json_submission_with_urls(web: WebServer, r: redis.Redis) -> None:
    body = {"target_url": "http://127.0.0.1:9/t.png", "tile_urls": ["http://127.0.0.1:9/a.png"],
            "options": {"grid": "20x10", "tile_px": 16, "seed": 7}}
    status, reply = post_json(web, json.dumps(body).encode())
    assert status == 202, reply
    assert queued(r, web) == 1


@pytest.mark.parametrize(
    ("fields", "files", "status", "code"),
    [
        ({"grid": "10"}, [("target", "t.png", b"this is not an image"), ("tiles", "a.png", b"x")], 415, "bad_image"),
        ({"grid": "10"}, [("target", "t.png", "TARGET")], 400, "rejected"),
        ({"grid": "9999x10"}, [("target", "t.png", "TARGET"), ("tiles", "a.png", "TILE")], 413, "too_large"),
        ({"grid": "ten"}, [("target", "t.png", "TARGET"), ("tiles", "a.png", "TILE")], 400, "rejected"),
        ({"grid": "10", "tile_px": "1000"}, [("target", "t.png", "TARGET"), ("tiles", "a.png", "TILE")], 400, None),
        ({"grid": "10"}, [("tiles", "a.png", "TILE")], 400, None),
        ({"grid": "10", "tile_urls": "file:///etc/passwd"}, [("target", "t.png", "TARGET")], 400, "url_refused"),
        ({"grid": "10"}, [("target", "t.png", "TARGET"), ("tiles", "a.svg", b"<svg></svg>")], 415, "bad_image"),
    ],
    ids=["non-image", "no-tiles", "grid-over-limit", "grid-garbage", "tile-px", "no-target", "file-url", "svg"],
)
def test_bad_multipart_gets_4xx_and_queues_nothing(web: WebServer, r: redis.Redis, fields: dict, files: list,
                                                    status: int, code: str | None) -> None:
    samples = {"TARGET": encode(make_target()), "TILE": encode(make_tiles(1)[0])}
    parts = [(name, filename, samples[data] if isinstance(data, str) else data)
             for name, filename, data in files]
    body, content_type = client.encode_multipart(fields, parts)
    message = assert_error(client.request(web.base_url + "/api/mosaics", body, content_type), status, code)
    assert message
    assert queued(r, web) == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (json.dumps({"tile_urls": ["http://127.0.0.1:9/a.png"]}).encode(), 400),
        (json.dumps({"target_url": "http://127.0.0.1:9/t.png", "tile_urls": []}).encode(), 400),
        (json.dumps({"target_url": "http://10.0.0.1/t.png", "tile_urls": ["http://10.0.0.1/a"]}).encode(), 400),
        (json.dumps({"target_url": "http://127.0.0.1:9/t", "tile_urls": ["http://127.0.0.1:9/a"],
                     "options": {"grid": "300x300"}}).encode(), 413),
    ],
    ids=["malformed", "not-object", "no-target", "empty-tiles", "private-address", "grid-over-limit"],
)
def test_bad_json_gets_4xx_and_queues_nothing(web: WebServer, r: redis.Redis, body: bytes, status: int) -> None:
    assert_error(post_json(web, body), status)
    assert queued(r, web) == 0


def test_unsupported_content_type(web: WebServer, r: redis.Redis) -> None:
    assert_error(client.request(web.base_url + "/api/mosaics", b"hello", "text/plain"), 415)
    assert queued(r, web) == 0


def test_unknown_job_is_404_json(web: WebServer) -> None:
    assert_error(client.request(web.base_url + "/api/mosaics/" + "A" * 22), 404, "not_found")
    assert_error(client.request(web.base_url + "/api/nothing-here"), 404, "not_found")


def test_healthz_and_headers(web: WebServer) -> None:
    with urllib.request.urlopen(web.base_url + "/healthz") as reply:
        assert reply.status == 200
    with urllib.request.urlopen(web.base_url + "/") as reply:
        assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert 'name="tiles"' in reply.read().decode()


def test_media_and_inputs_refuse_guesses(web: WebServer) -> None:
    for path in ("/media/..%2Fconfig%2Flocal.yaml", "/media/x.jpg", "/inputs/abcdefgh12345678/target.png?exp=1&sig=x"):
        status, _ = client.request(web.base_url + path)
        assert status == 404, path


def test_healthz_503_and_submit_503_when_redis_is_down(make_settings: SettingsFactory) -> None:
    with serving(make_settings, TESSERA_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0") as down:
        assert client.request(down.base_url + "/healthz")[0] == 503
        body = {"target_url": "http://127.0.0.1:9/t.png", "tile_urls": ["http://127.0.0.1:9/a.png"]}
        status, payload = post_json(down, json.dumps(body).encode())
        assert status == 503 and payload["error"]["code"] == "queue_unavailable"


def test_rate_limit_answers_429_with_retry_after(make_settings: SettingsFactory, r: redis.Redis) -> None:
    body = json.dumps({"target_url": "http://127.0.0.1:9/t.png", "tile_urls": ["http://127.0.0.1:9/a.png"]}).encode()
    with serving(make_settings, TESSERA_WEB_RATE_LIMIT_PER_MINUTE="3") as limited:
        answers = [post_json(limited, body) for _ in range(4)]
        assert [status for status, _ in answers] == [202, 202, 202, 429]
        assert answers[-1][1]["error"]["code"] == "rate_limited"
        req = urllib.request.Request(limited.base_url + "/api/mosaics", data=body,
                                     headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(req)
        caught.value.close()  # the error holds the answer's socket
        assert caught.value.code == 429 and 1 <= int(caught.value.headers["Retry-After"]) <= 60


def test_active_jobs_per_client_are_bounded(make_settings: SettingsFactory, r: redis.Redis) -> None:
    body = json.dumps({"target_url": "http://127.0.0.1:9/t.png", "tile_urls": ["http://127.0.0.1:9/a.png"]}).encode()
    with serving(make_settings, TESSERA_WEB_MAX_ACTIVE_JOBS="2") as limited:
        first, second, third = (post_json(limited, body) for _ in range(3))
        assert (first[0], second[0], third[0]) == (202, 202, 429)
        assert third[1]["error"]["code"] == "too_many_jobs"
        keys = Keys(limited.settings.redis.prefix)
        r.hset(keys.job(first[1]["id"]), "state", "done")  # one finishes: room for one more
        assert post_json(limited, body)[0] == 202


def test_json_errors_are_not_sniffed_as_html(web: WebServer) -> None:
    body = json.dumps({"target_url": "http://127.0.0.1:9/<script>alert(1)</script>", "tile_urls": ["x:"]}).encode()
    req = urllib.request.Request(web.base_url + "/api/mosaics", data=body, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req)
    caught.value.close()  # the error holds the answer's socket
    assert caught.value.headers["Content-Type"] == "application/json"
    assert caught.value.headers["X-Content-Type-Options"] == "nosniff"


def test_job_page_refuses_ids_that_are_not_ids(web: WebServer) -> None:
    for job_id in ("%3Cscript%3E", "a" * 10, "../../etc/passwd"):
        assert client.request(web.base_url + "/mosaics/" + job_id)[0] == 404
