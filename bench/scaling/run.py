"""bench/scaling: throughput with 1, 2 and 3 worker nodes brought up by the orchestrator over SSH,
and the time from a burst to the first job running on a node added for it.

    .venv/bin/python bench/scaling/run.py [--jobs 30] [--grid 120x80]

Everything is real and local: its own redis-server, the web app on waitress, one sshd per node on
loopback (the nodes share this machine's CPUs, so efficiency here is bounded by its cores).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]  # the test helpers are the package tests.helpers

import waitress.server  # noqa: E402
import yaml  # noqa: E402

import config  # noqa: E402
from config.scaling import NodeSpec, SshSettings, load_scaling  # noqa: E402
from orchestrator.loop import Orchestrator  # noqa: E402
from orchestrator.nodes import NodeControl  # noqa: E402
from orchestrator.policy import NodeState  # noqa: E402
from orchestrator.registry import Registry  # noqa: E402
from orchestrator.wheels import build_wheels  # noqa: E402
from tests.helpers.images import encode, make_target, make_tiles  # noqa: E402
from tests.helpers.processes import free_port, stop_process, wait_until  # noqa: E402
from tests.helpers.redis import start_redis  # noqa: E402
from tests.helpers.sshd import keygen, kill_tree, start_sshd  # noqa: E402
from web.app import make_app  # noqa: E402
from workers.cli import client  # noqa: E402
from workers.protocol.connection import connect  # noqa: E402
from workers.protocol.keys import Keys  # noqa: E402

WHEELS, VENV = ROOT / "var" / "wheels", ROOT / "var" / "test-nodes" / "venv"
PYTHON = getattr(sys, "_base_executable", sys.executable)
NAMES = ("a", "b", "c")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=30)
    parser.add_argument("--grid", default="120x80")
    args = parser.parse_args()
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" at every burst: expected here
    os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "var" / "numba-cache"))
    work = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    redis_server = start_redis(work / "redis")
    port = free_port()
    settings = config.load(env={"TESSERA_REDIS_URL": redis_server.url, "TESSERA_REDIS_PASSWORD": redis_server.password,
                                "TESSERA_REDIS_PREFIX": "b" + secrets.token_hex(3), "TESSERA_PATHS_ROOT": str(work),
                                "TESSERA_WEB_SIGNING_KEY": "bench", "TESSERA_WEB_PORT": str(port),
                                "TESSERA_WEB_PUBLIC_URL": f"http://127.0.0.1:{port}",
                                "TESSERA_WEB_RATE_LIMIT_PER_MINUTE": "100000", "TESSERA_WEB_MAX_ACTIVE_JOBS": "100000"})
    web = waitress.server.create_server(make_app(settings), host="127.0.0.1", port=port, threads=4,
                                        max_request_body_size=settings.limits.max_request_bytes)
    threading.Thread(target=web.run, daemon=True).start()
    line = keygen(work / "id_ed25519")
    (work / "authorized_keys").write_text(line + "\n")
    servers = {n: start_sshd(work / f"sshd-{n}", n, work / "authorized_keys") for n in (*NAMES, "webhost")}
    (work / "known_hosts").write_text("".join(s.known_hosts_line + "\n" for s in servers.values()))
    Path(settings.paths.media).mkdir(parents=True, exist_ok=True)
    build_wheels(WHEELS)
    first = servers["a"]
    NodeControl(NodeSpec(name="a", host="127.0.0.1", port=first.port, key_file=str(work / "id_ed25519"),
                         known_hosts=str(work / "known_hosts"), install_path=str(work / "nodes" / "a"),
                         venv=str(VENV), python=PYTHON), SshSettings()).provision(WHEELS)
    r, keys = connect(settings.redis, "orchestrator"), Keys(settings.redis.prefix)
    target, tiles = encode(make_target(320, 200)), [encode(t) for t in make_tiles(48)]

    def scaling(n_min: int, n_max: int, tag: str) -> Path:
        data = {"interval": 0.5, "min_nodes": n_min, "max_nodes": n_max,
                "scale_up": {"backlog_per_worker": 2, "for_seconds": 1, "cooldown": 1},
                "scale_down": {"idle_seconds": 3600},
                "remote": {"wheels": str(WHEELS), "settings": {"worker": {"block_ms": 300},
                                                               "mosaic": {"decode_processes": 1}},
                           "results": {"store": "sftp", "host": "127.0.0.1", "port": servers["webhost"].port,
                                       "key_file": str(work / "id_ed25519"), "known_hosts": str(work / "known_hosts")}},
                "nodes": [{"name": n, "host": "127.0.0.1", "port": servers[n].port,
                           "key_file": str(work / "id_ed25519"), "known_hosts": str(work / "known_hosts"),
                           "workers": 1, "venv": str(VENV),
                           "install_path": str(work / "nodes" / n), "python": PYTHON} for n in NAMES]}
        path = work / f"scaling-{tag}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    def submit(count: int) -> tuple[float, list[str]]:
        started = time.time()
        ids = []
        for _ in range(count):
            options = {"grid": args.grid, "tile_px": "8"}
            status, reply = client.submit(f"http://127.0.0.1:{port}", target, tiles, options)
            assert status == 202, reply
            ids.append(reply["id"])
        return started, ids

    def finished(ids: list[str]) -> list[dict[str, str]]:
        wait_until(lambda: all(r.hget(keys.job(j), "state") in ("done", "failed") for j in ids), timeout=900,
                   what="jobs", interval=0.2)
        return [r.hgetall(keys.job(j)) for j in ids]  # type: ignore[misc]

    def run_with(path: Path, wait_active: int) -> Orchestrator:
        orch = Orchestrator(settings, load_scaling(path))
        threading.Thread(target=orch.run, daemon=True).start()
        wait_until(lambda: sum(rec.state is NodeState.ACTIVE for rec in Registry(r, keys).all().values())
                   >= wait_active, timeout=300, what="nodes active", interval=0.2)
        return orch

    def stop_all(orch: Orchestrator) -> None:
        orch.stop_requested.set()
        orch.wait_idle(60)
        for spec in orch.scaling.nodes:  # a clean stop: workers remove their heartbeats
            NodeControl(spec, orch.scaling.ssh).stop()
        for n in NAMES:
            Registry(r, keys).set(n, NodeState.REMOVED, "bench reset")

    rows = []
    try:
        for n in (1, 2, 3):
            orch = run_with(scaling(n, n, f"fixed{n}"), n)
            finished(submit(3)[1])  # warm: every worker has compiled and fetched once
            started, ids = submit(args.jobs)
            jobs = finished(ids)
            seconds = max(float(j["finished_at"]) for j in jobs) - started
            rows.append((n, len(ids), seconds, 60 * len(ids) / seconds,
                         len({j["worker"].rsplit("-", 1)[0] for j in jobs})))
            stop_all(orch)
        orch = run_with(scaling(1, 2, "burst"), 1)
        finished(submit(2)[1])
        burst, ids = submit(4 * args.jobs)
        jobs = finished(ids)
        on_new = [float(j["started_at"]) for j in jobs if j["worker"].startswith("b-") and j.get("started_at")]
        to_new = min(on_new) - burst if on_new else float("nan")
        events = [e for e in Registry(r, keys).events() if e["node"] == "b" and float(str(e["at"])) >= burst]
        stop_all(orch)
    finally:
        for s in servers.values():
            s.stop()
        for n in NAMES:
            kill_tree(work / "nodes" / n / "var" / "supervisord.pid")
        web.close()
        stop_process(redis_server.process)

    base = rows[0][3]
    print(f"\nbench/scaling: {args.jobs} jobs of grid {args.grid} (tile_px 8), 1 worker per node, "
          f"{os.cpu_count()} CPU cores shared by all nodes\n")
    print("| nodes | jobs | seconds | jobs/minute | speed-up | efficiency | nodes that ran jobs |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, count, seconds, per_minute, used in rows:
        print(f"| {n} | {count} | {seconds:.1f} | {per_minute:.1f} | {per_minute / base:.2f}× | "
              f"{per_minute / base / n:.0%} | {used} |")
    print(f"\nburst of {4 * args.jobs} jobs on 1 node (min 1, max 2) → first job running on the added node: "
          f"{to_new:.1f} s "
          f"(scale-up decision, SSH, configure, supervisord, worker start and warm-up)")
    for e in events:
        print(f"  {float(str(e['at'])) - burst:6.1f} s  node b {e['state']:<8} {e['reason']}")


if __name__ == "__main__":
    main()
