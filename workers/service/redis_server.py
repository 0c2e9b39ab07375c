"""Run the embedded redis-server from our settings: password on, loopback, durable queue (``redis.appendfsync``,
``always`` by default: every accepted job is on disk before its 202)."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import redis

from config import RedisSettings
from workers.protocol.connection import SENTINEL_CLIENT, sentinel_login
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
WAIT = "+wait"
"""With Sentinel, the web's submission and the worker's completion note wait for a replica (protocol/replication.py);
WAIT names no key, and only these two roles write what a failover must not lose."""
REPLICA_RULES = "resetchannels resetkeys -@all +psync +replconf +ping"
"""The `replica` user: a replica's link to its primary (AUTH, REPLCONF, PSYNC, PING) and nothing else."""
SENTINEL_RULES = ("resetchannels &__sentinel__:hello resetkeys -@all +multi +exec +slaveof +ping +subscribe +publish "
                  "+info +role +config|rewrite +client|setname +client|kill +script|kill")
"""The `sentinel` user (Redis's "ACL rules for Sentinel"): watch (INFO, ROLE, PING), meet the other Sentinels on
their hello channel, and reconfigure in a failover (MULTI SLAVEOF CONFIG REWRITE CLIENT KILL EXEC); no keys."""
ACL_FILE = "users.acl"
"""With Sentinel: the users live in this file beside redis.conf (the same text on every Redis, since ACLs are not
replicated), so Sentinel's CONFIG REWRITE of redis.conf never touches them."""


def grants(role: str, prefix: str) -> list[Grant]:
    """Each role's commands per key family: allowlists, so anything not named (FLUSHALL, CONFIG, KEYS, DEBUG,
    EVAL, XDEL, XTRIM, XGROUP SETID…) is NOPERM. A function (FCALL) is no way around them: Redis checks every
    command inside it against its caller's grants, which is why the root grant of a role that calls functions
    names every family those functions touch."""
    k, any_ = Keys(prefix), ANY
    if role == "web":  # submits (the job hash and an id on the inbox), reads its jobs, keeps its own limits
        return [Grant(f"{CONNECTION} {WAIT} +unwatch {READS} +smembers +lrange", (k.job(any_), k.rate(any_, any_),
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
                Grant("+sadd", (k.backlog,)),  # each job's id on the backlog index, with the job (stream.py queue_in)
                Grant("+lpush +ltrim +expire", (k.browser_jobs(any_),)),
                Grant("+hincrby", (k.stats,)),
                Grant("+lpush", (k.inbox,)),
                Grant("+exists +xinfo|groups", (k.jobs,), read_only=True),  # /readyz; a queued job's place
                Grant("+zcount", (k.ready_workers,), read_only=True),  # a queued job's eta (queue.waiting)
                Grant("+get", (k.epoch,), read_only=True)]  # the sweep's guard after lost data (web/retention.py)
    if role == "worker":  # takes, claims, acks and finishes jobs (functions), beats, dead-letters, reconciles
        everything = (k.job(any_), k.jobs, k.dead, k.worker(any_, any_), k.recent, k.stats, k.stats_minute(any_),
                      k.inbox, k.admitting, k.webhook_outbox)
        return [Grant(f"{CONNECTION} {WAIT} +fcall {READS} +scan +xpending +xrange +xinfo|groups +lrange",
                      everything),
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
                Grant("+sscan +srem", (k.backlog,)),  # prunes the backlog index of closed jobs (protocol/backlog.py)
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
                Grant(f"+scard +smembers +srandmember {READS}", (k.backlog, k.stats), read_only=True),  # backlog.py
                Grant("+sadd +hset +lpush +ltrim +set", nodes)]
    if role == "monitor":  # /admin and /metrics only read: queue numbers, heartbeats, recent jobs and the stats
        # +info: KEDA's redis-streams lagCount trigger logs in as monitor and reads redis_version from INFO first
        return [Grant(f"{CONNECTION} +xlen +xinfo +xpending +info {READS} +lrange +llen +scan +type",
                      (k.jobs, k.dead, k.worker(any_, any_), k.job(any_), k.recent, k.stats, k.stats_minute(any_),
                       k.inbox, k.admitting), read_only=True),
                Grant("+scard +smembers +srandmember", (k.backlog,), read_only=True)]  # backlog seconds (backlog.py)
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
    return lines + _ha_users(settings)


def _ha_users(settings: RedisSettings) -> list[str]:
    """With Sentinel, the users of replication and of the Sentinels (each when its password is set); without,
    none: an unused user that may copy the whole data set (PSYNC) is one too many."""
    if not settings.ha:
        return []
    users = [("replica", settings.replica_password, REPLICA_RULES),
             ("sentinel", settings.sentinel_password, SENTINEL_RULES)]
    return [f"user {name} on >{password} {rules}" for name, password, rules in users if password]


def acl_file_text(settings: RedisSettings) -> str:
    """The ACL file every Redis of a Sentinel setup reads (``aclfile``): the lines of :func:`acl_lines`."""
    return "\n".join(acl_lines(settings)) + "\n"


def render_conf(settings: RedisSettings, replica_of: tuple[str, int] | None = None) -> str:
    """redis.conf text; passwords live only in this 0600 file (with Sentinel: and the ACL file beside it), never
    on a command line. ``replica_of``: (host, port) of the primary this Redis starts as a replica of."""
    auth = acl_lines(settings) if settings.acl else [f'requirepass "{settings.password}"']
    if settings.ha:
        auth = [f'aclfile "{Path(settings.data_dir) / ACL_FILE}"', *_replication(settings, replica_of)]
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


def _replication(settings: RedisSettings, replica_of: tuple[str, int] | None) -> list[str]:
    """Every Redis of a Sentinel setup may become a replica (Sentinel demotes a primary that comes back): each
    knows how to log into a primary, as the `replica` user."""
    lines = ["masteruser replica", f'masterauth "{settings.replica_password}"',
             # a replica's sync starts at once instead of 5 s later (waiting for more replicas to share it): until
             # it has synced, no submission can be acknowledged (WAIT), e.g. after every failover
             "repl-diskless-sync-delay 0"]
    if replica_of is not None:
        lines.append(f"replicaof {replica_of[0]} {replica_of[1]}")
    return lines


SENTINEL_CLIENT_RULES = ("resetchannels -@all +ping +hello +auth +sentinel|get-master-addr-by-name +sentinel|masters "
                         "+sentinel|master +sentinel|replicas +sentinel|slaves +sentinel|sentinels")
"""What our processes and KEDA may ask a Sentinel (redis-py's discovery: SENTINEL MASTERS, REPLICAS): where the
primary is. Not FAILOVER, SET, REMOVE, MONITOR, CONFIG, RESET, which would let a worker node move the primary."""


def render_sentinel_conf(settings: RedisSettings, port: int, primary_host: str, primary_port: int, quorum: int = 2,
                         down_after_ms: int = 2000, failover_timeout_ms: int = 10000) -> str:
    """sentinel.conf text for one Sentinel on ``port`` (loopback, or ``redis.url``'s host) watching the primary
    at ``primary_host:primary_port``; it logs into every Redis and every other Sentinel as the `sentinel` user,
    and our processes log into it as `client` (``sentinel_client_password``), which may only ask for the primary.
    Sentinel rewrites this file as it learns: keep it in its own folder."""
    name = settings.master_name
    lines = [
        f"port {port}",
        f"bind {settings.host}",
        "protected-mode yes",
        f"dir {settings.data_dir}",
        "user default off",
        # the other Sentinels (votes, hellos) log in as `sentinel`, with the password only Sentinels know
        f"user sentinel on >{settings.sentinel_password} allchannels +@all",
        f"user {SENTINEL_CLIENT} on >{settings.sentinel_client_password} {SENTINEL_CLIENT_RULES}",
        "sentinel sentinel-user sentinel",
        f'sentinel sentinel-pass "{settings.sentinel_password}"',
        "sentinel resolve-hostnames no",  # addresses only: a name that stops resolving must not stall a failover
        f"sentinel monitor {name} {primary_host} {primary_port} {quorum}",
        f"sentinel auth-user {name} sentinel",
        f'sentinel auth-pass {name} "{settings.sentinel_password}"',
        f"sentinel down-after-milliseconds {name} {down_after_ms}",
        f"sentinel failover-timeout {name} {failover_timeout_ms}",
        f"sentinel parallel-syncs {name} 1",
        "daemonize no",
        "loglevel notice",
    ]
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)
    return path


def write_conf(settings: RedisSettings, replica_of: tuple[str, int] | None = None) -> Path:
    """redis.conf in ``data_dir`` (with Sentinel: and the ACL file it names), both 0600."""
    folder = Path(settings.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if settings.ha:
        _write_private(folder / ACL_FILE, acl_file_text(settings))
    return _write_private(folder / "redis.conf", render_conf(settings, replica_of))


def exec_redis(settings: RedisSettings, replica_of: tuple[str, int] | None = None) -> None:
    """Replace this process with redis-server, so supervisord signals reach it directly.

    With Sentinel, the Sentinels decide: a Redis they do not name as the primary starts as a replica of the one
    they do (a restarted old primary must not take writes, nor wait to be demoted). ``replica_of`` is whom to
    follow when no Sentinel answers (the first start of a setup); None = start as the primary."""
    if not settings.embedded:
        print(f"redis.embedded is false: this node uses the Redis at {settings.host}:{settings.port}", flush=True)
        while True:  # stay RUNNING and do nothing; SIGTERM ends it
            signal.pause()
    if not settings.password:
        raise SystemExit("tessera redis: refusing to start Redis without a password (run `tessera init`)")
    if replica_of is not None and not settings.ha:
        raise SystemExit("tessera redis: --replica-of needs redis.sentinels (a replica without failover is not kept)")
    if settings.ha and not settings.replica_password:
        raise SystemExit("tessera redis: redis.sentinels is set but redis.replica_password is not (run `tessera init`)")
    binary = _binary()
    if settings.ha and (primary := current_primary(settings)) is not None:
        replica_of = None if primary == (settings.host, settings.port) else primary
    conf = write_conf(settings, replica_of)
    os.execv(binary, [binary, str(conf)])


def current_primary(settings: RedisSettings, wait: float = 10.0) -> tuple[str, int] | None:
    """The primary most Sentinels name now (GET-MASTER-ADDR-BY-NAME: their view, even while it is down); None
    when none answers within ``wait`` seconds. Under supervisord the Sentinels start just after the Redis, so a
    Redis waits for them rather than guess (a guess after a failover would make two primaries)."""
    deadline = time.monotonic() + wait
    while True:
        answers = Counter(address for address in map(partial(_named_primary, settings), settings.sentinel_addresses)
                          if address is not None)
        if answers:
            return answers.most_common(1)[0][0]
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)


def _named_primary(settings: RedisSettings, sentinel: tuple[str, int]) -> tuple[str, int] | None:
    host, port = sentinel
    username, password = sentinel_login(settings)
    with redis.Redis(host=host, port=port, username=username, password=password, decode_responses=True,
                     socket_connect_timeout=1.0, socket_timeout=1.0) as client:
        try:
            answer = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", settings.master_name)
        except redis.RedisError:
            return None
    return (str(answer[0]), int(answer[1])) if answer else None


def exec_sentinel(settings: RedisSettings, port: int, primary: tuple[str, int] | None = None, quorum: int = 2) -> None:
    """Replace this process with a Sentinel on ``port`` keeping its files in ``data_dir``. Its conf is written
    only when absent: Sentinel records there what it learned (the current primary after a failover, the other
    Sentinels, its epoch), which a restart must not forget; delete the file to start over."""
    if not settings.ha or not settings.sentinel_password:
        raise SystemExit("tessera sentinel: set redis.sentinels and redis.sentinel_password (run `tessera init`)")
    binary = _binary()
    folder = Path(settings.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "sentinel.conf"
    if not conf.exists():
        host, primary_port = primary or (settings.host, settings.port)
        _write_private(conf, render_sentinel_conf(settings, port, host, primary_port, quorum))
    os.execv(binary, [binary, str(conf), "--sentinel"])


def _binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("tessera redis: redis-server not found (apt-get install redis-server)")
    return binary
