# ruff: noqa: F811  (pytest fixtures imported from tests.helpers are parameters here)
"""The primary Redis SIGKILLed under load, with a real Sentinel topology (tests/helpers/sentinel.py).

A real web app and keeper (in threads, as tests/helpers/web.py serves them) and three worker processes, all in
HA mode through three sentinels; a client submits 200 small jobs at a steady pace, honouring 503 + Retry-After
with an Idempotency-Key (so a retry never makes a second job), while the test kills the primary and brings it
back (Sentinel makes it a replica of the new one). The ledger, from honest sources:
- accepted: the ids the web answered 202 (one per key; the jobs' hashes on the last primary are exactly these);
- lost: accepted jobs the API does not show `done` at the end;
- duplicated: a job with more than one result file, more than one entry on the recent list, or a `done`
  counter above the number of jobs (each written completion note bumps it once): effects a user could see;
- rebuilt: jobs whose build finished more than once (the workers' own "job <id> done" log lines): a note or an
  ack lost with the killed primary makes a worker build again, which the once-only note must absorb;
- recovery: seconds from each kill to the first job finished (its `finished_at`, Redis's clock) after it.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pytest

from tests.helpers.faults import TARGET, tile_server  # noqa: F401  (fixture used by name)
from tests.helpers.processes import stop_process, wait_until
from tests.helpers.sentinel import Topology, start_topology
from tests.helpers.web import WebServer, serving
from tests.helpers.worker import start_worker
from workers.cli import client
from workers.protocol.connection import REDIS_DOWN, connect
from workers.protocol.idempotency import HEADER
from workers.protocol.keys import Keys
from workers.protocol.status import FINAL

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

JOBS = 200
WORKERS = 3
PACE = 0.02
"""Seconds between two submissions: faster than three workers build (each tile answer takes TILE_DELAY), so
jobs wait in the queue when the primary dies and the first job done after a kill measures the failover, not
the next submission."""
TILE_DELAY = 0.3
GRACE = 1.0
"""A 503 counts as "during the switch" when its request was in flight at some time between a kill and GRACE
seconds after the sentinels list the old primary as an up replica again (they notice it after the primary does)."""
POLL_SLACK = 0.15
"""Seconds before the helper saw the replica online (it asks every 0.05 s) in which a 202 may be right."""
IN_FLIGHT = 1.0
"""Seconds after a kill in which a 202 may still arrive: its WAIT was acknowledged before the SIGKILL."""
WORKER_ENV = {"TESSERA_WORKER_BLOCK_MS": "500", "TESSERA_WORKER_HEARTBEAT_INTERVAL": "0.5",
              "TESSERA_QUEUE_CLAIM_IDLE": "3.0"}
"""A read cut off by the kill leaves its entry pending for a worker that never got it: claimed after 3 s."""


@dataclass
class Answer:
    sent: float
    at: float
    """When the request was sent and when its answer came (time.time())."""
    method: str
    status: int
    code: str = ""
    """The error code of a 503 (queue_unavailable, not_replicated); "replayed" for a 202 that answers a key again."""


@dataclass
class Client:
    """A client that submits at a steady pace and waits out a 503 for its Retry-After, with one key a job."""

    base_url: str
    tile_urls: list[str]
    answers: list[Answer] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)
    """Idempotency-Key → job id of its 202."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, sent: float, method: str, status: int, reply: dict[str, Any], replayed: bool = False) -> None:
        code = reply.get("error", {}).get("code", "") if status >= 400 else "replayed" if replayed else ""
        with self.lock:
            self.answers.append(Answer(sent, time.time(), method, status, code))

    def submit(self, key: str, number: int) -> None:
        unique = [f"{url}?job={number}" for url in self.tile_urls]  # past the workers' fetch cache: each job waits
        fields = {"grid": "8", "tile_px": "8", "tile_urls": "\n".join(unique)}
        body, content_type = client.encode_multipart(fields, [("target", "target.png", TARGET)])
        while True:
            sent = time.time()
            status, headers, reply = _post(self.base_url + "/api/mosaics", body, content_type, key)
            self.note(sent, "POST", status, reply, headers.get("Idempotent-Replayed") == "true")
            if status == 202:
                with self.lock:
                    self.accepted[key] = reply["id"]
                return
            assert status == 503, (status, reply)
            time.sleep(float(headers.get("Retry-After", "1")))

    def run(self, count: int, stop: threading.Event) -> None:
        for number in range(count):
            if stop.is_set():
                return
            self.submit(f"failover-{number}-{secrets.token_hex(4)}", number)
            time.sleep(PACE)

    def watch(self, stop: threading.Event) -> None:
        """Poll the accepted jobs that are not final yet, as their pages do, until ``stop``."""
        final: set[str] = set()
        while not stop.wait(0.5):
            with self.lock:
                ids = [job for job in self.accepted.values() if job not in final]
            final |= {job for job, view in self.poll(ids).items() if view["state"] in FINAL}

    def poll(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        views = {}
        for job in ids:
            sent = time.time()
            status, view = client.request(f"{self.base_url}/api/mosaics/{job}", timeout=30)
            self.note(sent, "GET", status, view)
            if status == 200:
                views[job] = view
        return views


def _post(url: str, body: bytes, content_type: str, key: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": content_type, "Accept": "application/json", HEADER: key})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=60) as reply:
            return reply.status, dict(reply.headers), json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"{}")


@dataclass
class Run:
    topology: Topology
    web: WebServer
    workers: list[subprocess.Popen[bytes]]
    logs: list[Path]
    client: Client

    def done_lines(self) -> dict[str, list[float]]:
        """job id → when each of its "job <id> done" lines in the workers' (JSON) logs was written: one per
        finished build, logged once its note is written (and, with Sentinel, replicated or given up on)."""
        found: dict[str, list[float]] = {}
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                entry = json.loads(line) if line.startswith("{") else {}
                if match := re.fullmatch(r"job (\S+) done", entry.get("msg", "")):
                    found.setdefault(match[1], []).append(datetime.fromisoformat(entry["ts"]).timestamp())
        return found


@pytest.fixture
def run(tmp_path: Path, tile_server: Any) -> Iterator[Run]:
    topology = start_topology(tmp_path / "servers", tmp_path / "root")
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with serving(topology.make_settings) as web:
            logs = [tmp_path / f"worker-{n}.log" for n in range(WORKERS)]
            extra = {**topology.client_env(), **WORKER_ENV}
            with ThreadPoolExecutor(WORKERS) as pool:  # each warms up in parallel
                workers += pool.map(lambda n: start_worker(web, logs[n], slot=n, extra=extra), range(WORKERS))
            yield Run(topology, web, workers, logs, Client(web.base_url, tile_server(TILE_DELAY, 4)))
    finally:
        for process in workers:
            stop_process(process)
        topology.stop()


def failover_run(run: Run, kills: int, tmp_path: Path) -> dict[str, Any]:
    """Submit JOBS while killing the primary ``kills`` times (each after a share of the jobs was accepted, the old
    primary restarted in between); wait for every accepted job; the table of what happened."""
    pids = [p.pid for p in run.workers]
    stop, started = threading.Event(), time.time()
    submitter = threading.Thread(target=run.client.run, args=(JOBS, stop), daemon=True)
    poller = threading.Thread(target=run.client.watch, args=(stop,), daemon=True)  # GETs through the switch too
    submitter.start()
    poller.start()
    windows: list[tuple[float, float]] = []
    """(kill, back): from the SIGKILL to the old primary back as a replica in sync, as the sentinels see it."""
    recovered: list[float] = []
    """When each kill's first job done on the new primary was seen (watch_first_done)."""
    backlog: list[int] = []
    watched = threading.Event()  # the watchers stop once every job is final, not when the client is done
    try:
        for number in range(kills):
            share = JOBS * (number + 1) // (kills + 2)  # e.g. one kill at 1/3 of the jobs, two at 1/4 and 1/2
            wait_until(lambda s=share: len(run.client.accepted) >= s, timeout=120,  # type: ignore[misc]
                       what=f"{share} jobs accepted")
            old = run.topology.kill_primary()
            killed = run.topology.kills[-1][1]
            threading.Thread(target=watch_first_done, args=(run, killed, recovered, backlog, watched),
                             daemon=True).start()
            run.topology.wait_for_failover(old)
            run.topology.restart_as_replica(old, by_sentinel=kills == 1)  # the next kill needs a replica
            windows.append((killed, time.time()))
        submitter.join(timeout=180)
        assert not submitter.is_alive(), "the client did not finish submitting"
    finally:
        stop.set()
        poller.join(timeout=60)
    ids = list(run.client.accepted.values())
    try:
        views = wait_final(run, ids, timeout=180)
    finally:
        watched.set()
    assert len(recovered) == len(windows), f"no job seen done on the new primary after a kill: {recovered}"
    recovery = [round(at - killed, 1) for at, (killed, _) in zip(sorted(recovered), windows, strict=True)]
    pairs = zip(run.topology.kills, run.topology.linked, strict=True)
    alone = [(killed + IN_FLIGHT, linked - POLL_SLACK) for (_, killed), (_, linked) in pairs]  # no replica then
    table = ledger(run, ids, views, windows, alone, recovery, time.time() - started)
    table["backlog_at_kill"] = backlog
    (tmp_path / "failover.json").write_text(json.dumps(table, indent=2))
    print(f"\nFAILOVER {json.dumps(table)}")
    assert [p.pid for p in run.workers] == pids and all(p.poll() is None for p in run.workers), \
        "a worker exited"
    return table


def watch_first_done(run: Run, killed: float, found: list[float], backlog: list[int], stop: threading.Event) -> None:
    """Append to ``found`` when the first note made after the kill is on the primary: read every 0.05 s through
    the sentinels (connect() follows the failover), as admin, from the jobs' hashes; to ``backlog``, how many
    accepted jobs were not done at the first read (so the figure measures the failover, not an idle queue)."""
    settings = run.web.settings.redis
    keys, r = Keys(settings.prefix), connect(settings, "admin", timeout=1.0)
    try:
        while not stop.is_set():
            with run.client.lock:
                ids = list(run.client.accepted.values())
            try:
                pipe = r.pipeline(transaction=False)
                for job in ids:
                    pipe.hmget(keys.job(job), "state", "finished_at")
                notes = cast(list[list[str | None]], pipe.execute())
            except REDIS_DOWN:
                notes = []
            if notes and len(backlog) < len(found) + 1:
                backlog.append(sum(1 for state, _ in notes if state != "done"))
            if any(state == "done" and float(at or 0) > killed for state, at in notes):
                found.append(time.time())
                return
            stop.wait(0.05)
    finally:
        r.close()


def wait_final(run: Run, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Poll the API (as the page does) until every job is final; their last views."""
    views: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while True:
        views.update(run.client.poll([job for job in ids if views.get(job, {}).get("state") not in FINAL]))
        if all(views.get(job, {}).get("state") in FINAL for job in ids):
            return views
        if time.monotonic() > deadline:
            raise TimeoutError(f"not final after {timeout:.0f} s: "
                               f"{Counter(views.get(job, {}).get('state', '?') for job in ids)}")
        time.sleep(0.5)


def ledger(run: Run, ids: list[str], views: dict[str, dict[str, Any]], windows: list[tuple[float, float]],
           alone: list[tuple[float, float]], recovery: list[float], seconds: float) -> dict[str, Any]:
    settings = run.web.settings
    keys = Keys(settings.redis.prefix)
    with run.topology.admin(run.topology.primary()) as r:
        hashes = {key.rsplit(":", 1)[1] for key in r.scan_iter(match=keys.job("*"))}
        recent = Counter(cast(list[str], r.lrange(keys.recent, 0, -1)))
        done_counter = int(cast(str, r.hget(keys.stats, "done")) or 0)
    media = Path(settings.paths.media)
    results = Counter(p.name.split(".")[0] for p in media.iterdir() if not p.name.startswith(".")
                      and not p.name.endswith(".dz"))
    built = run.done_lines()
    logged = [round(first_done_after(killed, views, built) - killed, 1) for killed, _ in windows]
    answers = run.client.answers
    during = [a for a in answers if a.status == 503 and any(a.sent <= back + GRACE and a.at >= k
                                                            for k, back in windows)]  # in flight in a switch
    outside = [a for a in answers if a.status == 503 and a not in during]
    return {
        "jobs": len(ids), "kills": len(windows), "failovers": run.topology.failovers(),
        "lost": sum(1 for job in ids if views[job]["state"] != "done"),
        "duplicated": sum(1 for job in ids if results[job] > 1 or recent[job] > 1) + max(0, done_counter - len(ids)),
        "rebuilt": sum(1 for job in ids if len(built.get(job, [])) > 1),
        "builds": sum(len(built.get(job, [])) for job in ids),
        "kill_to_first_done_s": recovery, "kill_to_first_done_logged_s": logged,
        "switch_s": [round(back - killed, 1) for killed, back in windows],
        "http_503": sum(1 for a in answers if a.status == 503),
        "http_503_outside_switch": [f"{a.method} sent {a.sent - windows[0][0]:+.2f}s answered "
                                    f"{a.at - windows[0][0]:+.2f}s from the first kill" for a in outside],
        "http_other_5xx": sum(1 for a in answers if a.status >= 500 and a.status != 503),
        "http_202_without_replica": [f"{a.at - end:+.2f}s{' replayed' if a.code else ''}" for a in answers
                                     for start, end in alone
                                     if a.method == "POST" and a.status == 202 and start <= a.at <= end],
        "replayed_202": sum(1 for a in answers if a.code == "replayed"),
        "last_503_s": {method: last_503(during, windows, method) for method in ("GET", "POST")},
        "codes_503": dict(Counter(f"{a.method} {a.code}" for a in answers if a.status == 503)),
        "statuses": dict(Counter(f"{a.method} {a.status}" for a in answers)),
        "extra_jobs": len(hashes - set(ids)), "missing_hashes": len(set(ids) - hashes),
        "distinct_ids": len(set(ids)), "done_counter": done_counter, "seconds": round(seconds, 1),
    }


def last_503(during: list[Answer], windows: list[tuple[float, float]], method: str) -> list[float]:
    """Per kill, seconds from it to the last 503 answer of ``method`` in flight in its switch (0: none)."""
    return [round(max((a.at - killed for a in during if a.method == method and a.sent <= back + GRACE
                       and a.at >= killed), default=0.0), 1) for killed, back in windows]


def first_done_after(killed: float, views: dict[str, dict[str, Any]], times: dict[str, list[float]]) -> float:
    """When its worker logged the first job done after the kill (after the note's WAIT, acknowledged or given up
    on), of the jobs whose note was made after the kill (``finished_at``: only the new primary can have it)."""
    after = [at for job, view in views.items() if float(view.get("finished_at") or 0) > killed
             for at in times.get(job, []) if at > killed]
    return min(after, default=float("nan"))


def assert_clean(table: dict[str, Any], kills: int) -> None:
    assert table["jobs"] == JOBS and table["distinct_ids"] == JOBS, table  # one job per key, retries or not
    assert table["kills"] == kills and table["failovers"] == kills, table  # no failover but the ones we caused
    assert table["lost"] == 0 and table["missing_hashes"] == 0, table  # every 202 survived the kills
    assert table["duplicated"] == 0 and table["extra_jobs"] == 0, table  # no retry made a second job
    assert table["done_counter"] == JOBS, table  # one completion note per job on the last primary
    assert table["builds"] >= JOBS, table  # the logs are read right: every job's build is there at least once
    assert table["http_other_5xx"] == 0, table  # never a 500
    assert table["http_503"] > 0, table  # the switch was seen, and answered "try again"
    assert not table["http_503_outside_switch"], table
    assert not table["http_202_without_replica"], table  # a 202 means a replica has the job


def test_primary_killed_once_loses_and_duplicates_nothing(run: Run, tmp_path: Path) -> None:
    assert_clean(failover_run(run, kills=1, tmp_path=tmp_path), kills=1)


def test_primary_killed_twice_old_primary_back_as_replica(run: Run, tmp_path: Path) -> None:
    assert_clean(failover_run(run, kills=2, tmp_path=tmp_path), kills=2)
