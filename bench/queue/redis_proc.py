"""The bench's own redis-server: password on, loopback only, a free port, stopped by its PID.

It is configured like the embedded Redis of a node (workers/service/redis_server.py: appendonly,
noeviction), except that AOF rewrites are off so that no fork lands in the middle of a measurement,
and that it fsyncs every second: a node's default, ``appendfsync always``, is measured in its own
rows (:meth:`RedisProcess.set_appendfsync`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis

DATABASES = {"tessera": 0, "rq": 1, "celery": 2, "bare": 3, "http": 4}
"""One database number per system, so no two share a key."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RedisProcess:
    port: int
    password: str
    process: subprocess.Popen[bytes]

    def url(self, system: str, with_password: bool = False) -> str:
        auth = f":{self.password}@" if with_password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{DATABASES[system]}"

    def client(self, system: str) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password, db=DATABASES[system], decode_responses=True)

    def set_appendfsync(self, policy: str) -> None:
        """Switch the AOF fsync policy (``always``, ``everysec``) between runs: redis.appendfsync on a node."""
        self.client("tessera").config_set("appendfsync", policy)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(folder: Path, replica_of: RedisProcess | None = None) -> RedisProcess:
    """A bench Redis; with ``replica_of``, a replica of that one (same password), synced before it returns."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("bench: redis-server not found (apt-get install redis-server)")
    port = free_port()
    password = replica_of.password if replica_of else secrets.token_urlsafe(18)
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "redis.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(f"port {port}\nbind 127.0.0.1\nprotected-mode yes\ndir {folder}\nrequirepass \"{password}\"\n"
                  "appendonly yes\nappendfsync everysec\nauto-aof-rewrite-percentage 0\n"
                  "maxmemory-policy noeviction\nsave \"\"\ndaemonize no\nloglevel warning\n")
        if replica_of:
            out.write(f"replicaof 127.0.0.1 {replica_of.port}\nmasterauth \"{password}\"\n")
    process = subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    server = RedisProcess(port=port, password=password, process=process)
    client = server.client("tessera")
    deadline = time.monotonic() + 10
    while True:
        try:
            if client.ping() and (replica_of is None or client.info("replication").get("master_link_status") == "up"):
                return server
        except redis.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise SystemExit(f"bench: redis-server on port {port} did not start") from None
        time.sleep(0.05)
