"""Cancel latency on a W2-sized job: 128x128 cells of 32 px (a 4096² px mosaic), on a real node (redis-server with
its ACL users, the web app and its keeper, one worker process), the job canceled while it fetches its tiles and
while it renders (matching is too short to catch from a poll); prints the median and max seconds from the
POST .../cancel to the job's `canceled` note (its finished_at), per stage.

    .venv/bin/python bench/cancel.py [--repeats 5] [--tiles 1000]

Timings are only comparable within one run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers.http import TileServers  # noqa: E402
from tests.helpers.images import encode, make_target  # noqa: E402
from tests.helpers.processes import stop_process, wait_until  # noqa: E402
from tests.helpers.redis import start_redis  # noqa: E402
from tests.helpers.settings import settings_factory  # noqa: E402
from tests.helpers.web import WebServer, serving  # noqa: E402
from tests.helpers.worker import start_worker  # noqa: E402
from workers.cli import client  # noqa: E402
from workers.cli.startup import use_one_kernel_cache  # noqa: E402
from workers.service.keeper import Keeper  # noqa: E402
from workers.service.redis_server import acl_lines  # noqa: E402

STAGES = {"fetching": ("preparing tiles",), "rendering": ("matched", "rendering", "making the zoomable view")}
"""Where a run cancels: the first stage the job reports that starts so."""
ROLES = ("web", "worker", "keeper", "orchestrator", "monitor", "webhooks")


def cancel_once(web: WebServer, tiles: TileServers, count: int, starts: tuple[str, ...], delay: float) -> float:
    code, reply = client.submit(web.base_url, encode(make_target(480, 480)), [],
                                {"grid": "128x128", "tile_px": "32"}, tile_urls=tiles.serve(delay, count))
    assert code == 202, reply
    url = web.base_url + reply["status_url"]

    def there() -> bool:
        view = client.request(url)[1]
        assert view["state"] in ("queued", "running"), f"finished before stage {starts}: {view}"
        return str(view.get("stage", "")).startswith(starts)

    wait_until(there, timeout=300, interval=0.01, what=f"stage {starts}")
    asked = time.time()
    request = urllib.request.Request(url + "/cancel", data=b"", method="POST",
                                     headers={"Authorization": f"Bearer {reply['delete_token']}"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30) as answer:
        assert answer.status == 202
    final = client.wait_for(web.base_url, reply["status_url"], timeout=120, interval=0.01)
    assert final["state"] == "canceled", final
    return float(final["finished_at"]) - asked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tiles", type=int, default=1000, help="tile pictures per job, served on loopback")
    args = parser.parse_args()
    use_one_kernel_cache()
    with tempfile.TemporaryDirectory(prefix="tessera-cancel-") as tmp:
        root = Path(tmp)
        env = {f"TESSERA_REDIS_{role.upper()}_PASSWORD": secrets.token_urlsafe(16) for role in ROLES}
        env["TESSERA_REDIS_PREFIX"] = "bench" + secrets.token_hex(4)  # the ACL lines are made for this prefix
        password = secrets.token_urlsafe(16)
        probe = settings_factory(root, "redis://127.0.0.1:1/0", password)(**env)
        server = start_redis(root / "redis", password=password, acl=acl_lines(probe.redis))
        base = settings_factory(root, server.url, password)
        try:
            with serving(lambda **more: base(**env, **more)) as web, TileServers(root / "tiles") as tiles:
                Keeper(web.settings).prepare()
                worker = start_worker(web, root / "worker.log")
                try:
                    cancel_once(web, tiles, args.tiles, STAGES["rendering"], 0.0)  # warm: kernels, tile cache
                    print(f"cancel latency, 128x128 cells of 32 px, {args.tiles} tiles, {args.repeats} runs each")
                    print("| stage | median s | max s |\n|---|---|---|")
                    for stage, starts in STAGES.items():
                        delay = 0.02 if stage == "fetching" else 0.0
                        seconds = [cancel_once(web, tiles, args.tiles, starts, delay) for _ in range(args.repeats)]
                        print(f"| {stage} | {statistics.median(seconds):.3f} | {max(seconds):.3f} |", flush=True)
                finally:
                    stop_process(worker)
        finally:
            stop_process(server.process)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
