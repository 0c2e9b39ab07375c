"""Kernels load from Numba's cache without Numba's full registry refresh (workers/cli/startup.py), and still work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = """
import sys
from workers.cli.startup import prepare_kernels, prepare_process
prepare_process(); prepare_kernels()  # as the entry points do, before the kernels load
import numpy as np
import kernels
rng = np.random.default_rng(3)
cells, tiles = rng.random((37, 12), dtype=np.float32), rng.random((53, 12), dtype=np.float32)
ref = ((cells[:, None, :] - tiles[None]) ** 2).sum(-1).argmin(1)
assert (kernels.nearest_candidates(cells, tiles, 1)[0][:, 0] == ref).all()
picture = kernels.render(rng.integers(0, 256, (3, 4, 4, 3), dtype=np.uint8), np.zeros((2, 2), np.int64),
                         offsets=np.ones((2, 2, 2, 2, 3), np.float32))
assert picture.shape == (8, 8, 3)
# Also not imported: numba.np.arrayobj (with its string support, 0.03 s), which a kernel that makes or
# reshapes an array inside would need as its environment is rebuilt; ours take scratch arrays instead.
loaded = {"numba.np.arraymath", "numba.np.arrayobj"} & set(sys.modules)
print("refreshed" if loaded else "not refreshed")
"""


def _run(cache: Path) -> str:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-c", CHECK], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="needs the JIT")
def test_cached_kernels_load_without_registry_refresh_or_array_support(tmp_path: Path) -> None:
    cache = tmp_path / "numba-cache"
    assert _run(cache) == "refreshed"  # the first process compiles: the full refresh, as Numba does it
    assert _run(cache) == "not refreshed"  # the next loads the object code only, and gets the same answers
