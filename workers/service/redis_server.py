"""Run the embedded redis-server from our settings: password on, loopback, durable queue (``redis.appendfsync``,
``always`` by default: every accepted job is on disk before its 202)."""

from __future__ import annotations

import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from config import RedisSettings
from workers.protocol.keys import ANY, Keys

CONNECTION = "+ping +hello +auth +multi +exec +discard +time"
"""What every role may run: commands without keys (a transaction's MULTI/EXEC, the handshake, the clock a
completion note's expires_at is read from: lua/note.lua)."""


@dataclass(frozen=True)
class Grant:
    """Commands a role may run on some key families (glob patterns). The first grant of a role is its root
    permission; every later one is a Redis 7 selector, so a write allowed on one family is not allowed on all."""

    commands: str
    patterns: tuple[str, ...]
    read_only: bool = False

    def rule(self) -> str:
        keys = " ".join(("%R~" if self.read_only else "~") + pattern for pattern in self.patterns)
        return f"{keys} {self.commands}"


READS = "+hget +hgetall +hmget +exists"


def grants(role: str, prefix: str) -> list[Grant]:
    """Each role's commands per key family: allowlists, so anything not named (FLUSHALL, CONFIG, KEYS, DEBUG,
    EVAL, XDEL, XTRIM, XGROUP SETID…) is NOPERM. A function (FCALL) is no way around them: Redis checks every
    command inside it against its caller's grants, which is why the root grant of a role that calls functions
    names every family those functions touch."""
    k, any_ = Keys(prefix), ANY
    if role == "web":  # submits (the job hash and an id on the inbox), reads its jobs, keeps its own limits
        return [Grant(f"{CONNECTION} +unwatch {READS} +smembers +lrange", (k.job(any_), k.rate(any_, any_),
                      k.client_jobs(any_), k.browser_jobs(any_), k.stats, k.inbox, k.webhook_outbox)),
                Grant("+hset", (k.job(any_),)),
                # cancel (lua/cancel.lua: a queued job's note, its TTL, list and counts) and delete (web/lifecycle.py);
                # FCALL in a selector of its own, so naming the recent list and minute stats lets the web read neither
                Grant("+fcall", (k.job(any_), k.recent, k.stats, k.stats_minute(any_), k.webhook_outbox)),
                Grant("+expire +del", (k.job(any_),)),
                Grant("+lpush +ltrim +lrem", (k.recent,)),
                Grant("+hincrby +expire", (k.stats_minute(any_),)),
                Grant("+lrem", (k.browser_jobs(any_),)),
                Grant("+zadd", (k.webhook_outbox,)),  # a job canceled while queued has a webhook too (lua/note.lua)
                Grant("+watch +get +set", (k.idempotency(any_, any_),)),  # Idempotency-Key, with the job (stream.py)
                Grant("+incr +incrby +hincrby +expire", (k.rate(any_, any_),)),
                Grant("+sadd +srem +expire", (k.client_jobs(any_),)),
                Grant("+lpush +ltrim +expire", (k.browser_jobs(any_),)),
                Grant("+hincrby", (k.stats,)),
                Grant("+lpush", (k.inbox,)),
                Grant("+exists +xinfo|groups", (k.jobs,), read_only=True),  # /readyz; a queued job's place
                Grant("+zcount", (k.ready_workers,), read_only=True),  # a queued job's eta (queue.waiting)
                Grant("+get", (k.epoch,), read_only=True)]  # the sweep's guard after lost data (web/retention.py)
    if role == "worker":  # takes, claims, acks and finishes jobs (functions), beats, dead-letters, reconciles
        everything = (k.job(any_), k.jobs, k.dead, k.worker(any_, any_), k.recent, k.stats, k.stats_minute(any_),
                      k.inbox, k.admitting, k.webhook_outbox)
        return [Grant(f"{CONNECTION} +fcall {READS} +scan +xpending +xrange +xinfo|groups +lrange", everything),
                Grant("+zadd", (k.webhook_outbox,)),  # a final job with a webhook, with its note (lua/note.lua)
                Grant("+hset +hincrby +expire", (k.job(any_),)),
                Grant("+xreadgroup +xack +xclaim +xautoclaim +xgroup|create", (k.jobs,)),
                Grant("+xadd", (k.dead,)),
                Grant("+hset +expire +del", (k.worker(any_, any_),)),
                Grant("+lpush +ltrim +lrem", (k.recent,)),
                Grant("+hincrby +hincrbyfloat +hset", (k.stats,)),  # HSET: the recent build time (lua/note.lua)
                Grant("+hincrby +expire", (k.stats_minute(any_),)),
                Grant("+zadd +zrem +zremrangebyscore", (k.ready_workers,)),  # service/heartbeat.py
                Grant("+lpush", (k.inbox,))]
    if role == "keeper":  # admits the inbox to the stream and trims acknowledged entries (functions)
        return [Grant(f"{CONNECTION} +fcall +function|list +exists", (k.inbox, k.admitting, k.jobs)),
                Grant("+blmove +lrange +rpop", (k.inbox, k.admitting)),
                Grant("+del", (k.admitting,)),
                Grant("+set", (k.epoch,)),  # SET NX once: when this Redis's data began (web/retention.py)
                Grant("+xadd +xtrim +xinfo|groups +xpending +xgroup|create", (k.jobs,)),
                Grant("+hmget", (k.job(any_),), read_only=True),
                Grant("+hset", (k.job(any_),))]  # an admitted job's seq, its place in the queue (lua/admit.lua)
    if role == "webhooks":  # sends final jobs' webhooks (`tessera webhooks`: lua/webhook_take.lua, webhook_note.lua)
        return [Grant(f"{CONNECTION} +fcall {READS}", (k.webhook_outbox, k.job(any_))),
                Grant("+zrangebyscore +zadd +zrem", (k.webhook_outbox,)),
                Grant("+hset", (k.job(any_),))]
    if role == "orchestrator":  # keeps the node registry; reads the queue and the heartbeats it scales by
        nodes = (k.nodes, k.node(any_), k.node_events, k.node_timers)
        return [Grant(f"{CONNECTION} {READS} +smembers +get +lrange +xlen +xinfo|groups +xpending +scan +llen",
                      (k.jobs, k.dead, k.worker(any_, any_), k.job(any_), k.inbox, k.admitting, *nodes)),
                Grant("+sadd +hset +lpush +ltrim +set", nodes)]
    if role == "monitor":  # /admin and /metrics only read: queue numbers, heartbeats, recent jobs and the stats
        return [Grant(f"{CONNECTION} +xlen +xinfo +xpending {READS} +lrange +llen +scan +type",
                      (k.jobs, k.dead, k.worker(any_, any_), k.job(any_), k.recent, k.stats, k.stats_minute(any_),
                       k.inbox, k.admitting), read_only=True)]
    return [Grant("+@all -@dangerous", (k.everything,))]  # admin


ROLES = ("web", "worker", "keeper", "orchestrator", "monitor", "webhooks", "admin")


def role_patterns(role: str, prefix: str) -> set[str]:
    """Every key family a role reaches, by any of its grants."""
    return {pattern for grant in grants(role, prefix) for pattern in grant.patterns}


def role_rules(role: str, prefix: str) -> str:
    """The ACL rules of a role: its root grant, then each further grant as a selector in parentheses."""
    root, *selectors = grants(role, prefix)
    return " ".join([root.rule(), *(f"({grant.rule()})" for grant in selectors)])


def acl_lines(settings: RedisSettings) -> list[str]:
    # `default` is off (no one can log in as it), yet keeps its permissions: Redis 7.0 replays
    # MULTI/EXEC from the append-only file as the default user, and would drop every
    # transaction (the whole queue) at restart if that user had none.
    lines = ["user default off resetpass ~* &* +@all"]
    for role in ROLES:
        password = settings.credentials(role)[1]
        if not password:  # monitor, keeper and webhooks may be unset (configs from before they existed): no such user
            continue
        lines.append(f"user {role} on >{password} resetchannels resetkeys -@all {role_rules(role, settings.prefix)}")
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
