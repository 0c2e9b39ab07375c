"""bench/mosaic.py's reuse figures: metapixel's placements reach the visible pictures of the tile folder.

The README's "largest reuse of one visible picture" for metapixel comes from here; a name that finds no picture
would count each file as its own picture and understate metapixel's reuse (it did: the library's files are
metapixel-prepare's ``<name>.png`` copies)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_mosaic", ROOT / "bench" / "mosaic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_mosaic", module)
    spec.loader.exec_module(module)
    return module


def test_metapixels_placements_count_per_visible_picture(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    photo = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tiles / "a.jpg", quality=95)
    Image.fromarray(photo).resize((48, 48), Image.Resampling.LANCZOS).save(tiles / "a-small.jpg", quality=90)
    Image.fromarray(255 - photo).save(tiles / "b.png")
    lib = "/tmp/lib"
    protocol = tmp_path / "protocol.txt"
    protocol.write_text("(mosaic (size 2 2)\n(metapixels\n" + "".join(
        f'({x} {y} 1 1 "{lib}/{name}.png") ; 1.0\n'
        for (x, y), name in zip([(0, 0), (1, 0), (0, 1), (1, 1)], ["a.jpg", "a-small.jpg", "a.jpg", "b.png"],
                                strict=True)) + "))\n")
    mosaic = bench()
    uses = mosaic.uses_from_protocol(protocol)
    assert uses == {"a.jpg": 2, "a-small.jpg": 1, "b.png": 1}
    groups = mosaic.picture_groups(tiles)
    assert groups["a.jpg"] == groups["a-small.jpg"] != groups["b.png"]
    assert mosaic.largest(uses, groups) == (2, 3)  # per file, per visible picture (the resized copy merged)
