"""A real worker process (``python -m workers worker``) against a test's web app and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.helpers.processes import wait_until
from tests.helpers.web import WebServer


def start_worker(web: WebServer, log: Path, slot: int = 5,
                 extra: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """The worker with ``web``'s settings (as env, plus ``extra`` ``TESSERA_*`` overrides of its own), its output
    in ``log``; returned once it says it is ready."""
    with log.open("wb") as out:  # the child has its own copy of the file
        process = subprocess.Popen([sys.executable, "-m", "workers", "worker", "--slot", str(slot)],
                                   env=worker_env(web, extra), cwd=log.parent, stdout=out, stderr=subprocess.STDOUT)
    wait_until(lambda: "ready" in log.read_text() or process.poll() is not None, timeout=120, what="worker warm")
    assert process.poll() is None, log.read_text()
    return process


def worker_env(web: WebServer, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a worker node's `tessera` commands get from ``web``'s settings, as its role."""
    s = web.settings
    return {**os.environ, "TESSERA_REDIS_URL": s.redis.url, "TESSERA_REDIS_PASSWORD": s.redis.password,
            "TESSERA_REDIS_PREFIX": s.redis.prefix, "TESSERA_PATHS_ROOT": s.paths.root, "TESSERA_NODE": s.node,
            "TESSERA_WEB_SIGNING_KEY": "unused", "TESSERA_WEB_PUBLIC_URL": s.web.public_url,
            "TESSERA_FETCH_ALLOW_HOSTS": "127.0.0.1", "TESSERA_CONFIG": "", "PYTHONUNBUFFERED": "1",
            **{f"TESSERA_REDIS_{role.upper()}_PASSWORD": getattr(s.redis, f"{role}_password")
               for role in ("web", "worker", "orchestrator", "monitor")},  # as its role, like production
            **(extra or {})}
