"""The one way tests start a redis-server: their own, password- or ACL-protected, on a free loopback port."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.helpers.processes import free_port, wait_until


@dataclass(frozen=True)
class RedisServer:
    port: int
    password: str
    process: subprocess.Popen[bytes]
    superuser: str | None = None
    """With ``acl``: the user ``password`` logs in as, when it is not ``admin`` (a fixture's own, to set roles)."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def start_redis(folder: Path, port: int | None = None, password: str | None = None,
                appendonly: bool = False, acl: list[str] | None = None, bind: str = "127.0.0.1",
                superuser: str | None = None) -> RedisServer:
    """A redis-server of the test's own; with ``acl`` lines instead of requirepass (``password`` is admin's, or
    ``superuser``'s when given: a user of ``acl`` that is not a role, for a fixture that sets the roles up).

    ``bind``: the addresses it listens on (e.g. also a test network's host address), 127.0.0.1 among them."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (make test installs it)"
    port = port or free_port()
    password = password or secrets.token_urlsafe(16)
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "redis.conf"
    auth = "\n".join(acl) if acl else f'requirepass "{password}"'
    conf.write_text(f'port {port}\nbind {bind}\n{auth}\ndir {folder}\nsave ""\n'
                    f"appendonly {'yes' if appendonly else 'no'}\nmaxmemory-policy noeviction\n")
    process = subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port, username=(superuser or "admin") if acl else None, password=password)
    wait_until(lambda: _pings(client), timeout=10, what=f"redis-server on port {port}")
    client.close()
    return RedisServer(port=port, password=password, process=process, superuser=superuser)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
