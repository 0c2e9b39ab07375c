"""Every Redis key name and queue constant in one place; the prefix is configurable."""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "workers"
"""Consumer group on the jobs stream that every worker joins."""

HEARTBEAT_TTL = 15
"""Seconds a worker heartbeat key lives without a refresh."""

STATS_MINUTE_TTL = 7200
"""Seconds a per-minute done/failed count is kept (the admin chart shows the last hour)."""

BROWSER_JOBS = 50
"""Most job ids kept per browser for "My mosaics" (older ones drop off the list)."""

IDEMPOTENCY_TTL = 86400
"""Seconds an ``Idempotency-Key`` keeps its first reply (the IETF draft's 24 h): the same key and body within it
get that reply again, and no second job."""

ANY = "*"
"""Pass for a name part to get the glob pattern of a whole key family (``Keys().job(ANY)``), as ACLs need."""


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix, so tests and demos can share a server."""

    prefix: str = "tessera"

    @property
    def jobs(self) -> str:
        """The stream of job packages (XADD by web, XREADGROUP by workers)."""
        return f"{self.prefix}:jobs"

    @property
    def inbox(self) -> str:
        """Ids of jobs waiting to be admitted to the stream, newest first: the web tier and the reconcilers may
        only LPUSH here; the keeper moves them on (workers/protocol/lua/admit.lua)."""
        return f"{self.prefix}:inbox"

    @property
    def admitting(self) -> str:
        """The id the keeper took from the inbox and is admitting (BLMOVE), so a killed keeper loses none."""
        return f"{self.prefix}:inbox:admitting"

    @property
    def backlog(self) -> str:
        """A set of the ids of jobs submitted and maybe not finished: the index the backlog's cost is summed over
        (workers/protocol/backlog.py). Added with the job (stream.py queue_in); final or gone ones are pruned by
        the keeper, and every reader skips them meanwhile."""
        return f"{self.prefix}:backlog"

    @property
    def dead(self) -> str:
        """The dead-letter stream: packages that failed too often, with their last error."""
        return f"{self.prefix}:dead"

    @property
    def recent(self) -> str:
        """A capped list of the ids of recently finished jobs, newest first."""
        return f"{self.prefix}:recent"

    def rate(self, client: str, window: int | str) -> str:
        """Submissions of one client (hashed address) in one rate-limit window."""
        return f"{self.prefix}:rate:{client}:{window}"

    def login_failures(self, window: int) -> str:
        """A hash of failed /admin logins in one rate-limit window: hashed client address -> count."""
        return f"{self.prefix}:rate:admin-login:{window}"

    def client_jobs(self, client: str) -> str:
        """The set of a client's jobs that may still be unfinished."""
        return f"{self.prefix}:client:{client}"

    def browser_jobs(self, browser: str) -> str:
        """A capped list of the job ids one browser (signed cookie id) submitted, newest first ("My mosaics")."""
        return f"{self.prefix}:browser:{browser}"

    def job(self, job_id: str) -> str:
        """The status hash of one job (state, progress, package, result)."""
        return f"{self.prefix}:job:{job_id}"

    @property
    def job_prefix(self) -> str:
        """What every status-hash name starts with; a Lua script appends the job id it reads from the stream."""
        return self.job("")

    def worker(self, node: str, pid: int | str) -> str:
        """A worker's heartbeat hash, expiring after HEARTBEAT_TTL."""
        return f"{self.prefix}:worker:{node}:{pid}"

    @property
    def ready_workers(self) -> str:
        """A sorted set of the workers that take jobs (``<node>:<pid>``), scored by when their heartbeat expires:
        counted with one ZCOUNT for a queued job's eta, where the heartbeats would need a SCAN."""
        return f"{self.prefix}:workers:ready"

    @property
    def stats(self) -> str:
        """Cluster-wide counters: submitted, done, failed, and the build-seconds histogram."""
        return f"{self.prefix}:stats"

    def stats_minute(self, minute: int | str) -> str:
        """Done and failed counts of one minute (epoch seconds // 60), kept STATS_MINUTE_TTL."""
        return f"{self.prefix}:stats:minute:{minute}"

    @property
    def nodes(self) -> str:
        """The set of worker-node names the orchestrator has registered."""
        return f"{self.prefix}:nodes"

    def node(self, name: str) -> str:
        """A worker node's registry hash: state, since, reason, failures (written by the orchestrator)."""
        return f"{self.prefix}:node:{name}"

    @property
    def node_events(self) -> str:
        """A capped list of node state changes, newest first (JSON: at, node, state, reason)."""
        return f"{self.prefix}:nodes:events"

    @property
    def node_timers(self) -> str:
        """The scaling policy's hysteresis timers (JSON), so a restarted orchestrator keeps its cooldowns."""
        return f"{self.prefix}:nodes:timers"

    @property
    def everything(self) -> str:
        """The glob pattern of every key under this prefix."""
        return f"{self.prefix}:{ANY}"

    def login_account_failures(self, window: int) -> str:
        """A hash of failed /admin logins per account in one rate-limit window: hashed user name -> count.

        Under ``rate:`` like the per-client counts, so the web role's ACL grant already covers it."""
        return f"{self.prefix}:rate:admin-account:{window}"

    def idempotency(self, client: str, key_hash: str) -> str:
        """One client's ``Idempotency-Key`` (its SHA-256, so any printable key makes a plain name): the request's
        fingerprint and the first 202, kept IDEMPOTENCY_TTL (workers/protocol/idempotency.py)."""
        return f"{self.prefix}:idem:{client}:{key_hash}"

    @property
    def epoch(self) -> str:
        """When this Redis's data began (Unix seconds, set once by the keeper, never expires). A result older
        than it belongs to data this Redis has lost, so the web's sweep does not take its missing status hash
        for an expired one (web/retention.py)."""
        return f"{self.prefix}:epoch"

    @property
    def webhook_outbox(self) -> str:
        """The webhook outbox: ids of final jobs whose webhook is still to be sent, scored by when the next attempt
        is due (0: at once); the completion note adds them (lua/note.lua), `tessera webhooks` drains it."""
        return f"{self.prefix}:webhooks:outbox"
