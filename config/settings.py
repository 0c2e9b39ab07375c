"""One loader: YAML defaults, then a local file, then env vars, into frozen dataclasses.

Errors name where the bad value came from: ``file: key.path: message``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from config.build import build
from config.errors import ConfigError
from config.secret_files import env_value
from config.yamlfile import read_mapping

DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")
ENV_PREFIX = "TESSERA_"


def _secret_repr(value: str) -> str:
    return "'***'" if value else "''"


APPENDFSYNC = ("always", "everysec", "no")
"""The fsync policies redis.conf accepts for ``appendfsync``."""


def sentinel_address(entry: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as a pair; ValueError quoting the entry if it is not one."""
    host, sep, port = entry.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not host:port with a port 1-65535: {entry!r}")
    return host, int(port)


@dataclass(frozen=True)
class RedisSettings:
    url: str
    password: str = field(repr=False)
    web_password: str = field(repr=False)
    worker_password: str = field(repr=False)
    orchestrator_password: str = field(repr=False)
    prefix: str
    data_dir: str
    embedded: bool
    monitor_password: str = field(default="", repr=False)
    """The read-only `monitor` user of /admin and /metrics; "" = no such user (those pages answer 503)."""
    keeper_password: str = field(default="", repr=False)
    """The `keeper` user, the only one that may add to the jobs stream; "" = the keeper logs in as admin."""
    webhooks_password: str = field(default="", repr=False)
    """The `webhooks` user of `tessera webhooks` (the outbox and the jobs' delivery records); "" = admin."""
    appendfsync: str = "always"
    """The embedded Redis's AOF fsync policy: ``always`` (a 202 means the job is on disk), ``everysec`` (up to a
    second of accepted jobs lost on a power cut; faster) or ``no``."""
    sentinels: list[str] = field(default_factory=list)
    """Redis Sentinels as ``host:port``; [] = one Redis at ``url`` (no failover). Set: every client asks them for
    the primary of ``master_name`` and follows a failover (workers/protocol/connection.py)."""
    master_name: str = "tessera"
    """The name the Sentinels monitor the primary under."""
    sentinel_password: str = field(default="", repr=False)
    """The `sentinel` ACL user's, that each Sentinel logs into every Redis with; only the Sentinels know it."""
    sentinel_client_password: str = field(default="", repr=False)
    """The password of the Sentinels' `client` user: our processes ask a Sentinel where the primary is, and may do
    nothing else there (no FAILOVER, SET, REMOVE)."""
    replica_password: str = field(default="", repr=False)
    """The `replica` ACL user's, that a replica logs into its primary with (masteruser/masterauth)."""
    min_replicas_acked: int = 1
    """With sentinels: replicas that must hold a submission or a completion note (WAIT) before it counts."""
    wait_timeout_ms: int = 1000
    """With sentinels: how long that WAIT may take, in milliseconds; fewer acks by then = 503 not_replicated."""

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        netloc = f"{parts.hostname}:{parts.port}" if parts.port else (parts.hostname or "")
        safe = parts._replace(netloc=netloc).geturl()
        return f"RedisSettings(url={safe!r}, password={_secret_repr(self.password)}, prefix={self.prefix!r})"

    @property
    def acl(self) -> bool:
        """True when every role has its own user (else: one password, the default user)."""
        return bool(self.web_password and self.worker_password and self.orchestrator_password)

    def credentials(self, role: str) -> tuple[str | None, str | None]:
        """(username, password) for a role: web, worker, keeper, orchestrator, monitor or admin."""
        if not self.acl:
            return None, self.password or None
        passwords = {"web": self.web_password, "worker": self.worker_password,
                     "orchestrator": self.orchestrator_password, "monitor": self.monitor_password,
                     "keeper": self.keeper_password, "webhooks": self.webhooks_password, "admin": self.password}
        return role, passwords[role]

    def own_or_admin(self, role: str) -> str:
        """``role`` when it has a password of its own (or ACLs are off), else admin: the services on the Redis
        host (keeper, webhooks) keep running on a config from before their role existed."""
        return role if self.credentials(role)[1] or not self.acl else "admin"

    @property
    def ha(self) -> bool:
        """True when Sentinels are configured: a primary that may move, replicated writes (WAIT)."""
        return bool(self.sentinels)

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """``sentinels`` as (host, port) pairs (checked at load: config/settings.py ``_check_ha``)."""
        return [sentinel_address(entry) for entry in self.sentinels]

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 6379


@dataclass(frozen=True)
class WebSettings:
    host: str
    port: int
    public_url: str
    threads: int
    signing_key: str = field(repr=False)
    input_url_ttl: int
    rate_limit_per_minute: int
    max_active_jobs: int
    admin_password: str = field(default="", repr=False)
    """HTTP Basic password of user `admin` on /admin; "" = /admin answers 404."""
    trusted_proxies: list[str] = field(default_factory=list)
    """Addresses or CIDRs of reverse proxies whose ``X-Forwarded-For`` names the client; [] = trust none."""


@dataclass(frozen=True)
class LimitSettings:
    max_upload_bytes: int
    max_request_bytes: int
    max_image_pixels: int
    max_tiles: int
    min_tiles: int
    max_cells_per_side: int
    max_cells: int
    tile_px_min: int
    tile_px_max: int
    max_output_pixels: int
    max_job_tile_bytes: int = 1 << 30
    """Tile bytes one job may fetch in all (workers/pipeline/budget.py says what counts)."""
    max_job_tile_pixels: int = 4_000_000_000
    """Declared pixels of the tiles one job may decode in all."""
    max_job_held_bytes: int = 128 << 20
    """Tile bytes one job may hold at once: fetches under way (each at fetch.max_bytes) and bodies not yet decoded."""


@dataclass(frozen=True)
class JobSettings:
    result_ttl: int
    default_grid: str
    default_tile_px: int


@dataclass(frozen=True)
class WorkerSettings:
    block_ms: int
    progress_interval: float
    heartbeat_interval: float


@dataclass(frozen=True)
class QueueSettings:
    claim_idle: float
    claim_stall: float
    max_deliveries: int
    transient_tries: int
    recent_jobs: int
    allow_noop: bool


@dataclass(frozen=True)
class WatchdogSettings:
    heartbeat_stale: float
    hang_timeout: float
    max_rss_mb: int
    probe_cap: float
    reconcile_every: float = 30.0
    """Seconds between reconciler passes (workers/service/reconcile.py) on each node; 0 = off."""
    reconcile_grace: float = 300.0
    """Seconds a queued or running job must have been left alone before the reconciler may act on it."""
    reconcile_batch: int = 500
    """Keys one reconciler pass looks at (SCAN COUNT): bounded work per pass."""


@dataclass(frozen=True)
class MosaicSettings:
    features_k: int
    sample_px: int
    lightness_weight: float
    candidates: int
    blend: float
    blend_grid: int
    min_distance: int
    max_share: float
    reuse_penalty: float
    jpeg_quality: int
    png_compress_level: int
    decode_processes: int
    tile_cache: str
    tile_cache_max_mb: int
    tile_memo_mb: int
    keep_avatars: bool = False
    """Match on default avatars too (workers/pipeline/identity.py); else they are left out of every build."""
    refine: bool = True
    """Improve the greedy tile assignment on the candidate graph (kernels.refine_assignment); off: greedy only."""
    use_all: bool = False
    """Use every picture (identity group) at least once where the grid has room (kernels.cover_groups)."""
    count_by_file: bool = False
    """The cap and the distance rule count files, as metapixel does, not pictures (near-duplicates one group:
    workers/pipeline/identity.py): for comparing on equal terms."""
    space_flat: bool = False
    """The distance rule spaces out flat pictures too (workers/pipeline/identity.py FLAT_L); off: two flat
    tiles side by side read as one flat area of the photo, so they may touch. On: metapixel's rule, every tile."""


@dataclass(frozen=True)
class FetchSettings:
    allow_hosts: list[str]
    timeout: float
    total_timeout: float
    max_bytes: int
    max_redirects: int
    cache_max_age: float
    tries: int = 3
    """Tries of one tile URL inside one build for a transient failure (timeout, connection, 5xx, 429)."""
    retry_within: float = 20.0
    """Seconds, from the end of a tile's first fetch, in which it is tried again."""


@dataclass(frozen=True)
class FriendNetworkSettings:
    """One social network's API, for friend lists (workers/inputs/friends)."""

    api: str = ""
    """The API base URL (an own AppView, GitHub Enterprise, a mirror). Mastodon: "" = https://<the handle's
    instance>, and a ``{instance}`` in the value is replaced by it."""
    token: str = field(default="", repr=False)
    """Sent as ``Authorization: Bearer``; "" = none. GitHub answers 60 requests an hour without one."""


@dataclass(frozen=True)
class FriendsSettings:
    bluesky: FriendNetworkSettings
    mastodon: FriendNetworkSettings
    github: FriendNetworkSettings
    max_pages: int = 100
    """Pages read from one list (follows or followers) at most."""
    page_bytes: int = 4 << 20
    """Bytes of one API answer at most."""
    timeout: float = 10.0
    """Seconds for the connection and each read of one API request."""
    list_ttl: float = 3600.0
    """Seconds a gathered friend list is reused on this node, then deleted; 0 = not kept."""
    max_wait: float = 60.0
    """Longest rate-limit wait (429 Retry-After, a reset time); a longer one fails the try (retried later)."""
    avatar_px: int = 128
    """Size asked of networks that resize avatars on request (GitHub ``s=``, Bluesky's thumbnail preset)."""


@dataclass(frozen=True)
class WebhookSettings:
    """`tessera webhooks`: how a job's webhook is sent (workers/service/webhooks.py)."""

    secret: str = field(default="", repr=False)
    """``whsec_`` + base64: the key every message is signed with; "" = webhooks are off (the option refused)."""
    timeout: float = 10.0
    """Seconds for the connection, and again for the answer's status line and headers, of one attempt."""
    max_attempts: int = 10
    retry_base: float = 5.0
    """Seconds before the second attempt; each later wait doubles (with jitter), up to ``retry_cap``."""
    retry_cap: float = 900.0
    give_up_after: float = 3600.0
    """Seconds from the first attempt after which no other is made."""
    concurrency: int = 8
    """Attempts under way at once: receivers that hang hold up only these."""
    poll: float = 0.5
    """Seconds between looks at the outbox."""
    ca_file: str = ""
    """Extra certificate authorities (a PEM file) trusted for receivers, e.g. a private CA; "" = the system's."""


@dataclass(frozen=True)
class PathSettings:
    root: str
    media: str
    uploads: str
    fetch_cache: str


@dataclass(frozen=True)
class ResultSettings:
    """Where a worker puts finished mosaics: the local media folder, or the web host's over SFTP.

    Also what config/scaling.yaml's ``remote.results`` says about the nodes it starts (config/scaling.py)."""

    store: str = "local"
    """local: paths.media on this machine; sftp: the web host's media folder over SFTP."""
    host: str = ""
    port: int = 22
    user: str = "tessera-results"
    """The web host's SFTP-only account (never root: a node's key must not open a shell there)."""
    key_file: str = ""
    known_hosts: str = ""
    path: str = ""
    """The media folder as the account sees it, inside its chroot (the orchestrator fills it in for its nodes)."""
    timeout: float = 10.0
    """Seconds for the SFTP connect, banner and auth."""
    deepzoom: bool = True
    """Also store a Deep Zoom pyramid, thumbnail and tile map (`<id>.dz/`) for jobs the worker daemon builds."""
    chroot: str = ""
    """Web host: the account's SFTP root (root-owned, holding only the way to paths.media); "" = paths.media's
    parent. `tessera results-account` sets it up (orchestrator/account.py)."""
    authorized_keys: str = "/etc/ssh/tessera-results.keys"
    """Web host: the account's keys, one per node (the orchestrator writes them); root's, outside the chroot."""
    sshd_dropin: str = "/etc/ssh/sshd_config.d/tessera-results.conf"
    """Web host: where `tessera results-account` writes the account's sshd rules."""


@dataclass(frozen=True)
class Settings:
    node: str
    redis: RedisSettings
    web: WebSettings
    limits: LimitSettings
    jobs: JobSettings
    worker: WorkerSettings
    queue: QueueSettings
    watchdog: WatchdogSettings
    mosaic: MosaicSettings
    fetch: FetchSettings
    paths: PathSettings
    results: ResultSettings
    friends: FriendsSettings
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)

    def require_secrets(self, signing: bool = True) -> None:
        """Refuse to run a service without the secrets it needs (``signing``: it signs input URLs, as web does)."""
        if not self.redis.password:
            raise ConfigError("redis.password: not set (run `tessera init`, or set TESSERA_REDIS_URL with a password)")
        if signing and not self.web.signing_key:
            raise ConfigError("web.signing_key: not set (run `tessera init`)")


def load(path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load defaults, then ``path`` (if given), then ``TESSERA_*`` env vars."""
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    _merge(merged, sources, read_mapping(DEFAULTS_FILE), str(DEFAULTS_FILE))
    if path is not None:
        _merge(merged, sources, read_mapping(path), str(path))
    _merge(merged, sources, _env_layer(merged, env), "environment")
    settings = build(Settings, merged, lambda path: sources.get(path, "config"))
    return _finish(settings)


def _merge(into: dict[str, Any], sources: dict[str, str], layer: dict[str, Any], source: str, prefix: str = "") -> None:
    for key, value in layer.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], sources, value, source, path + ".")
        else:
            into[key] = value
            sources[path] = source


def _env_layer(merged: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Map TESSERA_SECTION_KEY (or TESSERA_KEY for top-level keys) onto the known keys; each may instead come
    from the file that TESSERA_..._FILE names (a mounted secret: config/secret_files.py)."""
    layer: dict[str, Any] = {}
    for key, value in merged.items():
        if isinstance(value, dict):
            for sub in value:
                found = env_value(env, f"{ENV_PREFIX}{key}_{sub}".upper())
                if found is not None:
                    layer.setdefault(key, {})[sub] = found
        elif (found := env_value(env, f"{ENV_PREFIX}{key}".upper())) is not None:
            layer[key] = found
    return layer


def _finish(settings: Settings) -> Settings:
    """Fill derived values: node name, absolute paths, a password carried in the Redis URL."""
    root = Path(settings.paths.root or os.getcwd()).resolve()
    fetch_cache = str(root / settings.paths.fetch_cache) if settings.paths.fetch_cache else ""
    paths = PathSettings(root=str(root), media=str(root / settings.paths.media),
                         uploads=str(root / settings.paths.uploads), fetch_cache=fetch_cache)
    redis = settings.redis
    url_password = urlsplit(redis.url).password
    if url_password:  # a URL that carries a password (e.g. TESSERA_REDIS_URL) wins
        redis = dataclasses.replace(redis, password=url_password)
    redis = dataclasses.replace(redis, data_dir=str(root / redis.data_dir))
    if redis.appendfsync not in APPENDFSYNC:
        raise ConfigError(f"config: redis.appendfsync: not one of {', '.join(APPENDFSYNC)}: {redis.appendfsync!r}")
    if urlsplit(redis.url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"config: redis.url: not a redis:// URL: {redis.url!r}")
    _check_ha(redis)
    for entry in settings.web.trusted_proxies:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigError(f"config: web.trusted_proxies: not an address or CIDR: {entry!r}") from None
    if settings.results.store not in ("local", "sftp"):
        raise ConfigError(f"config: results.store: must be local or sftp, not {settings.results.store!r}")
    for network in ("bluesky", "mastodon", "github"):
        api = getattr(settings.friends, network).api
        if api and urlsplit(api.replace("{instance}", "x")).scheme not in ("http", "https"):
            raise ConfigError(f"config: friends.{network}.api: not an http(s) URL: {api!r}")
    node = settings.node or socket.gethostname()
    return dataclasses.replace(settings, node=node, paths=paths, redis=redis)


def _check_ha(redis: RedisSettings) -> None:
    """The Sentinel keys: each sentinel host:port, a master name, a WAIT that can be met in finite time."""
    for entry in redis.sentinels:
        try:
            sentinel_address(entry)
        except ValueError as exc:
            raise ConfigError(f"config: redis.sentinels: {exc}") from None
    if not redis.master_name.strip():
        raise ConfigError("config: redis.master_name: must not be empty")
    if redis.min_replicas_acked < 0:
        raise ConfigError(f"config: redis.min_replicas_acked: must be 0 or more, not {redis.min_replicas_acked}")
    if redis.wait_timeout_ms <= 0:
        raise ConfigError(f"config: redis.wait_timeout_ms: must be more than 0, not {redis.wait_timeout_ms}")


LOCAL_FILE = Path("config") / "local.yaml"


def locate(path: str | None, env: Mapping[str, str] | None = None) -> Path | None:
    """The local config file: ``--config``, else $TESSERA_CONFIG, else ./config/local.yaml if present."""
    env = os.environ if env is None else env
    if path:
        return Path(path)
    if env.get("TESSERA_CONFIG"):
        return Path(env["TESSERA_CONFIG"])
    return LOCAL_FILE if LOCAL_FILE.is_file() else None
