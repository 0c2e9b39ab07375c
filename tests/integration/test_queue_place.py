"""Where a queued job stands (issue 16, item 6), through the real web app, keeper and Redis with no worker running:
positions 1..n as jobs are admitted, moving up as jobs start (by the worker's take script and by its blocking
read), and an eta from the recent build time and the ready workers once there are both."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers.keeper import queued_count
from tests.helpers.processes import wait_until
from tests.helpers.settings import SettingsFactory
from tests.helpers.web import WebServer, serving
from workers.cli import client
from workers.protocol import status, stream
from workers.protocol.connection import connect
from workers.protocol.keys import Keys
from workers.protocol.status import JobState
from workers.service.heartbeat import Heartbeat

pytestmark = pytest.mark.integration
BODY = json.dumps({"target_url": "http://127.0.0.1:9/t.png", "tile_urls": ["http://127.0.0.1:9/a.png"]}).encode()


def submit(web: WebServer, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        code, reply = client.request(web.base_url + "/api/mosaics", BODY, "application/json")
        assert code == 202, reply
        ids.append(str(reply["id"]))
    return ids


def views(web: WebServer, ids: list[str]) -> list[dict[str, Any]]:
    replies = [client.request(f"{web.base_url}/api/mosaics/{job_id}") for job_id in ids]
    assert all(code == 200 for code, _ in replies), replies
    return [view for _, view in replies]


def test_positions_and_eta_with_no_worker_running(make_settings: SettingsFactory) -> None:
    with serving(make_settings, TESSERA_WEB_MAX_ACTIVE_JOBS="20", TESSERA_WEB_RATE_LIMIT_PER_MINUTE="100") as web:
        keys = Keys(web.settings.redis.prefix)
        worker = connect(web.settings.redis, "worker")
        ids = submit(web, 5)
        admin = connect(web.settings.redis, "admin")
        wait_until(lambda: admin.xlen(keys.jobs) == 5, timeout=10, what="the keeper admitting five jobs")
        assert queued_count(admin, keys) == 5
        first = views(web, ids)
        assert [v["position"] for v in first] == [1, 2, 3, 4, 5]
        assert [v["eta"] for v in first] == [None] * 5  # no build time yet, no ready worker

        taken = stream.take_new(worker, keys, "paused-0")  # a worker's take script starts the first
        assert taken is not None and taken[1]["id"] == ids[0]
        read = stream.read_new(worker, keys, "paused-1", 100)  # the blocking read, then its start, the second
        assert read is not None and read[1]["id"] == ids[1]
        assert status.start_delivery(worker, keys, ids[1], "paused-1") == 1
        moved = views(web, ids)
        assert [v["state"] for v in moved[:2]] == ["running", "running"]
        assert all("position" not in v and "eta" not in v for v in moved[:2])
        assert [v["position"] for v in moved[2:]] == [1, 2, 3]
        assert [v["eta"] for v in moved[2:]] == [None] * 3  # still no build time

        for (job_id, entry), seconds in zip([(ids[0], taken[0]), (ids[1], read[0])], [2.0, 4.0], strict=True):
            assert status.finish(worker, keys, job_id, 60, JobState.DONE, ack_entry=entry, build_seconds=seconds,
                                 result=f"{job_id}.jpg") == 1
        assert [v["eta"] for v in views(web, ids[2:])] == [None] * 3  # a build time, but no ready worker

        beat = Heartbeat(worker, keys, "paused", "paused-0", interval=60, claim_every=60)
        beat.release()  # idle: ready for jobs
        beat.beat()
        recent = 2.0 + (4.0 - 2.0) * 0.2  # each build moves the recent time a fifth of the way
        assert [(v["position"], v["eta"]) for v in views(web, ids[2:])] == [
            (1, pytest.approx(recent)), (2, pytest.approx(2 * recent)), (3, pytest.approx(3 * recent))]
        other = Heartbeat(worker, keys, "other", "other-0", interval=60, claim_every=60)
        other.beat()  # starting (compiling its kernels): not ready, not counted
        assert views(web, ids[2:])[2]["eta"] == pytest.approx(3 * recent)
        other.release()
        other.beat()  # two ready workers: two jobs at a time
        assert [v["eta"] for v in views(web, ids[2:])] == [pytest.approx(recent), pytest.approx(recent),
                                                          pytest.approx(2 * recent)]
        beat.stop()  # a worker that stops leaves the ready set at once
        other.stop()
        assert [v["eta"] for v in views(web, ids[2:])] == [None] * 3
