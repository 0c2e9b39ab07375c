"""One Numba cache per checkout (workers/cli/startup.py): `tessera warm-kernels` fills it and a `tessera build` run
by hand, with no NUMBA_CACHE_DIR in its environment, then compiles nothing."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("config", "kernels", "workers", "setup.cfg", "supervisord.conf")
"""What a fresh clone needs to run `python -m workers` (the virtualenv's packages come from this one's Python)."""
PRINT_CACHE_DIR = ("from workers.cli.startup import prepare_process; prepare_process(); "
                   "import os, numba; print(os.environ['NUMBA_CACHE_DIR']); print(numba.config.CACHE_DIR)")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")}
    return {**env, **extra}


def _clone(folder: Path) -> Path:
    """A copy of the checkout's sources, as a fresh clone has them: no var/, no Numba cache."""
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__", "local.yaml"))
        else:
            shutil.copy2(source, folder / name)
    return folder


def _run(clone: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m workers ARGS`` from ``clone`` (its own sources first on sys.path)."""
    out = subprocess.run([sys.executable, "-m", "workers", *args], cwd=clone, capture_output=True, text=True,
                         env=_env(PYTHONPATH=str(clone), **env), timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out


def test_every_process_of_a_checkout_uses_its_var_numba_cache(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PRINT_CACHE_DIR], cwd=tmp_path, capture_output=True, text=True,
                         env=_env(PYTHONPATH=str(ROOT)), timeout=120)
    assert out.stdout.split() == [str(ROOT / "var" / "numba-cache")] * 2, out.stderr
    # A cache set from outside (supervisord.conf's environment, a node's venv) is kept.
    out = subprocess.run([sys.executable, "-c", PRINT_CACHE_DIR], cwd=tmp_path, capture_output=True, text=True,
                         env=_env(PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=str(tmp_path / "x")), timeout=120)
    assert out.stdout.split() == [str(tmp_path / "x")] * 2, out.stderr


def test_an_installed_package_uses_its_virtualenvs_cache(tmp_path: Path) -> None:
    """Installed (not a checkout): <sys.prefix>/numba-cache, the folder a node's supervisord.conf names."""
    site = tmp_path / "site-packages"
    shutil.copytree(ROOT / "workers", site / "workers", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "config", site / "config", ignore=shutil.ignore_patterns("__pycache__"))
    code = ("from workers.cli.startup import kernel_cache_dir; import sys; "
            "print(kernel_cache_dir() == __import__('pathlib').Path(sys.prefix) / 'numba-cache')")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env=_env(PYTHONPATH=str(site)), timeout=120)
    assert out.stdout.strip() == "True", out.stderr


def _picture(path: Path, rng: np.random.Generator, side: int) -> None:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, "PNG")
    path.write_bytes(buf.getvalue())


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="needs the JIT")
@pytest.mark.timeout(900)
def test_first_build_of_a_fresh_clone_after_warm_up_compiles_nothing(tmp_path: Path) -> None:
    clone = _clone(tmp_path / "clone")
    rng = np.random.default_rng(4)
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    for i in range(24):
        _picture(tiles / f"t{i:02}.png", rng, 12)
    _picture(tmp_path / "target.png", rng, 64)
    _run(clone, "warm-kernels")  # what `make deps` runs
    cache = clone / "var" / "numba-cache"
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    assert any(p.suffix == ".nbi" for p in before)
    build = ("build", str(tmp_path / "target.png"), "--tiles", str(tiles), "--grid", "8", "--tile-px", "8")
    logs = [_run(clone, *build, "-o", str(tmp_path / "a.jpg"), "--no-cache", NUMBA_DEBUG_CACHE="1").stdout,
            _run(clone, *build, "-o", str(tmp_path / "b.png"), "--cache", str(tmp_path / "tc"), "--blend", "0",
                 "--min-distance", "2", NUMBA_DEBUG_CACHE="1").stdout,
            _run(clone, *build, "-o", str(tmp_path / "c.jpg"), "--cache", str(tmp_path / "tc"),  # read-only tiles
                 NUMBA_DEBUG_CACHE="1").stdout]
    for log in logs:  # Numba writes a kernel to its cache only after compiling it
        compiled = sorted({Path(line.split("'")[1]).name.split(".py")[0] for line in log.splitlines()
                           if "data saved to" in line})
        assert not compiled, f"compiled by a build after warm-kernels (missing from kernels.warm_up): {compiled}"
        loaded = [line for line in log.splitlines() if "loaded from" in line]
        assert loaded and all(str(cache) in line for line in loaded), log
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == before
