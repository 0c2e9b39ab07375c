"""The control loop: read load, ask the policy, add or remove nodes over SSH, record it all in the registry.

Adding or removing a node runs in a thread of its own, so a slow node never stalls the loop; the
registry says ``starting``/``draining`` meanwhile, and a restarted orchestrator takes those up again,
with the policy's timers (kept in the registry too), so a restart neither skips nor restarts a cooldown.
A node that cannot be reached is marked failed with the reason, and the policy retries it with backoff.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import redis

from config import Settings
from config.scaling import NodeSpec, ScalingSettings
from orchestrator import nodeconf, nodekeys
from orchestrator.nodes import NodeControl, NodeError
from orchestrator.policy import Beat, Decision, Load, Memory, NodeState, decide
from orchestrator.registry import Registry
from workers.protocol import backlog
from workers.protocol import queue as readings
from workers.protocol.connection import REDIS_DOWN, connect
from workers.protocol.exitcodes import RET_OK
from workers.protocol.keys import Keys
from workers.protocol.states import READY, WorkerState

log = logging.getLogger(__name__)


def read_load(r: redis.Redis, keys: Keys) -> Load | None:
    """Backlog (inbox + lag + pending), its predicted seconds and live heartbeats; None when Redis cannot tell us.

    The seconds are None (the policy falls back to job counts) when only they cannot be read, e.g. a Redis user
    from before the backlog index."""
    try:
        numbers = readings.read_queue(r, keys)
        beats = readings.heartbeats(r, keys)
    except REDIS_DOWN as exc:
        log.warning("metrics unavailable: %s", exc)
        return None
    try:
        seconds: float | None = backlog.read_backlog(r, keys).seconds
    except REDIS_DOWN as exc:
        log.warning("backlog seconds unavailable: %s", exc)
        return None
    except redis.ResponseError as exc:  # NOPERM: the ACL file predates the index; counts still work
        log.warning("backlog seconds unavailable: %s", exc)
        seconds = None
    return Load(backlog=numbers.backlog, backlog_seconds=seconds,
                beats=tuple(Beat(node=b.get("node", ""), state=WorkerState.read(b.get("state")),
                                 cpu=float(b.get("cpu") or 0), at=float(b.get("at") or 0)) for b in beats))


class Orchestrator:
    def __init__(self, settings: Settings, scaling: ScalingSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings, self.scaling, self.clock = settings, scaling, clock
        self.keys = Keys(settings.redis.prefix)
        self.r = connect(settings.redis, "orchestrator")
        self.registry = Registry(self.r, self.keys)
        self.memory: Memory | None = None
        """The policy's timers; read from the registry at the first pass (Redis may be down at start)."""
        self.busy: dict[str, threading.Thread] = {}
        self.stop_requested = threading.Event()
        self.wheels = Path(settings.paths.root) / scaling.remote.wheels
        self._last_said = ""

    # -- life cycle --------------------------------------------------------
    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: self.stop_requested.set())

    def run(self) -> int:
        log.info("orchestrator: %d candidate nodes, min %d, max %d", len(self.scaling.nodes),
                 self.scaling.min_nodes, self.scaling.max_nodes)
        while not self.stop_requested.is_set():
            try:
                self.tick()
            except REDIS_DOWN as exc:
                log.warning("redis unreachable: %s", exc)
            except Exception:  # never let a bug end the loop
                log.exception("orchestrator: unexpected error; going on")
            self.stop_requested.wait(self.scaling.interval)
        log.info("orchestrator stopped (node actions in flight resume at the next start)")
        return RET_OK

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait for node actions in flight (for one-shot use and tests)."""
        for thread in list(self.busy.values()):
            thread.join(timeout)

    # -- one pass ----------------------------------------------------------
    def tick(self) -> Decision:
        now = self.clock()
        load = read_load(self.r, self.keys)
        records = self.registry.all()
        self._reap()
        for name, rec in records.items():  # take up actions a stopped orchestrator left half done
            if name not in self.busy and self._known(name):
                if rec.state is NodeState.STARTING:
                    self._spawn(name, self._add)
                elif rec.state is NodeState.DRAINING:
                    self._spawn(name, self._remove)
        if self.memory is None:
            self.memory = self.registry.load_timers()
        decision, memory = decide(self.scaling, load, records, self.memory, now)
        if memory != self.memory:
            self.registry.save_timers(memory)
        self.memory = memory
        self._say(decision)
        for name in decision.add:
            self.registry.set(name, NodeState.STARTING, decision.reason, now=now)
            self._spawn(name, self._add)
        for name in decision.remove:
            self.registry.set(name, NodeState.DRAINING, decision.reason, now=now)
            self._spawn(name, self._remove)
        for name, reason in decision.fail:
            self._failed(name, reason)
            self._spawn(name, self._stop_quietly)
        return decision

    def _say(self, decision: Decision) -> None:
        text = str(decision)
        if decision.action != "hold":
            log.info("%s", text)
        elif text.split(";")[0] != self._last_said.split(";")[0]:
            log.info("%s", text)
        self._last_said = text

    def _known(self, name: str) -> bool:
        return any(spec.name == name for spec in self.scaling.nodes)

    def _spawn(self, name: str, action: Callable[[NodeSpec], None]) -> None:
        spec = self.scaling.node(name)
        thread = threading.Thread(target=self._guard, args=(spec, action), name=f"node-{name}", daemon=True)
        self.busy[name] = thread
        thread.start()

    def _reap(self) -> None:
        for name, thread in list(self.busy.items()):
            if not thread.is_alive():
                del self.busy[name]

    def _guard(self, spec: NodeSpec, action: Callable[[NodeSpec], None]) -> None:
        try:
            action(spec)
        except NodeError as exc:
            self._failed(spec.name, exc.reason)
        except Exception as exc:
            log.exception("node %s: unexpected error", spec.name)
            self._failed(spec.name, f"internal error: {exc.__class__.__name__}: {exc}")

    def _failed(self, name: str, reason: str) -> None:
        log.warning("node %s failed: %s", name, reason)
        self.registry.set(name, NodeState.FAILED, reason, failures=self.registry.get(name).failures + 1)

    # -- node actions (each in its own thread) -----------------------------
    def _add(self, spec: NodeSpec) -> None:
        control = NodeControl(spec, self.scaling.ssh)
        started = time.monotonic()
        log.info("node %s: provisioning (%s)", spec.name, control.provision(self.wheels))
        try:
            control.configure(nodeconf.files(self.settings, self.scaling, spec, self._grant_results_key(spec)))
            log.info("node %s: %s", spec.name, control.start())
        except BaseException:
            self._revoke_results_key(spec)  # a node that never started keeps no way into the web host
            raise
        deadline = started + self.scaling.health.start_timeout
        while not self.stop_requested.is_set():
            ready = [b for b in readings.heartbeats(self.r, self.keys)
                     if b.get("node") == spec.name and WorkerState.read(b.get("state")) in READY]
            if len(ready) >= spec.workers:
                took = time.monotonic() - started
                self.registry.set(spec.name, NodeState.ACTIVE, f"{len(ready)} workers heartbeating after {took:.0f} s",
                                  failures=0)
                log.info("node %s: active, %d workers after %.1f s", spec.name, len(ready), took)
                return
            if time.monotonic() > deadline:
                self._stop_quietly(spec)
                raise NodeError(f"no worker heartbeat within {self.scaling.health.start_timeout:.0f} s of the start")
            self.stop_requested.wait(0.5)

    def _remove(self, spec: NodeSpec) -> None:
        control = NodeControl(spec, self.scaling.ssh)
        timeout = self.scaling.scale_down.drain_timeout
        drained = control.drain(timeout)
        control.stop()
        self._revoke_results_key(spec)  # after the stop: the results of the jobs it finished are stored
        reason = "drained and stopped" if drained else f"drain passed {timeout:.0f} s; stopped"
        self.registry.set(spec.name, NodeState.REMOVED, reason, failures=0)
        log.info("node %s: %s", spec.name, reason)

    def _stop_quietly(self, spec: NodeSpec) -> None:
        """Best effort: stop what may still run on a node we gave up on; its results key is revoked in any case."""
        try:
            NodeControl(spec, self.scaling.ssh).stop(timeout=30)
        except NodeError as exc:
            log.info("node %s: not stopped: %s", spec.name, exc.reason)
        self._revoke_results_key(spec)

    # -- the node's key to the web host's results account (orchestrator/nodekeys.py) --------------------
    @property
    def _keys_file(self) -> Path | None:
        """The results account's keys file, when nodes store over SFTP (else nodes hold no key of this host)."""
        if self.scaling.remote.results.store != "sftp":
            return None
        return Path(self.settings.results.authorized_keys)

    def _grant_results_key(self, spec: NodeSpec) -> bytes:
        """A fresh key pair for the node: its public line replaces any older one; the private half to ship."""
        if self._keys_file is None:
            return b""
        key = nodekeys.new_key()
        nodekeys.authorize(self._keys_file, spec.name, key.public)
        log.info("node %s: results key made, in %s", spec.name, self._keys_file)
        return key.private

    def _revoke_results_key(self, spec: NodeSpec) -> None:
        if self._keys_file is not None:
            nodekeys.revoke(self._keys_file, spec.name)
            log.info("node %s: results key revoked", spec.name)
