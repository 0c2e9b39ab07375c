"""The watchdog: a supervisord event listener that keeps a node's workers alive.

- A worker that went FATAL (e.g. the node booted while Redis was down) is started
  again once Redis answers; Redis is probed with capped backoff meanwhile. One that
  last exited RET_CONFIG stays FATAL: a person must fix the config first.
- On each TICK it reads the workers' heartbeats: a RUNNING worker whose heartbeat
  is stale, or that holds a job without progress for ``hang_timeout``, is killed
  (supervisord restarts it; its job is reclaimed). A worker past the memory limit
  gets SIGTERM: it finishes its job, exits, and supervisord starts it fresh.
- Every ``watchdog.reconcile_every`` it runs one bounded pass of the reconciler (workers/service/reconcile.py):
  a job left queued or running with no stream entry and no live holder is queued again or failed; a job whose
  status hash vanished early is said and counted.
- Missing metrics never cause an action: nothing is judged while Redis is down,
  nor until heartbeats have had time to resume after it comes back.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, TextIO, cast

import psutil
from supervisor import childutils

from config import Settings
from workers.protocol import logs
from workers.protocol.backoff import backoff
from workers.protocol.connection import REDIS_DOWN, connect
from workers.protocol.exitcodes import RET_CONFIG
from workers.protocol.keys import Keys
from workers.service.reconcile import Reconciler

log = logging.getLogger("tessera.watchdog")
WORKER_GROUP = "worker"


class Watchdog:
    def __init__(self, settings: Settings, rpc: Any = None) -> None:
        self.settings = settings
        self.limits = settings.watchdog
        self.keys = Keys(settings.redis.prefix)
        self.redis = connect(settings.redis, "worker", timeout=2.0)
        self.rpc = rpc
        self.reconciler = Reconciler(self.redis, settings)
        self.to_revive: set[str] = set()
        self.probe_attempt = 0
        self.next_probe = 0.0
        self.redis_ok_since: float | None = None
        self.termed: set[int] = set()
        self.left_fatal: set[str] = set()
        """FATAL workers that exited RET_CONFIG: not revived (and said once)."""

    def run(self, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
        logs.setup("watchdog")  # stderr: stdout carries the event-listener protocol
        self.rpc = self.rpc or childutils.getRPCInterface(os.environ)
        log.info("watchdog watching group %r", WORKER_GROUP)
        while True:
            headers, payload = childutils.listener.wait(stdin, stdout)
            try:
                self.on_event(headers["eventname"], payload)
            except Exception:  # the watchdog itself must not die on a surprise
                log.exception("watchdog: error handling %s", headers.get("eventname"))
            childutils.listener.ok(stdout)

    def on_event(self, name: str, payload: str) -> None:
        if name == "PROCESS_STATE_FATAL":
            fields = childutils.get_headers(payload.split("\n", 1)[0])
            if fields.get("groupname") == WORKER_GROUP:
                self.to_revive.add(f"{fields['groupname']}:{fields['processname']}")
                log.warning("%s:%s is FATAL; will start it once Redis answers", fields["groupname"],
                            fields["processname"])
        processes = self.rpc.supervisor.getAllProcessInfo()
        workers = [p for p in processes if p["group"] == WORKER_GROUP]
        self.to_revive |= {f"{p['group']}:{p['name']}" for p in workers if p["statename"] == "FATAL"}
        self._leave_config_errors(workers)
        redis_ok = self.probe() if self.to_revive else self.redis_answers()
        if redis_ok and self.to_revive:
            self.revive()
        if redis_ok:
            self.check_health([p for p in workers if p["statename"] == "RUNNING"])
            self.reconcile()

    def reconcile(self) -> None:
        """One reconciler pass when one is due; its failure never stops the health checks."""
        try:
            self.reconciler.maybe_run()
        except REDIS_DOWN:
            pass  # the next pass tries again
        except Exception:
            log.exception("watchdog: reconciler pass failed; going on")

    # -- reviving FATAL workers ----------------------------------------------
    def probe(self) -> bool:
        """Ask Redis, but no more often than the backoff allows."""
        now = time.monotonic()
        if now < self.next_probe:
            return False
        if self.redis_answers():
            self.probe_attempt = 0
            return True
        self.next_probe = now + backoff(self.probe_attempt, cap=self.limits.probe_cap)
        self.probe_attempt += 1
        return False

    def redis_answers(self) -> bool:
        try:
            self.redis.ping()
        except REDIS_DOWN:
            self.redis_ok_since = None
            return False
        if self.redis_ok_since is None:
            self.redis_ok_since = time.time()
        return True

    def _leave_config_errors(self, workers: list[dict[str, Any]]) -> None:
        """Take workers that went FATAL on a config error off the revive list: a respawn cannot fix that."""
        bad = {f"{p['group']}:{p['name']}" for p in workers
               if p["statename"] == "FATAL" and p.get("exitstatus") == RET_CONFIG}
        for name in sorted(bad - self.left_fatal):
            log.error("%s exited with a config error (exit %d); leaving it FATAL until the config is fixed",
                      name, RET_CONFIG)
        self.left_fatal = bad
        self.to_revive -= bad

    def revive(self) -> None:
        for name in sorted(self.to_revive):
            log.info("starting %s: Redis answers again", name)
            try:
                self.rpc.supervisor.startProcess(name, False)
            except Exception as exc:  # already started by someone else, or gone from the config
                log.warning("could not start %s: %s", name, exc)
        self.to_revive.clear()

    # -- judging running workers ---------------------------------------------
    def check_health(self, running: list[dict[str, Any]]) -> None:
        now = time.time()
        stale = self.limits.heartbeat_stale
        if self.redis_ok_since is None or now - self.redis_ok_since < stale:
            return  # heartbeats may not have resumed yet after an outage
        for process in running:
            reason, signal_name = self.verdict(process, now)
            if reason:
                name = f"{process['group']}:{process['name']}"
                log.warning("%s (pid %d): %s; sending %s", name, process["pid"], reason, signal_name)
                self.rpc.supervisor.signalProcess(name, signal_name)

    def verdict(self, process: dict[str, Any], now: float) -> tuple[str, str]:
        """(reason, signal) for a worker to restart, or ("", "") when it is healthy."""
        pid, limits = int(process["pid"]), self.limits
        beat = cast(dict[str, str], self.redis.hgetall(self.keys.worker(self.settings.node, pid)))
        uptime = now - float(process["start"])
        if not beat:
            if uptime > limits.heartbeat_stale:
                return f"no heartbeat after {uptime:.0f} s up", "KILL"
            return "", ""
        age = now - float(beat.get("at", 0))
        if age > limits.heartbeat_stale:
            return f"heartbeat {age:.0f} s old", "KILL"
        idle_for = now - float(beat.get("progress_at", now))
        if beat.get("job") and idle_for > limits.hang_timeout:
            return f"job {beat['job']} made no progress for {idle_for:.0f} s", "KILL"
        if pid not in self.termed and _rss_mb(pid) > limits.max_rss_mb:
            self.termed.add(pid)
            return f"memory {_rss_mb(pid):.0f} MB over the limit of {limits.max_rss_mb} MB", "TERM"
        return "", ""


def _rss_mb(pid: int) -> float:
    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except psutil.Error:
        return 0.0
