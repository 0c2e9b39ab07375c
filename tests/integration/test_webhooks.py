"""Webhooks through a real node: web app, keeper, a worker process and `tessera webhooks`, calling receivers on
loopback over real TLS. Signatures are checked with the reference ``standardwebhooks`` library, not our code."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks

from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.processes import stop_process, wait_until
from tests.helpers.settings import SettingsFactory
from tests.helpers.web import WebServer, serving
from tests.helpers.webhooks import Receiver, make_certificate, serve, start_sender
from tests.helpers.worker import start_worker
from workers.cli import client
from workers.protocol import status
from workers.protocol.connection import connect
from workers.protocol.keys import Keys
from workers.protocol.webhooks import new_secret

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
RETRY_BASE = 0.4
"""Seconds before a second attempt in these tests (then doubling, with a jitter of x0.5-1)."""
TIMEOUT = 1.0
"""Seconds a sender waits for a receiver's answer in these tests."""


@dataclass
class Node:
    web: WebServer
    receiver: Receiver
    hooks_url: str
    secret: str
    sender_log: Path

    def submit(self, path: str, tile_urls: list[str] | None = None) -> str:
        options = {"grid": "6x4", "tile_px": "8", "webhook": self.hooks_url + path}
        tiles = [] if tile_urls else [encode(t) for t in make_tiles(4)]
        code, reply = client.submit(self.web.base_url, encode(make_target(64, 48)), tiles, options, tile_urls)
        assert code == 202, reply
        return str(reply["id"])

    def status(self, job_id: str) -> dict[str, Any]:
        return client.request(f"{self.web.base_url}/api/mosaics/{job_id}")[1]

    def wait_webhook(self, job_id: str, state: str, timeout: float = 60) -> dict[str, Any]:
        wait_until(lambda: self.status(job_id).get("webhook", {}).get("state") == state, timeout=timeout,
                   what=f"webhook of {job_id} {state}", interval=0.1)
        return self.status(job_id)

    def log_lines(self, job_id: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.sender_log.read_text().splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("job_id") == job_id]


@contextmanager
def running(make_settings: SettingsFactory, tmp_path: Path, worker: bool = True,
            timeout: float = TIMEOUT) -> Iterator[Node]:
    """Web app and keeper, a worker process (unless ``worker`` is False) and the sender (waiting ``timeout`` for
    an answer), with a TLS receiver."""
    cert, key = make_certificate(tmp_path)
    receiver = Receiver({"/ok": [200], "/flaky": [500, 503, 204], "/hang": [0], "/gone": [410]})
    hooks_url, server = serve(receiver, cert, key)
    secret = new_secret()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with serving(make_settings, TESSERA_WEBHOOKS_SECRET=secret) as web:
            if worker:
                processes.append(start_worker(web, tmp_path / "worker.log"))
            log = tmp_path / "webhooks.log"
            processes.append(start_sender(web.settings, log, TESSERA_WEBHOOKS_CA_FILE=str(cert),
                                          TESSERA_WEBHOOKS_TIMEOUT=str(timeout),
                                          TESSERA_WEBHOOKS_RETRY_BASE=str(RETRY_BASE),
                                          TESSERA_WEBHOOKS_MAX_ATTEMPTS="3", TESSERA_WEBHOOKS_POLL="0.05"))
            yield Node(web, receiver, hooks_url, secret, log)
    finally:
        receiver.release.set()
        for process in processes:
            stop_process(process)
        _close(server)


@pytest.fixture
def node(make_settings: SettingsFactory, tmp_path: Path) -> Iterator[Node]:
    with running(make_settings, tmp_path) as started:
        yield started


def _close(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def verified(node: Node, path: str) -> list[dict[str, Any]]:
    """Each message the receiver got at ``path``, checked by the reference verifier (raises if one is forged)."""
    verifier = standardwebhooks.Webhook(node.secret)
    return [verifier.verify(got.body, got.headers) for got in node.receiver.at(path)]


def test_a_done_job_calls_its_webhook_once_signed(node: Node) -> None:
    job_id = node.submit("/ok")
    view = node.wait_webhook(job_id, "delivered")
    assert view["state"] == "done" and view["webhook"]["attempts"] == 1
    (message,) = verified(node, "/ok")
    assert message["type"] == "mosaic.done" and message["data"]["id"] == job_id
    assert message["data"]["state"] == "done"
    assert message["data"]["result_url"] == f"{node.web.base_url}/media/{job_id}.jpg"  # absolute
    assert "webhook" not in message["data"]
    (got,) = node.receiver.at("/ok")
    assert got.headers["webhook-id"] == f"msg_{job_id}_done"
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):  # the check is a real one
        standardwebhooks.Webhook(new_secret()).verify(got.body, got.headers)
    (line,) = node.log_lines(job_id)
    assert "attempt 1: HTTP 200" in line["msg"] and "delivered" in line["msg"]


def test_a_receiver_that_fails_twice_gets_it_on_the_third_try_with_backoff(node: Node) -> None:
    job_id = node.submit("/flaky")
    view = node.wait_webhook(job_id, "delivered")
    assert view["webhook"]["attempts"] == 3 and view["webhook"]["last_result"].startswith("HTTP 204")
    messages = verified(node, "/flaky")  # every attempt signed, each with its own timestamp
    assert len(messages) == 3 and all(m == messages[0] for m in messages)  # one message, sent three times
    attempts = node.receiver.at("/flaky")
    assert len({got.headers["webhook-id"] for got in attempts}) == 1
    first_wait, second_wait = attempts[1].at - attempts[0].at, attempts[2].at - attempts[1].at
    assert first_wait >= RETRY_BASE * 0.5 and second_wait >= RETRY_BASE  # the backoff's floors: base, then 2x
    lines = [line["msg"] for line in node.log_lines(job_id)]
    assert len(lines) == 3 and "HTTP 500" in lines[0] and "next attempt in" in lines[0]
    assert "HTTP 503" in lines[1] and "HTTP 204" in lines[2] and "delivered" in lines[2]


def test_a_hanging_receiver_holds_up_no_job_and_no_other_webhook(make_settings: SettingsFactory,
                                                                 tmp_path: Path) -> None:
    with running(make_settings, tmp_path, timeout=60) as node:  # the first attempt hangs for the whole test
        hanging = node.submit("/hang")
        wait_until(lambda: node.receiver.at("/hang"), timeout=60, what="the call to the hanging receiver")
        after = node.submit("/ok")  # built, and announced, while that call still hangs
        assert node.wait_webhook(after, "delivered", timeout=30)["state"] == "done"
        assert node.status(hanging)["webhook"] == {"state": "pending", "attempts": 0}  # still in its first attempt
        assert len(node.receiver.at("/hang")) == 1


def test_a_hanging_receiver_is_cut_off_after_the_timeout_and_retried(node: Node) -> None:
    hanging = node.submit("/hang")
    view = node.wait_webhook(hanging, "failed")  # max_attempts 3, each cut off after the timeout
    assert view["state"] == "done" and view["webhook"]["attempts"] == 3
    assert "no answer within" in view["webhook"]["last_result"]
    assert len(node.receiver.at("/hang")) == 3
    lines = [line["msg"] for line in node.log_lines(hanging)]
    assert len(lines) == 3 and "given up" in lines[-1]


def test_a_receiver_that_answers_410_is_not_asked_again(node: Node) -> None:
    job_id = node.submit("/gone")
    view = node.wait_webhook(job_id, "failed")
    assert view["webhook"]["attempts"] == 1 and view["webhook"]["last_result"].startswith("HTTP 410")
    assert len(node.receiver.at("/gone")) == 1


def test_a_failed_job_calls_its_webhook_too(node: Node, file_server: tuple[str, Path]) -> None:
    job_id = node.submit("/ok", tile_urls=[f"{file_server[0]}/missing.png"])  # a 404: the job fails at once
    view = node.wait_webhook(job_id, "delivered")
    assert view["state"] == "failed"
    (message,) = verified(node, "/ok")
    assert message["type"] == "mosaic.failed" and "404" in message["data"]["error"]


def test_a_job_canceled_while_queued_calls_its_webhook(make_settings: SettingsFactory, tmp_path: Path) -> None:
    with running(make_settings, tmp_path, worker=False) as node:  # no worker: the job stays queued
        job_id = node.submit("/ok")
        settings = node.web.settings
        web = connect(settings.redis, "web")  # as the cancel route does, with its role
        outcome, state = status.cancel(web, Keys(settings.redis.prefix), job_id, settings.jobs.result_ttl)
        assert (outcome, state) == (status.Cancel.CANCELED, "canceled")
        assert node.wait_webhook(job_id, "delivered")["state"] == "canceled"
        (message,) = verified(node, "/ok")
        assert message["type"] == "mosaic.canceled" and message["data"]["state"] == "canceled"


@pytest.mark.parametrize(("webhook", "code"), [("http://127.0.0.1:9/hook", "rejected"),
                                              ("https://10.1.2.3/hook", "url_refused"),
                                              ("https://[::1]:9/hook", "url_refused")],
                         ids=["not-https", "private", "loopback-not-allowed"])
def test_a_webhook_is_checked_at_submission(make_settings: SettingsFactory, webhook: str, code: str) -> None:
    with serving(make_settings, TESSERA_WEBHOOKS_SECRET=new_secret()) as web:
        body = {"target_url": "http://127.0.0.1:9/t.png", "tile_urls": ["http://127.0.0.1:9/a.png"],
                "options": {"grid": "8", "webhook": webhook}}
        status_code, reply = client.request(web.base_url + "/api/mosaics", json.dumps(body).encode(),
                                            "application/json")
        assert status_code == 400 and reply["error"]["code"] == code, reply


def test_webhooks_are_refused_where_no_secret_is_set(web: WebServer) -> None:
    body = {"target_url": "http://127.0.0.1:9/t.png", "tile_urls": ["http://127.0.0.1:9/a.png"],
            "options": {"grid": "8", "webhook": "https://127.0.0.1:9/hook"}}
    status_code, reply = client.request(web.base_url + "/api/mosaics", json.dumps(body).encode(), "application/json")
    assert status_code == 400 and "webhooks are off" in reply["error"]["message"], reply


def test_a_queued_job_shows_its_webhook_waiting(make_settings: SettingsFactory) -> None:
    with serving(make_settings, TESSERA_WEBHOOKS_SECRET=new_secret()) as web:
        body = {"target_url": "http://127.0.0.1:9/t.png", "tile_urls": ["http://127.0.0.1:9/a.png"],
                "options": {"grid": "8", "webhook": "https://127.0.0.1:9/hook?token=s3cret"}}
        status_code, reply = client.request(web.base_url + "/api/mosaics", json.dumps(body).encode(),
                                            "application/json")
        assert status_code == 202, reply
        view = client.request(web.base_url + reply["status_url"])[1]
        assert view["webhook"] == {"state": "waiting", "attempts": 0} and "s3cret" not in json.dumps(view)
