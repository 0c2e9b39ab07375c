"""Idempotency-Key on POST /api/mosaics, on a real server and Redis: the same key and body queue one job and get
the first 202 again; another body 422; racing duplicates one job; keys are each client's own."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
import redis

from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.keeper import queued_count
from tests.helpers.settings import SettingsFactory
from tests.helpers.web import WebServer, serving
from workers.cli.client import encode_multipart
from workers.protocol.keys import IDEMPOTENCY_TTL, Keys

pytestmark = pytest.mark.integration
JSON_BODY = {"target_url": "http://127.0.0.1:9/t.png", "tile_urls": ["http://127.0.0.1:9/a.png"],
             "options": {"grid": "8", "tile_px": 8}}


def post(web: WebServer, key: str | None, body: bytes | None = None, content_type: str = "application/json",
         **headers: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers, JSON) of one POST /api/mosaics (JSON_BODY unless ``body``)."""
    sent = {"Content-Type": content_type, **headers, **({} if key is None else {"Idempotency-Key": key})}
    data = json.dumps(JSON_BODY).encode() if body is None else body
    req = urllib.request.Request(web.base_url + "/api/mosaics", data=data, headers=sent, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as reply:
            return reply.status, dict(reply.headers), json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), json.loads(exc.read())


def queued(r: redis.Redis, web: WebServer) -> int:
    return queued_count(r, Keys(web.settings.redis.prefix))


def job_hashes(r: redis.Redis, web: WebServer) -> int:
    return len(list(r.scan_iter(match=Keys(web.settings.redis.prefix).job("*"))))


def test_same_key_and_upload_twice_queue_one_job_and_replay_the_first_202(web: WebServer, r: redis.Redis) -> None:
    tiles = [encode(t) for t in make_tiles(3)]
    files = [("target", "t.png", encode(make_target())), *[("tiles", f"{n}.png", t) for n, t in enumerate(tiles)]]
    first_body, first_type = encode_multipart({"grid": "8", "tile_px": "8"}, files)
    again_body, again_type = encode_multipart({"grid": "8", "tile_px": "8"}, files)  # another boundary
    assert first_body != again_body
    status, headers, first = post(web, "order-1234", first_body, first_type)
    assert status == 202, first
    assert "Idempotent-Replayed" not in headers
    status, headers, again = post(web, "order-1234", again_body, again_type)
    assert status == 202, again
    assert again == first and headers["Idempotent-Replayed"] == "true"
    assert queued(r, web) == 1 and job_hashes(r, web) == 1
    (record,) = r.scan_iter(match=Keys(web.settings.redis.prefix).idempotency("*", "*"))
    assert IDEMPOTENCY_TTL - 60 < r.ttl(record) <= IDEMPOTENCY_TTL == 24 * 3600  # kept for 24 hours


def test_same_key_with_another_body_is_422_and_queues_nothing(web: WebServer, r: redis.Redis) -> None:
    assert post(web, "k-1")[0] == 202
    other = {**JSON_BODY, "options": {"grid": "9", "tile_px": 8}}
    status, _headers, reply = post(web, "k-1", json.dumps(other).encode())
    assert status == 422 and reply["error"]["code"] == "idempotency_key_reused", reply
    assert queued(r, web) == 1
    assert post(web, "k-2", json.dumps(other).encode())[0] == 202  # a new key for a new mosaic
    assert queued(r, web) == 2


def test_racing_duplicates_queue_exactly_one_job(web: WebServer, r: redis.Redis) -> None:
    replies: list[tuple[int, dict[str, str], dict[str, Any]]] = []
    start = threading.Barrier(8)

    def send() -> None:
        start.wait()
        replies.append(post(web, "race"))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(replies) == 8 and {status for status, _, _ in replies} == {202}
    assert len({reply["id"] for _, _, reply in replies}) == 1
    assert sum(1 for _, headers, _ in replies if "Idempotent-Replayed" not in headers) == 1
    assert queued(r, web) == 1 and job_hashes(r, web) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"], ids=["empty", "long", "latin1", "tab"])
def test_a_bad_key_is_400_and_queues_nothing(web: WebServer, r: redis.Redis, key: str) -> None:
    data = json.dumps(JSON_BODY).encode()
    req = urllib.request.Request(web.base_url + "/api/mosaics", data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    req.add_unredirected_header("Idempotency-Key", key)  # http.client sends latin-1 as it is
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=30)
    with refused.value as exc:
        assert exc.code == 400 and json.loads(exc.read())["error"]["code"] == "bad_idempotency_key"
    assert queued(r, web) == 0


def test_the_longest_key_is_taken(web: WebServer, r: redis.Redis) -> None:
    key = "~ !" * 85
    assert post(web, key)[0] == 202 and post(web, key)[1]["Idempotent-Replayed"] == "true"
    assert queued(r, web) == 1


def test_keys_are_each_clients_own(make_settings: SettingsFactory, r: redis.Redis) -> None:
    with serving(make_settings, TESSERA_WEB_TRUSTED_PROXIES="127.0.0.1") as web:
        _, _, alice = post(web, "shared", None, "application/json", **{"X-Forwarded-For": "203.0.113.7"})
        status, headers, bob = post(web, "shared", None, "application/json", **{"X-Forwarded-For": "198.51.100.9"})
        assert status == 202 and "Idempotent-Replayed" not in headers
        assert bob["id"] != alice["id"]  # never another client's reply (its delete token)
        assert queued(r, web) == 2


def test_a_replay_is_answered_past_the_rate_limit(make_settings: SettingsFactory, r: redis.Redis) -> None:
    with serving(make_settings, TESSERA_WEB_RATE_LIMIT_PER_MINUTE="1") as web:
        first = post(web, "once")
        assert first[0] == 202
        assert post(web, None)[0] == 429  # the limit holds for new jobs…
        status, headers, again = post(web, "once")
        assert status == 202 and again == first[2] and headers["Idempotent-Replayed"] == "true"  # …not replays
        assert queued(r, web) == 1
