"""Settings for one test: files under its tmp_path, a fresh key prefix, and a Redis only where one is used."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import config
from config import Settings

SettingsFactory = Callable[..., Settings]
"""``create(**env)``: settings from the test's base environment plus ``TESSERA_*`` overrides."""

NO_REDIS_URL = "redis://127.0.0.1:1/0"
"""Where a Redis-free test's settings point: nothing listens on port 1, so a stray use fails at once."""


def base_env(root: Path, redis_url: str = NO_REDIS_URL, password: str = "no-redis-here") -> dict[str, str]:
    """The environment every test's settings start from: loose web limits, short blocking reads."""
    return {
        "TESSERA_REDIS_URL": redis_url,
        "TESSERA_REDIS_PASSWORD": password,
        "TESSERA_REDIS_PREFIX": "t" + secrets.token_hex(4),
        "TESSERA_PATHS_ROOT": str(root),
        "TESSERA_WEB_SIGNING_KEY": "test-signing-key",
        "TESSERA_FETCH_ALLOW_HOSTS": "127.0.0.1",
        "TESSERA_NODE": "testnode",
        "TESSERA_WORKER_BLOCK_MS": "200",
        "TESSERA_WEB_RATE_LIMIT_PER_MINUTE": "100000",
        "TESSERA_WEB_MAX_ACTIVE_JOBS": "100000",
    }


def settings_factory(root: Path, redis_url: str = NO_REDIS_URL, password: str = "no-redis-here") -> SettingsFactory:
    """A factory whose settings share one prefix and root; without ``redis_url`` they name no real server."""
    base = base_env(root, redis_url, password)

    def create(**env: str) -> Settings:
        return config.load(env={**base, **env})

    return create
