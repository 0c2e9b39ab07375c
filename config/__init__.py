"""Typed settings for every Tessera process, loaded once from YAML and the environment."""

from config.settings import (
    ConfigError,
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
