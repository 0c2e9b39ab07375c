"""Typed settings for every Tessera process, loaded once from YAML and the environment."""

from config.errors import ConfigError
from config.settings import (
    FetchSettings,
    FriendsSettings,
    JobSettings,
    LimitSettings,
    MosaicSettings,
    PathSettings,
    QueueSettings,
    RedisSettings,
    Settings,
    WatchdogSettings,
    WebhookSettings,
    WebSettings,
    WorkerSettings,
    load,
    locate,
)

__all__ = [
    "ConfigError",
    "FetchSettings",
    "FriendsSettings",
    "JobSettings",
    "LimitSettings",
    "MosaicSettings",
    "PathSettings",
    "QueueSettings",
    "RedisSettings",
    "Settings",
    "WebSettings",
    "WatchdogSettings",
    "WebhookSettings",
    "WorkerSettings",
    "load",
    "locate",
]
