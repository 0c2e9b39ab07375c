"""The JSON-lines log formatter: fields, job and worker context, exceptions."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from workers.protocol import logs


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    logs.setup("worker", stream=out)
    yield out
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def records(out: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_each_record_is_one_json_line_with_the_fields(lines: io.StringIO) -> None:
    logging.getLogger("tessera.test").info("job %s took %.1f s", "abc", 2.25)
    logging.getLogger("tessera.test").debug("not shown at INFO")
    [entry] = records(lines)
    assert entry["msg"] == "job abc took 2.2 s"
    assert (entry["level"], entry["component"], entry["logger"]) == ("INFO", "worker", "tessera.test")
    assert entry["ts"].endswith("+00:00") and "T" in entry["ts"]
    assert "job_id" not in entry and "worker" not in entry and "exc" not in entry


def test_job_and_worker_come_from_the_context_and_from_extra(lines: io.StringIO) -> None:
    log = logging.getLogger("tessera.test")
    with logs.bound(worker="node-1"):
        with logs.bound(job_id="J1"):
            log.warning("inside")
        log.info("between")
        log.info("by extra", extra={"job_id": "J2"})
    log.info("outside")
    inside, between, extra, outside = records(lines)
    assert (inside["job_id"], inside["worker"]) == ("J1", "node-1")
    assert "job_id" not in between and between["worker"] == "node-1"
    assert extra["job_id"] == "J2"
    assert "worker" not in outside


def test_exceptions_and_odd_messages_stay_on_one_line(lines: io.StringIO) -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logging.getLogger("x").exception('quote " and newline \n and ünïcode')
    text = lines.getvalue()
    assert text.count("\n") == 1
    [entry] = records(lines)
    assert entry["msg"] == 'quote " and newline \n and ünïcode'
    assert "Traceback" in entry["exc"] and "ValueError: bad\nthing" in entry["exc"]
    assert entry["level"] == "ERROR"
