"""A Tessera node under the real supervisord.conf, laid out in a folder of its own.

%(here)s then points at that folder; ports are free ones and settings come from a
local.yaml written from a dict, so each test can tighten timings for its faults.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import redis
import yaml

from tests.helpers.processes import free_port, stop_process, wait_until
from workers.cli import client
from workers.protocol.webhooks import new_secret

ROOT = Path(__file__).resolve().parents[2]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@dataclass
class Node:
    here: Path
    redis_port: int
    web_port: int
    password: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def media(self) -> Path:
        return self.here / "var" / "media"

    def redis(self, role: str = "admin") -> redis.Redis:
        """A client as one of the ACL users (the node's Redis has no default user)."""
        password = self.password if role == "admin" else f"{self.password}-{role}"
        return redis.Redis(port=self.redis_port, username=role, password=password, decode_responses=True,
                           socket_connect_timeout=2, socket_timeout=5)

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ROOT / ".venv/bin/supervisorctl"), "-c", str(self.here / "supervisord.conf"),
                               *args], capture_output=True, text=True, timeout=60)

    def processes(self) -> dict[str, tuple[str, int]]:
        """name → (state, pid) as supervisorctl reports them."""
        table = {}
        for line in self.ctl("status").stdout.splitlines():
            parts = line.split()
            pid = int(parts[3].rstrip(",")) if len(parts) > 3 and parts[2] == "pid" else 0  # 0: no process
            table[parts[0]] = (parts[1], pid)
        return table

    def worker_pids(self) -> dict[str, int]:
        return {name: pid for name, (state, pid) in self.processes().items()
                if name.startswith("worker:") and state == "RUNNING"}

    def start(self, wait_healthy: bool = True) -> None:
        self.process = subprocess.Popen(
            [str(ROOT / ".venv/bin/supervisord"), "-n", "-c", str(self.here / "supervisord.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        if wait_healthy:
            client.wait_healthy(self.base_url, timeout=60)
            wait_until(lambda: len(self.worker_pids()) == 2, timeout=60, what="both workers RUNNING")

    def stop(self) -> None:
        if self.process is None:
            return
        self.ctl("shutdown")
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        stop_process(self.process)
        self.process = None

    def settings(self) -> Any:
        """The node's settings, as its processes load them from config/local.yaml."""
        import config

        return config.load(self.here / "config" / "local.yaml")

    def redis_acl(self) -> list[str]:
        """The ACL lines the embedded Redis would use, for a test's own redis-server."""
        import config
        from workers.service.redis_server import acl_lines

        return acl_lines(config.load(self.here / "config" / "local.yaml").redis)

    def log(self, name: str) -> str:
        path = self.here / "var" / "log" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def lay_out(here: Path, overrides: dict[str, Any] | None = None) -> Node:
    shutil.copy(ROOT / "supervisord.conf", here / "supervisord.conf")
    (here / ".venv").symlink_to(ROOT / ".venv")
    (here / "var" / "log").mkdir(parents=True)
    (here / "config").mkdir()
    numba_cache = ROOT / "var" / "numba-cache"
    numba_cache.mkdir(parents=True, exist_ok=True)
    (here / "var" / "numba-cache").symlink_to(numba_cache)  # warm kernels: restarts stay fast
    node = Node(here=here, redis_port=free_port(), web_port=free_port(), password=secrets.token_urlsafe(16))
    settings = {
        "redis": {"url": f"redis://127.0.0.1:{node.redis_port}/0", "password": node.password,
                  **{f"{role}_password": f"{node.password}-{role}"
                     for role in ("web", "worker", "orchestrator", "monitor", "webhooks")}},
        "web": {"port": node.web_port, "public_url": node.base_url, "signing_key": node.password + "-sign",
                "admin_password": node.password + "-page"},
        "fetch": {"allow_hosts": ["127.0.0.1"]},
        "webhooks": {"secret": new_secret()},
    }
    text = yaml.safe_dump(_merge(settings, overrides or {}))
    (here / "config" / "local.yaml").write_text(text)
    return node


def wait_all_final(node: Node, job_ids: list[str], timeout: float) -> dict[str, dict[str, str]]:
    """Poll Redis until every job is done or failed; their status hashes."""
    r = node.redis()
    deadline = time.monotonic() + timeout
    while True:
        states = {job: cast(dict[str, str], r.hgetall(f"tessera:job:{job}")) for job in job_ids}
        if all(s.get("state") in ("done", "failed") for s in states.values()):
            return states
        if time.monotonic() > deadline:
            counts: dict[str, int] = {}
            for s in states.values():
                counts[s.get("state", "?")] = counts.get(s.get("state", "?"), 0) + 1
            raise TimeoutError(f"jobs not final after {timeout:.0f} s: {counts}")
        time.sleep(0.25)
