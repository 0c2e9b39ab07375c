"""The peers' own virtualenv (RQ, Celery with its Redis transport), made by the bench on first use."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-peers"
REQUIREMENTS = ("rq", "celery[redis]")
"""Unpinned on purpose: the bench compares against the peers as users install them today."""
STAMP = VENV / ".installed"


def python() -> Path:
    """The peers' interpreter, made and filled with pip if it is not there yet."""
    exe = VENV / "bin" / "python"
    if not STAMP.is_file():
        print(f"bench: making {VENV.relative_to(HERE.parent.parent)} with {', '.join(REQUIREMENTS)} (once)",
              file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        subprocess.run([str(exe), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
                       check=True)
        STAMP.write_text("\n".join(REQUIREMENTS) + "\n")
    return exe


def versions(exe: Path) -> dict[str, str]:
    """Installed versions of the peers and of redis-py, for the table's header."""
    code = ("import importlib.metadata as m; "
            "print(' '.join(f'{n}={m.version(n)}' for n in ('rq', 'celery', 'kombu', 'redis')))")
    out = subprocess.run([str(exe), "-c", code], check=True, capture_output=True, text=True).stdout
    return dict(item.split("=", 1) for item in out.split())


if __name__ == "__main__":
    print(versions(python()))
