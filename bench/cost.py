"""The job cost model against real builds: predicted work units (workers/protocol/cost.py) vs measured seconds.

    .venv/bin/python bench/cost.py --data /tmp/bench-data [--quick]
    .venv/bin/python bench/cost.py --index 1000 5000 20000      # the cost of reading the backlog instead

Each row builds one mosaic in this process the way a worker does (deep zoom on, no tile cache or memo, so every
tile is decoded), after one warm-up build so Numba's loading is not counted. It prints the measured seconds, the
job's work units, and the seconds predicted from a seconds-per-unit fitted over the whole table (the median of
seconds/work, what the completion note's moving average converges to), and their ratio: the model is good when
the ratio stays within a small factor across sizes. Small on purpose: the machine may be shared.

With --index it measures what a /metrics scrape or an orchestrator pass pays for tessera_backlog_seconds instead:
N queued jobs (500 tile URLs each) in a redis-server of its own, the median time of read_backlog (exact up to
backlog.CAP jobs, a sample past it) and of the keeper's prune.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import load as load_settings  # noqa: E402
from tests.helpers.redis import start_redis  # noqa: E402
from workers.cli.build import LocalSource, tile_refs  # noqa: E402
from workers.cli.startup import prepare_kernels  # noqa: E402
from workers.pipeline.mosaic import build_mosaic  # noqa: E402
from workers.protocol import backlog, cost, stream  # noqa: E402
from workers.protocol.keys import Keys  # noqa: E402
from workers.protocol.options import DEFAULT, Options  # noqa: E402
from workers.protocol.package import JobPackage  # noqa: E402

Row = tuple[str, int, int, int]
"""(tile set, columns, tile px, min_distance or DEFAULT); rows = columns (the target is square)."""
ROWS: tuple[Row, ...] = (
    ("tiles-1000", 16, 16, DEFAULT), ("tiles-1000", 32, 16, DEFAULT), ("tiles-1000", 64, 32, DEFAULT),
    ("tiles-1000", 96, 32, DEFAULT), ("tiles-1000", 64, 64, DEFAULT), ("tiles-1000", 128, 32, DEFAULT),
    ("tiles-1000", 64, 32, 0), ("tiles-1000", 64, 32, 8),
    ("tiles-10000", 32, 16, DEFAULT), ("tiles-10000", 64, 32, DEFAULT), ("tiles-10000", 128, 32, DEFAULT),
    ("tiles-10000", 96, 64, DEFAULT),
)
QUICK = (ROWS[1], ROWS[2], ROWS[5], ROWS[8], ROWS[9])


def build_once(data: Path, row: Row, target: str) -> tuple[float, float]:
    """(measured seconds, work units) of one build."""
    tiles, cols, px, distance = row
    settings = load_settings()
    settings = dataclasses.replace(settings, mosaic=dataclasses.replace(settings.mosaic, tile_cache="", tile_memo_mb=0),
                                   limits=dataclasses.replace(settings.limits, max_tiles=10**6))
    refs = tile_refs(str(data / tiles))
    package = JobPackage.create(target, refs, Options(cols=cols, rows=cols, tile_px=px, seed=0, min_distance=distance))
    work = cost.work_units(package)
    started = time.perf_counter()
    result = build_mosaic(package, LocalSource(None, [target, *refs]), settings, deepzoom=True)
    print(f"  {row}: grid {result.details['grid']}, stages {result.details['timings']}", file=sys.stderr)
    return time.perf_counter() - started, work


def index_table(counts: list[int]) -> None:
    """Median seconds of read_backlog and prune over N queued jobs, in a redis-server of this run's own."""
    with tempfile.TemporaryDirectory() as folder:
        server = start_redis(Path(folder))
        try:
            r = redis.Redis(port=server.port, password=server.password, decode_responses=True)
            keys, queued = Keys("bench"), 0
            print(f"{'jobs':>7} {'read_backlog ms':>15} {'sampled':>7} {'prune ms':>8}")
            for count in counts:
                pipe = r.pipeline(transaction=False)
                for _ in range(count - queued):
                    stream.queue_in(pipe, keys, JobPackage.create("http://e.test/t", [f"http://e.test/{i}"
                                                                   for i in range(500)], Options(64, 0, 32, 0)))
                pipe.execute()
                queued = count
                reads = [_timed(lambda: backlog.read_backlog(r, keys)) for _ in range(5)]
                prunes = [_timed(lambda: backlog.prune(r, keys)) for _ in range(3)]
                sampled = backlog.read_backlog(r, keys).sampled
                print(f"{count:>7} {statistics.median(reads) * 1000:>15.1f} {sampled!s:>7} "
                      f"{statistics.median(prunes) * 1000:>8.1f}")
            r.close()
        finally:
            server.process.terminate()
            server.process.wait(10)


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench-data"))
    parser.add_argument("--target", default="goldfish.png")
    parser.add_argument("--quick", action="store_true", help="five rows only")
    parser.add_argument("--index", type=int, nargs="+", metavar="JOBS", help="time reading the backlog instead")
    args = parser.parse_args()
    if args.index:
        index_table(sorted(args.index))
        return 0
    target = str(args.data / "targets" / args.target)
    prepare_kernels()
    build_once(args.data, ROWS[0], target)  # warm-up: Numba's cache loads, as in a worker's first job
    table = []
    for row in QUICK if args.quick else ROWS:
        seconds, work = build_once(args.data, row, target)
        table.append((row, seconds, work))
        print(f"  measured {row}: {seconds:.2f} s, {work:.2f} units", file=sys.stderr, flush=True)
    per_unit = statistics.median(seconds / work for _, seconds, work in table)
    print(f"seconds per work unit (median over the table): {per_unit:.3f} (prior {cost.PRIOR_SECONDS_PER_UNIT})")
    print(f"{'tiles':>12} {'grid':>5} {'px':>3} {'dist':>4} {'units':>7} {'actual s':>8} {'predicted s':>11} "
          f"{'pred/actual':>11}")
    ratios = []
    for (tiles, cols, px, distance), seconds, work in table:
        predicted = work * per_unit
        ratios.append(predicted / seconds)
        dist = "dflt" if distance == DEFAULT else str(distance)
        print(f"{tiles:>12} {cols:>5} {px:>3} {dist:>4} {work:>7.2f} {seconds:>8.2f} {predicted:>11.2f} "
              f"{predicted / seconds:>11.2f}")
    print(f"pred/actual from {min(ratios):.2f} to {max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
