"""`tessera demo`: build one mosaic through the HTTP API from photos shipped with scikit-image."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from config import Settings
from workers.cli import client

TARGET = "astronaut.png"
TILE_SOURCES = ("coffee.png", "chelsea.png", "rocket.jpg", "hubble_deep_field.jpg", "retina.jpg", "ihc.png",
                "motorcycle_left.png", "color.png", "immunohistochemistry.png", "logo.png")
TILES_PER_SOURCE = 24


def _data_dir() -> Path:
    try:
        import skimage.data
    except ImportError as exc:
        raise SystemExit("tessera demo: needs the demo extra (pip install -e '.[demo]')") from exc
    return Path(skimage.data.__file__).parent


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def demo_images(count: int = TILES_PER_SOURCE, seed: int = 7) -> tuple[bytes, list[bytes]]:
    """The target photo and tiles: random square crops of the other bundled colour photos."""
    folder, rng = _data_dir(), np.random.default_rng(seed)
    target = _png(Image.open(folder / TARGET).convert("RGB"))
    tiles = []
    for name in TILE_SOURCES:
        if not (folder / name).exists():
            continue
        photo = Image.open(folder / name).convert("RGB")
        for _ in range(count):
            side = int(rng.integers(min(photo.size) // 6, min(photo.size) // 2))
            left = int(rng.integers(0, photo.width - side))
            top = int(rng.integers(0, photo.height - side))
            tiles.append(_png(photo.crop((left, top, left + side, top + side)).resize((64, 64))))
    return target, tiles


def run_demo(settings: Settings, grid: str = "64", tile_px: int = 16) -> int:
    base = f"http://{settings.web.host}:{settings.web.port}"
    try:
        return _demo(base, settings, grid, tile_px)
    except (OSError, TimeoutError) as exc:
        print(f"tessera demo: cannot reach the web app at {base}: {exc}")
        print("  see var/log/web.log and `.venv/bin/supervisorctl -c supervisord.conf status`")
        return 1


def _demo(base: str, settings: Settings, grid: str, tile_px: int) -> int:
    client.wait_healthy(base, timeout=90)
    target, tiles = demo_images()
    started = time.monotonic()
    code, reply = client.submit(base, target, tiles, {"grid": grid, "tile_px": str(tile_px)})
    if code != 202:
        print(f"tessera demo: submission refused: HTTP {code} {reply}")
        return 1
    print(f"submitted job {reply['id']} with {len(tiles)} tiles; waiting…")
    view = client.wait_for(base, reply["status_url"], timeout=300)
    seconds = time.monotonic() - started
    if view["state"] != "done":
        print(f"tessera demo: the job failed: {view.get('error')}")
        return 1
    result = Path(settings.paths.media) / view["result_url"].rsplit("/", 1)[-1]
    print(f"done in {seconds:.1f} s")
    print("\n".join(where_to_look(base, settings, reply["page_url"], result)))
    return 0


def where_to_look(base: str, settings: Settings, page_url: str, result: Path) -> list[str]:
    """The closing lines: the mosaic, the other pages, and how to get into /admin."""
    admin = ("user admin, password: web.admin_password in config/local.yaml" if settings.web.admin_password
             else "off: set web.admin_password (`tessera init` adds one)")
    readable = settings.redis.monitor_password or not settings.redis.acl  # else no `monitor` user: 503
    metrics = "Prometheus text" if readable else "503: set redis.monitor_password (`tessera init` adds one)"
    return [f"  mosaic:  {base}{page_url}",
            f"  file:    {result}",
            f"  new:     {base}/",
            f"  mine:    {base}/mine  (mosaics made from your browser)",
            f"  admin:   {base}/admin  ({admin})",
            f"  metrics: {base}/metrics  ({metrics})"]
