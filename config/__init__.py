"""Typed settings for every Tessera process, loaded once from YAML and the environment."""

from config.errors import ConfigError
from config.settings import (
    FetchSettings,
    JobSettings,
    LimitSettings,
    MosaicSettings,
    PathSettings,
    QueueSettings,
    RedisSettings,
    Settings,
    WatchdogSettings,
    WebSettings,
    WorkerSettings,
    load,
    locate,
)

__all__ = [
    "ConfigError",
    "FetchSettings",
    "JobSettings",
    "LimitSettings",
    "MosaicSettings",
    "PathSettings",
    "QueueSettings",
    "RedisSettings",
    "Settings",
    "WebSettings",
    "WatchdogSettings",
    "WorkerSettings",
    "load",
    "locate",
]
