"""Build the wheels a worker node is provisioned from: the project and its dependencies (cached).

Run on the web host, which can reach a package index; the nodes then install with ``pip --no-index``.
The dependency wheels are built again (and the old ones dropped) whenever setup.cfg's install_requires
changes, so a new dependency reaches the nodes.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_IGNORE = shutil.ignore_patterns(".venv", "var", ".git", "build", "dist", "*.egg-info", "__pycache__",
                                       ".mypy_cache", ".ruff_cache", ".pytest_cache", "tests", "bench", "local.yaml")
"""Left out of the wheel: local.yaml holds this host's secrets."""
REQUIREMENTS_STAMP = ".install_requires"
"""In the wheels folder: the install_requires the dependency wheels there were built for."""


def build_wheels(dest: Path, source: Path = ROOT) -> list[Path]:
    """The project wheel, rebuilt every time, beside dependency wheels built once; all wheels in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    requirements, stamp = _requirements(source), dest / REQUIREMENTS_STAMP
    have_deps = (any(p for p in dest.glob("*.whl") if not p.name.startswith("tessera-"))
                 and stamp.exists() and stamp.read_text() == requirements)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(source, copy, ignore=SOURCE_IGNORE)  # builds leave build/ and egg-info behind
        out = Path(tmp) / "out"
        args = [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "-w", str(out)]
        subprocess.run([*args, *([] if not have_deps else ["--no-deps"]), str(copy)], check=True,
                       capture_output=True, timeout=1800)
        for old in dest.glob("tessera-*.whl" if have_deps else "*.whl"):
            old.unlink()  # two versions of one package side by side would fail the node's install
        for wheel in out.glob("*.whl"):
            shutil.move(str(wheel), dest / wheel.name)
    stamp.write_text(requirements)
    return sorted(dest.glob("*.whl"))


def _requirements(source: Path) -> str:
    parser = configparser.ConfigParser()
    parser.read(source / "setup.cfg")
    return parser.get("options", "install_requires", fallback="").strip()
