"""Friend-list gathering benchmark: 500 and 5,000 friends per network through the local fixture network.

    .venv/bin/python bench/friends.py [--sizes 500 5000] [--repeats 3]
    .venv/bin/python bench/friends.py --end-to-end [--sizes 500 5000] [--network bluesky]

Times ``gather`` alone (the list pages over loopback HTTP, parsing, skips and the URL policy's checks of every
picture URL), median of --repeats, each with a cold list cache; then once more from the node's list cache. The
pictures themselves are not fetched here (that is the job's tile stage).

--end-to-end times a whole friends job as a worker runs it, without Redis: the "gathering friends" stage
(workers/pipeline/friends.py), then build_mosaic with the avatars fetched over loopback (the fixture makes each
24 px PNG on request, in this process), decoded and matched, rendered and encoded (JPEG, no zoomable view), with
a cold list cache, no fetch cache and no tile cache: a first job. Its rows are one run each (--repeats: median).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import config  # noqa: E402
import kernels  # noqa: E402
from tests.helpers.friends import fixture_api  # noqa: E402
from tests.helpers.images import encode, make_target  # noqa: E402
from workers.inputs.friends import FriendsRequest, gather  # noqa: E402
from workers.inputs.friends.fixture import FixtureNetwork  # noqa: E402
from workers.pipeline import friends  # noqa: E402
from workers.pipeline.mosaic import build_mosaic  # noqa: E402
from workers.protocol.options import Options  # noqa: E402
from workers.protocol.package import JobPackage  # noqa: E402

HANDLES = {"bluesky": "alice.bsky.social", "mastodon": "alice@mastodon.social", "github": "alice"}


def end_to_end(sizes: list[int], network_name: str, repeats: int) -> None:
    print(f"{'network':9} {'friends':>7} {'tiles':>6} {'gather s':>9} {'fetch s':>8} {'match+render s':>15} "
          f"{'total s':>8}")
    for size in sizes:
        runs = []
        for _ in range(repeats):
            with FixtureNetwork(follows=size, followers=size // 2, overlap=size // 10, real_names=False) as network, \
                    tempfile.TemporaryDirectory() as folder, serve_target(Path(folder)) as target:
                runs.append(one_job(network, network_name, size, target, Path(folder)))
        fetched = [r[3].get("target", 0.0) + r[3].get("tiles", 0.0) for r in runs]  # fetch and decode
        gather_s, fetch_s = statistics.median(r[0] for r in runs), statistics.median(fetched)
        rest = statistics.median(r[2] - f for r, f in zip(runs, fetched, strict=True))
        total = statistics.median(r[0] + r[2] for r in runs)
        print(f"{network_name:9} {size:7} {int(runs[0][1]):6} {gather_s:9.3f} {fetch_s:8.3f} {rest:15.3f} "
              f"{total:8.3f}")


def one_job(network: FixtureNetwork, name: str, size: int, target: str,
            folder: Path) -> tuple[float, float, float, dict[str, float]]:
    api, _ = fixture_api(network, cache_dir=folder / "lists")
    base = config.load(env={"TESSERA_PATHS_ROOT": str(folder)})
    settings = dataclasses.replace(base, friends=api.settings, fetch=api.fetcher.settings,
                                   mosaic=dataclasses.replace(base.mosaic, tile_cache="", tile_memo_mb=0))
    package = JobPackage.create(target, [], Options(cols=100, rows=0, tile_px=16, seed=0),
                                friends={"network": name, "handle": HANDLES[name], "max": size})
    started = time.perf_counter()
    gathered = friends.gather_tiles(package, api, settings.limits.max_tiles, lambda *a, **k: None)
    gathered_at = time.perf_counter()
    result = build_mosaic(gathered.package, api.fetcher, settings)
    done = time.perf_counter()
    return gathered_at - started, len(gathered.package.tiles), done - gathered_at, result.details["timings"]


@contextlib.contextmanager
def serve_target(folder: Path) -> Iterator[str]:
    """The target photo on a loopback HTTP server (127.0.0.1, which the fixture's fetcher allows)."""
    (folder / "target.png").write_bytes(encode(make_target(640, 480)))
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/target.png"
    finally:
        server.shutdown()
        server.server_close()


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--end-to-end", action="store_true", help="a whole friends job: gather, fetch, build")
    parser.add_argument("--network", choices=sorted(HANDLES), default="bluesky")
    args = parser.parse_args()
    if args.end_to_end:
        kernels.warm_up()  # compile cost is paid before a worker's first job, not in it
        end_to_end(args.sizes, args.network, args.repeats)
        return
    print(f"{'network':9} {'asked':>6} {'kept':>6} {'pages':>6} {'gather s':>9} {'cached s':>9}")
    for size in args.sizes:
        with FixtureNetwork(follows=size, followers=size // 2, overlap=size // 10) as network, \
                tempfile.TemporaryDirectory() as folder:
            for name, handle in HANDLES.items():
                request = FriendsRequest(name, handle, ("follows", "followers"), size)
                times, tallies = [], []
                for repeat in range(args.repeats):
                    api, _ = fixture_api(network, cache_dir=Path(folder) / f"{name}-{repeat}")
                    started = time.perf_counter()
                    friends = gather(request, api, tallies.append)
                    times.append(time.perf_counter() - started)
                started = time.perf_counter()
                gather(request, api)
                cached = time.perf_counter() - started
                print(f"{name:9} {size:6} {len(friends):6} {tallies[-1].pages:6} {statistics.median(times):9.3f} "
                      f"{cached:9.4f}")


if __name__ == "__main__":
    main()
