"""The worker daemon against a real Redis and a real web server: jobs end done or failed, never lost."""

from __future__ import annotations

import io
import json
import urllib.request
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import redis
from PIL import Image

from tests.helpers.images import encode, make_target, make_tiles, resemblance
from tests.helpers.processes import wait_until
from tests.helpers.web import WebServer
from workers.cli import client
from workers.protocol import stream
from workers.protocol.keys import GROUP, Keys
from workers.service.daemon import Worker

pytestmark = pytest.mark.integration


def run_all(worker: Worker, limit: int = 10) -> None:
    for _ in range(limit):
        if not worker.run_once():
            return


def pending(r: redis.Redis, keys: Keys) -> int:
    return int(r.xpending(keys.jobs, GROUP)["pending"])


def test_upload_job_is_built_and_resembles_target(web: WebServer, r: redis.Redis) -> None:
    target, tiles = make_target(), make_tiles(64)
    status, reply = client.submit(web.base_url, encode(target), [encode(t) for t in tiles],
                                  {"grid": "24x16", "tile_px": "10"})
    assert status == 202, reply
    worker = Worker(web.settings, slot=0)
    run_all(worker)
    code, view = client.request(web.base_url + reply["status_url"])
    assert view["state"] == "done", view
    assert view["progress"] == 1 and view["finished_at"] >= view["started_at"] >= view["created_at"]
    assert view["details"]["tiles_used"] == 64
    mosaic = np.asarray(Image.open(Path(web.settings.paths.media) / f"{reply['id']}.jpg").convert("RGB"))
    assert mosaic.shape == (160, 240, 3)
    error, random_error = resemblance(mosaic, target, tiles, cols=24, rows=16)
    assert error < 0.4 * random_error, (error, random_error)
    keys = Keys(web.settings.redis.prefix)
    assert pending(r, keys) == 0  # acked; then the keeper trims it off the stream
    wait_until(lambda: r.xlen(keys.jobs) == 0, timeout=10, what="the keeper to trim the acked entry")
    assert 0 < r.ttl(keys.job(reply["id"])) <= web.settings.jobs.result_ttl


def test_tile_urls_and_skipped_tiles(web: WebServer, r: redis.Redis, file_server: tuple[str, Path]) -> None:
    base, folder = file_server
    for number, tile in enumerate(make_tiles(6)):
        (folder / f"t{number}.png").write_bytes(encode(tile))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    urls = [f"{base}/t{n}.png" for n in range(6)] + [f"{base}/broken.png", f"{base}/missing.png"]
    status, reply = client.submit(web.base_url, encode(make_target()), [], {"grid": "8"}, tile_urls=urls)
    assert status == 202, reply
    run_all(Worker(web.settings, slot=0))
    view = client.request(web.base_url + reply["status_url"])[1]
    assert view["state"] == "done", view
    assert view["details"]["tiles_used"] == 6 and view["details"]["tiles_skipped"] == 2
    assert view["details"]["grid"] == "8x5"  # rows from the 240x160 target's aspect ratio


def test_job_with_no_usable_tiles_fails_with_reason(web: WebServer, r: redis.Redis,
                                                    file_server: tuple[str, Path]) -> None:
    base, folder = file_server
    (folder / "page.html").write_bytes(b"<html>not a picture</html>")
    status, reply = client.submit(web.base_url, encode(make_target()), [], {"grid": "8"},
                                  tile_urls=[f"{base}/page.html"])
    assert status == 202
    run_all(Worker(web.settings, slot=0))
    view = client.request(web.base_url + reply["status_url"])[1]
    assert view["state"] == "failed"
    assert "0 of 1 tiles" in view["error"]


def test_bad_packages_fail_their_job_and_the_worker_goes_on(web: WebServer, r: redis.Redis) -> None:
    keys = Keys(web.settings.redis.prefix)
    stream.ensure_group(r, keys)
    r.hset(keys.job("badversion-0000000000"), mapping={"state": "queued", "created_at": 1})
    r.xadd(keys.jobs, {"package": json.dumps({"v": 99, "id": "badversion-0000000000"})})
    r.xadd(keys.jobs, {"package": "{not json"})
    r.xadd(keys.jobs, {"other": "field"})
    status, reply = client.submit(web.base_url, encode(make_target()), [encode(t) for t in make_tiles(4)],
                                  {"grid": "6"})
    worker = Worker(web.settings, slot=1)
    run_all(worker)
    assert r.hget(keys.job("badversion-0000000000"), "state") == "failed"
    assert "unknown package version" in cast(str, r.hget(keys.job("badversion-0000000000"), "error"))
    assert client.request(web.base_url + reply["status_url"])[1]["state"] == "done"
    assert pending(r, keys) == 0


def test_a_job_run_twice_keeps_one_result_and_one_note(web: WebServer, r: redis.Redis, tmp_path: Path) -> None:
    """One entry delivered to two workers at once (handed to the second while the first still builds it, as a
    stale claim is): both run it, the user sees one result, one note, one `done`."""
    import threading

    from tests.helpers.http import TileServers
    from workers.protocol.stats import read_counters

    keys = Keys(web.settings.redis.prefix)
    with TileServers(tmp_path) as servers:
        status, reply = client.submit(web.base_url, encode(make_target()), [], {"grid": "6"},
                                      tile_urls=servers.serve(1.0, 4))  # ~1 s of fetching: time to hand it over
        job = reply["id"]
        first, second = Worker(web.settings, slot=0), Worker(web.settings, slot=1)
        running = threading.Thread(target=first.run_once)
        running.start()
        waited = 0
        while r.hget(keys.job(job), "worker") != first.consumer and waited < 100:
            running.join(timeout=0.05)
            waited += 1
        assert r.hget(keys.job(job), "state") == "running"
        entry_id = cast(list[tuple[str, dict[str, str]]], r.xrange(keys.jobs))[0][0]
        assert r.xclaim(keys.jobs, GROUP, second.consumer, 0, [entry_id])  # the same entry, now the second's too
        run_all(second)  # its own pending entry first: the same job, built a second time
        running.join(timeout=60)
    assert not running.is_alive()
    final = r.hgetall(keys.job(job))
    assert final["state"] == "done" and final["deliveries"] == "2", final  # it really was run twice
    media = sorted(p.name for p in Path(web.settings.paths.media).iterdir())
    assert media == [f"{job}.dz", f"{job}.jpg"]  # the image and its zoomable view; no temporary file left
    assert r.lrange(keys.recent, 0, -1) == [job]  # one completion note
    counters = read_counters(r, keys)
    assert (counters.done, counters.failed) == (1, 0)
    assert pending(r, keys) == 0
    wait_until(lambda: r.xlen(keys.jobs) == 0, timeout=10, what="the keeper to trim the acked entry")
    assert client.request(web.base_url + reply["status_url"])[1]["state"] == "done"


def test_restarted_worker_takes_its_own_pending_entry_first(web: WebServer, r: redis.Redis) -> None:
    keys = Keys(web.settings.redis.prefix)
    status, reply = client.submit(web.base_url, encode(make_target()), [encode(t) for t in make_tiles(4)],
                                  {"grid": "6"})
    stream.ensure_group(r, keys)
    worker = Worker(web.settings, slot=3)
    taken = stream.read_new(r, keys, worker.consumer, block_ms=100)  # taken, then the process "died"
    assert taken is not None and pending(r, keys) == 1
    run_all(worker)  # same slot, same consumer name: the entry is not stranded
    assert client.request(web.base_url + reply["status_url"])[1]["state"] == "done"
    assert pending(r, keys) == 0


def test_result_is_a_jpeg_served_by_the_web(web: WebServer, r: redis.Redis) -> None:
    status, reply = client.submit(web.base_url, encode(make_target()), [encode(t) for t in make_tiles(4)],
                                  {"grid": "6", "tile_px": "12"})
    run_all(Worker(web.settings, slot=0))
    view = client.request(web.base_url + reply["status_url"])[1]
    with urllib.request.urlopen(web.base_url + view["result_url"]) as got:
        assert got.headers["Content-Type"] == "image/jpeg"
        assert Image.open(io.BytesIO(got.read())).size == (72, 48)


def test_dead_letter_then_retry(web: WebServer, r: redis.Redis) -> None:
    from workers.cli.deadletters import dead_letters, retry

    keys = Keys(web.settings.redis.prefix)
    status, reply = client.submit(web.base_url, encode(make_target()), [encode(t) for t in make_tiles(4)],
                                  {"grid": "6"})
    r.hset(keys.job(reply["id"]), "deliveries", web.settings.queue.max_deliveries)  # as if it had died 5 times
    run_all(Worker(web.settings, slot=0))
    view = client.request(web.base_url + reply["status_url"])[1]
    assert view["state"] == "failed" and "gave up after 5 deliveries" in view["error"]
    assert [letter[1]["deliveries"] for letter in dead_letters(r, keys)] == ["5"]
    assert pending(r, keys) == 0
    assert retry(r, keys, reply["id"]) and not dead_letters(r, keys)
    run_all(Worker(web.settings, slot=0))
    assert client.request(web.base_url + reply["status_url"])[1]["state"] == "done"
    assert not retry(r, keys, "no-such-job-000000000")


def test_transient_failure_is_delivered_again_then_dead_lettered(web: WebServer, r: redis.Redis) -> None:
    import dataclasses
    import time

    queue = dataclasses.replace(web.settings.queue, claim_idle=0.2, max_deliveries=2, transient_tries=1)
    worker = Worker(dataclasses.replace(web.settings, queue=queue), slot=0)
    keys = Keys(web.settings.redis.prefix)
    status, reply = client.submit(web.base_url, encode(make_target()), [encode(make_tiles(1)[0])], {"grid": "6"})
    package = cast(str, r.hget(keys.job(reply["id"]), "package")).replace(web.base_url, "http://127.0.0.1:9")
    r.xdel(keys.jobs, cast(list[tuple[str, dict[str, str]]], r.xrange(keys.jobs))[0][0])
    r.xadd(keys.jobs, {"package": package})  # its inputs now sit where nothing listens: a transient failure
    stages = []
    for _ in range(3):
        run_all(worker, limit=1)
        stages.append(r.hget(keys.job(reply["id"]), "state"))
        time.sleep(0.3)  # past claim_idle: the entry is claimed again
    assert stages == ["queued", "queued", "failed"]
    error = cast(str, r.hget(keys.job(reply["id"]), "error"))
    assert "gave up after 2 deliveries" in error and "cannot fetch" in error
    assert pending(r, keys) == 0 and r.xlen(keys.dead) == 1
