"""`tessera orchestrator`, `tessera nodes`, `tessera scale --dry-run` and `tessera results-account`.

The `tessera` command finds them through the ``tessera.commands`` entry point (setup.cfg), which names
:func:`register`; so workers/ never imports the orchestrator.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import redis

from config import ConfigError, Settings
from config.scaling import SCALING_FILE, ScalingSettings, load_scaling
from orchestrator import account
from orchestrator.loop import Orchestrator, read_load
from orchestrator.policy import Memory, NodeRecord, decide
from orchestrator.registry import Registry
from workers.protocol import queue as readings
from workers.protocol.connection import REDIS_DOWN, connect
from workers.protocol.exitcodes import RET_CONFIG, RET_CONNECT, RET_ERROR, RET_OK
from workers.protocol.keys import Keys

SCALING_HELP = "scaling file (default: config/scaling.yaml under paths.root)"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the orchestrator's commands to the `tessera` parser."""
    orchestrator = sub.add_parser("orchestrator", help="run the orchestrator: add and remove worker nodes over SSH")
    orchestrator.add_argument("--config", dest="scaling", help=SCALING_HELP)
    orchestrator.set_defaults(service=True, run=lambda args, settings: run_orchestrator(settings, args.scaling))
    nodes = sub.add_parser("nodes", help="list the worker nodes: state, workers, jobs done, last heartbeat, reason")
    nodes.add_argument("--config", dest="scaling", help=SCALING_HELP)
    nodes.set_defaults(run=lambda args, settings: print_nodes(settings, args.scaling))
    scale_ = sub.add_parser("scale", help="check the scaling file and say what the orchestrator would do now")
    scale_.add_argument("--config", dest="scaling", help=SCALING_HELP)
    scale_.add_argument("--dry-run", action="store_true", help="only say it (without: one pass, acted on)")
    scale_.set_defaults(run=lambda args, settings: scale(settings, args.scaling, args.dry_run))
    results = sub.add_parser("results-account", help="web host, as root: set up the SFTP-only account worker "
                                                     "nodes store results through (again at any time)")
    results.add_argument("--dry-run", action="store_true", help="only print the folders and the sshd rules")
    results.set_defaults(run=lambda args, settings: results_account(settings, args.dry_run))


def scaling_file(settings: Settings, path: str | None) -> Path:
    """--config FILE, else config/scaling.yaml under paths.root."""
    return Path(path) if path else Path(settings.paths.root) / SCALING_FILE


def _load(settings: Settings, path: str | None, command: str) -> ScalingSettings | None:
    """The scaling file; without --config and without config/scaling.yaml: no nodes, nothing to scale."""
    if path is None and not scaling_file(settings, None).exists():
        print(f"tessera {command}: no {scaling_file(settings, None)}: no candidate nodes", file=sys.stderr)
        return ScalingSettings()
    try:
        return load_scaling(scaling_file(settings, path))
    except ConfigError as exc:
        print(f"tessera {command}: {exc}", file=sys.stderr)
        return None


def run_orchestrator(settings: Settings, path: str | None) -> int:
    scaling = _load(settings, path, "orchestrator")
    if scaling is None:
        return RET_CONFIG
    orchestrator = Orchestrator(settings, scaling)
    orchestrator.install_signal_handlers()
    return orchestrator.run()


def scale(settings: Settings, path: str | None, dry_run: bool) -> int:
    """Print what the policy would do now and why; without --dry-run, also do it (one pass) and wait."""
    scaling = _load(settings, path, "scale")
    if scaling is None:
        return RET_CONFIG
    print(f"{scaling_file(settings, path)}: ok ({len(scaling.nodes)} nodes, min {scaling.min_nodes}, "
          f"max {scaling.max_nodes})")
    if not dry_run:
        orchestrator = Orchestrator(settings, scaling)
        print(orchestrator.tick())
        orchestrator.wait_idle()
        return RET_OK
    r, keys = connect(settings.redis, "orchestrator"), Keys(settings.redis.prefix)
    load = read_load(r, keys)
    try:
        records, memory = Registry(r, keys).all(), Registry(r, keys).load_timers()
    except REDIS_DOWN as exc:
        records, memory = {}, Memory()
        print(f"registry unavailable: {exc}")
    decision, _ = decide(scaling, load, records, memory, time.time())
    print(f"would {decision}")
    print("(with the running orchestrator's timers, as last saved in the registry)")
    return RET_OK if load is not None else RET_CONNECT


def results_account(settings: Settings, dry_run: bool) -> int:
    """Set up (or print, with --dry-run) the results account: user, chroot tree, keys file, sshd drop-in."""
    try:
        if dry_run:
            lay = account.layout(settings.results, settings.paths.media)
            for folder in lay.folders:
                print(f"{folder.path}: {folder.owner}'s, mode {folder.mode:o}")
            print(f"--- {settings.results.sshd_dropin}")
            print(account.dropin(lay, settings.results.authorized_keys), end="")
            return RET_OK
        for line in account.setup(settings):
            print(line)
    except account.AccountError as exc:
        print(f"tessera results-account: {exc.reason}", file=sys.stderr)
        return RET_CONFIG
    return RET_OK


def print_nodes(settings: Settings, path: str | None) -> int:
    """Table: node, state, workers, jobs done, last heartbeat, reason."""
    scaling = _load(settings, path, "nodes")
    r, keys = connect(settings.redis, "orchestrator"), Keys(settings.redis.prefix)
    try:
        records = Registry(r, keys).all()
        beats = readings.heartbeats(r, keys)
        done = _jobs_done(r, keys)
    except REDIS_DOWN as exc:
        print(f"tessera nodes: redis unreachable: {exc}", file=sys.stderr)
        return RET_CONNECT
    names = list(dict.fromkeys([*(s.name for s in (scaling.nodes if scaling else ())), *records]))
    now = time.time()
    print(f"{'node':<16} {'state':<9} {'since':>7} {'workers':>7} {'jobs done':>9} {'last beat':>9}  reason")
    for name in names:
        rec = records.get(name, NodeRecord(name))
        mine = [b for b in beats if b.get("node") == name]
        last = max((float(b.get("at") or 0) for b in mine), default=0.0)
        since = f"{now - rec.since:.0f}s" if rec.since else "-"
        beat = f"{now - last:.1f}s" if last else "-"
        print(f"{name:<16} {rec.state.value:<9} {since:>7} {len(mine):>7} {done.get(name, 0):>9} {beat:>9}  "
              f"{rec.reason}")
    return RET_OK if scaling is not None else RET_ERROR


def _jobs_done(r: redis.Redis, keys: Keys) -> dict[str, int]:
    """Finished jobs per node, from the status hashes still kept (their worker is '<node>-<slot>')."""
    client = r
    counts: dict[str, int] = {}
    pipe = client.pipeline(transaction=False)
    for key in client.scan_iter(match=keys.job("*"), count=1000):
        pipe.hmget(key, ["state", "worker"])
    for state, worker in pipe.execute():
        if state == "done" and worker:
            node = str(worker).rsplit("-", 1)[0]
            counts[node] = counts.get(node, 0) + 1
    return counts
