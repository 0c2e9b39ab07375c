"""Run the embedded redis-server from our settings: password on, loopback, durable queue (``redis.appendfsync``,
``always`` by default: every accepted job is on disk before its 202)."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from config import RedisSettings
from workers.protocol.keys import Keys

# What each role may run (allowlists; anything else, FLUSHALL, CONFIG, KEYS, DEBUG… included, is denied).
ROLE_COMMANDS = {
    "web": "+ping +hello +auth +multi +exec +discard +hset +hget +hgetall +hmget +expire +xadd +incr +incrby "
           "+sadd +srem +smembers +lpush +ltrim +lrange +hincrby",
    "worker": "+ping +hello +auth +multi +exec +discard +xreadgroup +xack +xdel +xautoclaim +xclaim +xpending "
              "+xgroup|create +xadd +hset +hget +hgetall +hincrby +hincrbyfloat +expire +del +eval +lpush +ltrim "
              # the reconciler in each node's watchdog (workers/service/reconcile.py): a SCAN of job hashes, the
              # pending entries and the group's last delivered id, and the recent list (LRANGE; LREM of a vanished id)
              "+scan +hmget +xrange +xinfo|groups +lrange +lrem",
    "orchestrator": "+@read +@write +@connection +multi +exec +discard -@dangerous",
    # /admin and /metrics only read: queue numbers, heartbeats, recent jobs and the stats.
    "monitor": "+ping +hello +auth +xlen +xinfo +xpending +exists +hget +hgetall +hmget +lrange +scan +type",
    "admin": "+@all -@dangerous",
}


def role_keys(role: str, prefix: str) -> str:
    """The ACL key selectors of a role, from the patterns workers/protocol/keys.py gives it."""
    selector = "%R~" if role == "monitor" else "~"  # %R~: read access only, whatever the command
    return " ".join(selector + pattern for pattern in Keys(prefix).role_patterns(role))


def acl_lines(settings: RedisSettings) -> list[str]:
    # `default` is off (no one can log in as it), yet keeps its permissions: Redis 7.0 replays
    # MULTI/EXEC from the append-only file as the default user, and would drop every
    # transaction (the whole queue) at restart if that user had none.
    lines = ["user default off resetpass ~* &* +@all"]
    for role in ROLE_COMMANDS:
        password = settings.credentials(role)[1]
        if not password:  # only monitor may be unset (configs from before it existed): no such user then
            continue
        lines.append(f"user {role} on >{password} resetchannels {role_keys(role, settings.prefix)} "
                     f"-@all {ROLE_COMMANDS[role]}")
    return lines


def render_conf(settings: RedisSettings) -> str:
    """redis.conf text; passwords live only in this 0600 file, never on a command line."""
    auth = acl_lines(settings) if settings.acl else [f'requirepass "{settings.password}"']
    lines = [
        f"port {settings.port}",
        f"bind {settings.host}",
        "protected-mode yes",
        f"dir {settings.data_dir}",
        *auth,
        "appendonly yes",
        f"appendfsync {settings.appendfsync}",  # always (the default): a 202 means the job is on disk
        "maxmemory-policy noeviction",
        'save ""',
        "daemonize no",
        "loglevel notice",
    ]
    return "\n".join(lines) + "\n"


def write_conf(settings: RedisSettings) -> Path:
    folder = Path(settings.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "redis.conf"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(render_conf(settings))
    os.chmod(path, 0o600)
    return path


def exec_redis(settings: RedisSettings) -> None:
    """Replace this process with redis-server, so supervisord signals reach it directly."""
    if not settings.embedded:
        print(f"redis.embedded is false: this node uses the Redis at {settings.host}:{settings.port}", flush=True)
        while True:  # stay RUNNING and do nothing; SIGTERM ends it
            signal.pause()
    if not settings.password:
        raise SystemExit("tessera redis: refusing to start Redis without a password (run `tessera init`)")
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("tessera redis: redis-server not found (apt-get install redis-server)")
    conf = write_conf(settings)
    os.execv(binary, [binary, str(conf)])
