"""Tessera's queue against RQ and Celery on one redis-server, in one run; prints one table.

    .venv/bin/python bench/queue/run.py            # full: medians of 3, about 3-4 minutes
    .venv/bin/python bench/queue/run.py --quick    # smaller counts, one run each, under a minute

See bench/queue/README.md for what each row measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO)]

import bare  # noqa: E402
import flow  # noqa: E402
import peers_env  # noqa: E402
import recovery  # noqa: E402
import redis_proc  # noqa: E402
from common import median, wait_done  # noqa: E402
from http_side import HttpSystem, web_server  # noqa: E402
from table import TESSERA, render, rows  # noqa: E402
from tessera_side import NOOP, TARGET, TILES, ReplicatedSystem, TesseraSystem  # noqa: E402

from workers.protocol.package import JobPackage  # noqa: E402

HTTP = "Tessera via HTTP (noop shim)"
BARE = "bare XADD / XREADGROUP+XACK"
ALWAYS = "Tessera, appendfsync always"
"""The same queue measures with every write fsynced before its reply (redis.appendfsync: always, a node's default);
the other rows run under everysec, as the peers' Redis usually does."""
REPLICA = "Tessera, a replica attached"
WAITED = "Tessera, a replica + WAIT 1 (Sentinel mode)"
"""The enqueue with a replica of the bench's Redis attached, without and with the WAIT that redis.sentinels turns
on (a 202 only once a replica holds the job): the cost of surviving a failover, on one machine's loopback."""
RQ_FORKS_REPEATS = 1
"""RQ's forking worker drains ~80 jobs/s: one run of its drain and latency keeps the bench short."""


def measure_tessera(server: redis_proc.RedisProcess, workdir: Path, sizes: flow.Sizes,
                    http_posts: int) -> tuple[dict[str, float], dict[str, float]]:
    """Queue-level measures, then the same through POST /api/mosaics while the workers run."""
    tessera = TesseraSystem(server, workdir)
    queue = flow.measure(tessera, sizes, enqueue=True)
    http: dict[str, float] = {}
    with tessera.start_workers() as pool:
        flow.warm_up(tessera, pool)
        with web_server(tessera, noop_shim=True) as port:
            client = HttpSystem(tessera, port)
            rates = []
            for _ in range(sizes.repeats):
                started = time.perf_counter()
                ids = client.fill(http_posts)
                rates.append(http_posts / (time.perf_counter() - started))
                wait_done(ids, tessera.done_times, flow.timeout_for(http_posts))
            http["enqueue"] = median(rates)
            http.update(flow.latency(client, sizes.latency, sizes.interval_ms, sizes.repeats))
    queue["restart"] = recovery.restart_rerun(tessera)
    queue["abandoned"] = recovery.abandoned_rerun(tessera)
    return queue, http


def measure_durable(server: redis_proc.RedisProcess, workdir: Path, sizes: flow.Sizes) -> dict[str, float]:
    """Tessera's queue measures under ``appendfsync always``, then the server back to everysec."""
    server.set_appendfsync("always")
    try:
        return flow.measure(TesseraSystem(server, workdir), sizes, enqueue=True)
    finally:
        server.set_appendfsync("everysec")


def measure_replicated(server: redis_proc.RedisProcess, workdir: Path,
                       sizes: flow.Sizes) -> dict[str, dict[str, float]]:
    """One job per call with a replica attached: plain, then each followed by its WAIT (the web under Sentinel)."""
    replica = redis_proc.start(workdir / "replica", replica_of=server)
    try:
        results = {}
        for name, system in ((REPLICA, TesseraSystem(server, workdir)), (WAITED, ReplicatedSystem(server, workdir))):
            results[name] = {"enqueue": flow.enqueue_rate(system, flow.one_at_a_time(system), sizes.enqueue,
                                                          sizes.repeats)}
        return results
    finally:
        replica.stop()


def measure_bare(server: redis_proc.RedisProcess, sizes: flow.Sizes) -> dict[str, float]:
    payload = JobPackage.create(TARGET, TILES, NOOP).encode()  # the same bytes per entry as Tessera's
    return {
        "enqueue": bare.enqueue_rate(server, payload, sizes.enqueue, sizes.repeats, batched=False),
        "enqueue_batch": bare.enqueue_rate(server, payload, sizes.enqueue, sizes.repeats, batched=True),
        "drain": bare.drain_rate(server, payload, sizes.drain, sizes.repeats),
    }


def measure_peer(python: Path, server: redis_proc.RedisProcess, system: str, sizes: flow.Sizes, logs: Path,
                 *extra: str) -> dict[str, float]:
    """One peer variant in its own virtualenv (peer_main.py), results back as one JSON line."""
    command = [str(python), str(HERE / "peer_main.py"), system, "--enqueue", str(sizes.enqueue), "--drain",
               str(sizes.drain), "--latency", str(sizes.latency), "--interval-ms", str(sizes.interval_ms),
               "--repeats", str(sizes.repeats), "--logs", str(logs), *extra]
    env = {**os.environ, "BENCH_REDIS_URL": server.url(system, with_password=True)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"bench: {system} {' '.join(extra)} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def machine(server: redis_proc.RedisProcess, versions: dict[str, str]) -> str:
    info = server.client("tessera").info("server")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    return (f"{os.cpu_count()} CPUs ({cpu}); Python {platform.python_version()}; redis-server "
            f"{info['redis_version']} (appendonly everysec but the `{ALWAYS}` row, password); "
            f"redis-py {versions['redis']}; "
            f"rq {versions['rq']}; celery {versions['celery']} / kombu {versions['kombu']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts and one run each (under a minute)")
    parser.add_argument("--repeats", type=int, help="runs per measure (default 3, quick 1); the median is shown")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (worker logs, redis files)")
    parser.add_argument("--durability", action="store_true",
                        help="only Tessera's queue rows, appendfsync everysec and always side by side")
    args = parser.parse_args()
    sizes = flow.Sizes(enqueue=1000, drain=300, latency=200, repeats=1) if args.quick else flow.Sizes()
    if args.repeats:
        sizes = flow.Sizes(sizes.enqueue, sizes.drain, sizes.latency, sizes.interval_ms, args.repeats)
    http_posts = max(200, sizes.enqueue // 5)
    peers_python = None if args.durability else peers_env.python()
    workdir = Path(tempfile.mkdtemp(prefix="tessera-queue-bench-"))
    server = redis_proc.start(workdir / "redis")
    started, load = time.monotonic(), os.getloadavg()[0]
    try:
        results: dict[str, dict[str, float]] = {}
        if peers_python is None:
            header = machine(server, {"redis": redis_proc.redis.__version__, "rq": "-", "celery": "-", "kombu": "-"})
            results[TESSERA] = flow.measure(TesseraSystem(server, workdir), sizes, enqueue=True)
            results[ALWAYS] = measure_durable(server, workdir, sizes)
            results.update(measure_replicated(server, workdir, sizes))
            return _report(args, sizes, http_posts, header, results, load, started, workdir)
        header = machine(server, peers_env.versions(peers_python))
        results[TESSERA], results[HTTP] = measure_tessera(server, workdir, sizes, http_posts)
        results[ALWAYS] = measure_durable(server, workdir, sizes)
        results.update(measure_replicated(server, workdir, sizes))
        results[BARE] = measure_bare(server, sizes)
        logs = workdir / "logs"
        results["Celery, 2 × worker --pool solo"] = measure_peer(peers_python, server, "celery", sizes, logs)
        simple = measure_peer(peers_python, server, "rq", sizes, logs, "--worker-class", "rq.worker.SimpleWorker")
        results["RQ (Queue.enqueue / enqueue_many)"] = {key: simple.pop(key) for key in ("enqueue", "enqueue_batch")}
        results["RQ, 2 × SimpleWorker"] = simple
        results["RQ, 2 × Worker (fork per job)"] = measure_peer(
            peers_python, server, "rq", sizes, logs, "--no-enqueue", "--drain-repeats", str(RQ_FORKS_REPEATS),
            "--latency-repeats", str(RQ_FORKS_REPEATS))
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return _report(args, sizes, http_posts, header, results, load, started, workdir)


def _report(args: argparse.Namespace, sizes: flow.Sizes, http_posts: int, header: str,
            results: dict[str, dict[str, float]], load: float, started: float, workdir: Path) -> int:
    notes = _notes(results, sizes, http_posts)
    print(f"Queue benchmark: {'--quick, ' if args.quick else ''}medians of {sizes.repeats} run(s); "
          f"{sizes.enqueue:,} jobs per enqueue run, {sizes.drain:,} per drain, {sizes.latency:,} per latency run")
    print(header)
    print(f"load average (1 min) {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
          + (" -- the machine was busy: rates are low, tails long" if load > 0.5 * (os.cpu_count() or 1) else ""))
    print(render(rows(results, notes, sizes.interval_ms)))
    print(f"ratio = value ÷ Tessera's (rates: above 1 is faster; times: above 1 is slower). "
          f"{time.monotonic() - started:.0f} s in all.")
    if args.keep:
        print(f"work folder: {workdir}")
    return 0


def _notes(results: dict[str, dict[str, float]], sizes: flow.Sizes, http_posts: int) -> dict[tuple[str, str], str]:
    offered = 1000 / sizes.interval_ms
    notes = {(HTTP, "enqueue"): f"{http_posts:,} POSTs, one keep-alive client, workers draining",
             (BARE, "drain"): "the floor: no status, no note",
             (TESSERA, "restart"): "from process start, warm-up included",
             (TESSERA, "abandoned"): f"queue.claim_idle = {recovery.ABANDONED_CLAIM_IDLE:g} s for this row",
             (ALWAYS, "enqueue"): "redis.appendfsync: always (a node's default): each write on disk before its reply",
             (REPLICA, "enqueue"): "asynchronous replication to a replica on loopback",
             (WAITED, "enqueue"): "each job WAITs for the replica's ack (redis.sentinels set): the 202's cost"}
    for system, values in results.items():
        if values.get("drain", offered) < offered:
            for key in ("p50", "p99"):
                notes[(system, key)] = f"overloaded: drains {values['drain']:,.0f}/s < {offered:,.0f}/s offered"
    fork = "RQ, 2 × Worker (fork per job)"
    if fork in results and sizes.repeats > 1:
        for key in ("drain", "p50", "p99"):
            notes[(fork, key)] = (notes.get((fork, key), "") + "; " if (fork, key) in notes else "") + "1 run"
    return notes


if __name__ == "__main__":
    sys.exit(main())
