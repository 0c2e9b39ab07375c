"""Uploads live as long as their job needs them, not just the URL's TTL: kept and served while the job is queued
or running, removed once it is final, and signed afresh when an operator retries a dead letter."""

from __future__ import annotations

import dataclasses
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from bottle import HTTPResponse

from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.processes import wait_until
from tests.helpers.settings import SettingsFactory
from tests.helpers.web import WebServer, serving
from web.app import sweep_once
from web.inputs import InputStore
from workers.cli import client
from workers.cli.deadletters import dead_letters
from workers.protocol.connection import connect
from workers.protocol.keys import GROUP, Keys
from workers.protocol.package import JobPackage
from workers.service.daemon import Worker

pytestmark = pytest.mark.integration

DAY = 86400


def fetch(url: str) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def expiry(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["exp"][0])


def _env_value(value: str | bool) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else value


def run_all(worker: Worker, limit: int = 10) -> None:
    for _ in range(limit):
        if not worker.run_once():
            return


def submit(web: WebServer) -> tuple[str, bytes]:
    target = encode(make_target())
    status, reply = client.submit(web.base_url, target, [encode(t) for t in make_tiles(4)], {"grid": "6"})
    assert status == 202, reply
    return str(reply["id"]), target


def package_of(r: redis.Redis, keys: Keys, job_id: str) -> JobPackage:
    return JobPackage.decode(cast(str, r.hget(keys.job(job_id), "package")))


def test_a_queued_job_keeps_its_inputs_past_the_ttl_and_loses_them_once_final(
        make_settings: SettingsFactory, r: redis.Redis) -> None:
    with serving(make_settings, TESSERA_WEB_INPUT_URL_TTL="1") as web:  # a backlog longer than the TTL, in 2 s
        keys = Keys(web.settings.redis.prefix)
        job_id, target = submit(web)
        package = package_of(r, keys, job_id)
        folder = Path(web.settings.paths.uploads) / job_id
        newest = max(path.stat().st_mtime for path in (folder, *folder.iterdir()))
        while time.time() <= max(expiry(package.target), newest + 1) + 0.1:  # the URLs and the files past it
            time.sleep(0.1)
        inputs = InputStore.from_settings(web.settings, connect(web.settings.redis, "web"))  # as the web host's

        sweep_once(web.settings, inputs)  # past the TTL, but the job is still queued
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            urlsplit(url).path.rsplit("/", 1)[1] for url in (package.target, *package.tiles))
        assert fetch(package.target) == (200, target)  # the expired URL still works for its waiting job

        run_all(Worker(web.settings, slot=0))  # the worker fetches them through the same URLs
        assert client.request(f"{web.base_url}/api/mosaics/{job_id}")[1]["state"] == "done"

        sweep_once(web.settings, inputs)  # final and past the TTL: gone, and the URL with it
        assert not folder.exists()
        assert fetch(package.target)[0] == 404


def test_the_sweep_asks_redis_and_keeps_everything_when_it_cannot(make_settings: SettingsFactory,
                                                                   r: redis.Redis) -> None:
    settings = make_settings()
    keys = Keys(settings.redis.prefix)
    inputs = InputStore.from_settings(settings, connect(settings.redis, "web"))
    states = {"queuedjob0": "queued", "runningjob": "running", "finaljob00": "done", "failedjob0": "failed",
              "deadletter": "failed", "nohashjob0": None, "freshjob00": "done"}
    urls = {job_id: inputs.save(job_id, "t0.png", b"png") for job_id in states}
    old = time.time() - 2 * DAY
    for job_id in states:
        if job_id != "freshjob00":
            for path in (inputs.folder / job_id / "t0.png", inputs.folder / job_id):
                os.utime(path, (old, old))
    for job_id, state in states.items():
        if state is not None:
            r.hset(keys.job(job_id), "state", state)
    r.hset(keys.job("deadletter"), "error_code", "dead_letter")  # `tessera retry` may still run it

    down = InputStore(settings.paths.uploads, settings.web.signing_key, settings.web.public_url, DAY)
    down.track(redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1), keys)  # nothing listens there
    assert down.sweep() == 0 and sorted(p.name for p in inputs.folder.iterdir()) == sorted(states)
    query = parse_qs(urlsplit(inputs.url("queuedjob0", "t0.png", now=old)).query)
    with pytest.raises(HTTPResponse) as refused:  # an expired URL whose job cannot be looked up: try again later
        down.path_if_valid("queuedjob0", "t0.png", query["exp"][0], query["sig"][0])
    assert refused.value.status_code == 503
    assert down.path_if_valid("queuedjob0", "t0.png", *[parse_qs(urlsplit(urls["queuedjob0"]).query)[k][0]
                                                         for k in ("exp", "sig")]) is not None  # not expired

    assert inputs.sweep() == 3
    assert sorted(p.name for p in inputs.folder.iterdir()) == ["deadletter", "freshjob00", "queuedjob0",
                                                               "runningjob"]


def test_retry_signs_an_old_dead_letters_inputs_again(web: WebServer, r: redis.Redis, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.cli.main import main

    settings, keys = web.settings, Keys(web.settings.redis.prefix)
    job_id, target = submit(web)
    r.hset(keys.job(job_id), "deliveries", settings.queue.max_deliveries)  # as if it had died 5 times
    run_all(Worker(settings, slot=0))
    [(letter_id, fields)] = dead_letters(r, keys)
    package = JobPackage.decode(fields["package"])
    signer = InputStore(settings.paths.uploads, settings.web.signing_key, settings.web.public_url,
                        settings.web.input_url_ttl)

    def signed_long_ago(url: str) -> str:  # what the package of a dead letter two days old carries
        return signer.url(job_id, urlsplit(url).path.rsplit("/", 1)[1], now=time.time() - 2 * DAY)

    old = JobPackage(id=package.id, target=signed_long_ago(package.target),
                     tiles=tuple(signed_long_ago(t) for t in package.tiles), options=package.options,
                     created_at=package.created_at)
    r.xdel(keys.dead, letter_id)
    letter: dict[Any, Any] = {**fields, "package": old.encode()}
    r.xadd(keys.dead, letter)
    assert fetch(old.target)[0] == 404  # the job is failed and the URL expired: refused, as it should be

    empty = tmp_path / "admin.yaml"
    empty.write_text("{}\n")
    admin = {f"REDIS_{f.name.upper()}": _env_value(getattr(settings.redis, f.name))
             for f in dataclasses.fields(settings.redis) if isinstance(getattr(settings.redis, f.name), (str, bool))}
    admin.update(PATHS_ROOT=settings.paths.root, WEB_SIGNING_KEY=settings.web.signing_key,
                 WEB_PUBLIC_URL=settings.web.public_url)
    for name, value in admin.items():
        monkeypatch.setenv(f"TESSERA_{name}", value)
    assert main(["--config", str(empty), "retry", job_id]) == 0  # `tessera retry <id>`, as the admin runs it

    wait_until(lambda: r.xpending(keys.jobs, GROUP)["pending"] == 0 and r.llen(keys.inbox) == 0
               and r.xlen(keys.jobs) == 1, timeout=10, what="the keeper to admit it and trim the old entry")
    [(_, entry)] = cast(list[tuple[str, dict[str, str]]], r.xrange(keys.jobs))
    again = JobPackage.decode(entry["package"])
    assert entry["id"] == job_id and again == package_of(r, keys, job_id)
    for fresh, stale in zip((again.target, *again.tiles), (old.target, *old.tiles), strict=True):
        assert urlsplit(fresh).path == urlsplit(stale).path
        assert expiry(fresh) >= time.time() + settings.web.input_url_ttl - 60
        query = parse_qs(urlsplit(fresh).query)  # good on its signature alone, whatever the job's state
        assert signer.path_if_valid(job_id, urlsplit(fresh).path.rsplit("/", 1)[1], query["exp"][0],
                                    query["sig"][0]) is not None
    assert fetch(again.target) == (200, target)
    assert json.loads(again.encode())["options"] == json.loads(old.encode())["options"]

    run_all(Worker(settings, slot=0))
    assert client.request(f"{web.base_url}/api/mosaics/{job_id}")[1]["state"] == "done"
