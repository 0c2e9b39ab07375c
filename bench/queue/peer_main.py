"""Entry point for the peers' measures, run by run.py under .venv-peers; prints one JSON line.

    .venv-peers/bin/python peer_main.py rq --worker-class rq.worker.SimpleWorker --drain 2000 ...
The Redis URL (with its password) comes in BENCH_REDIS_URL, never on a command line.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from common import emit
from flow import Sizes, System, measure


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=("rq", "celery"))
    parser.add_argument("--worker-class", default="rq.worker.Worker")
    parser.add_argument("--enqueue", type=int, default=Sizes.enqueue)
    parser.add_argument("--drain", type=int, default=Sizes.drain)
    parser.add_argument("--latency", type=int, default=Sizes.latency)
    parser.add_argument("--interval-ms", type=float, default=Sizes.interval_ms)
    parser.add_argument("--repeats", type=int, default=Sizes.repeats)
    parser.add_argument("--drain-repeats", type=int)
    parser.add_argument("--latency-repeats", type=int)
    parser.add_argument("--no-enqueue", action="store_true", help="another variant already measured enqueue")
    parser.add_argument("--logs", type=Path, required=True)
    args = parser.parse_args()
    url = os.environ["BENCH_REDIS_URL"]
    system: System
    if args.system == "rq":
        from rq_side import RqSystem

        system = RqSystem(url, args.worker_class, args.logs)
    else:
        from celery_side import CelerySystem

        system = CelerySystem(url, args.logs)
    sizes = Sizes(args.enqueue, args.drain, args.latency, args.interval_ms, args.repeats)
    emit(measure(system, sizes, enqueue=not args.no_enqueue, drain_repeats=args.drain_repeats,
                 latency_repeats=args.latency_repeats))


if __name__ == "__main__":
    main()
