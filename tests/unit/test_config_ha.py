"""The Sentinel keys of `redis:` (issue 17): parsed from YAML and env, checked at load with the key named."""

from __future__ import annotations

import pytest

import config
from config import ConfigError


def load(**env: str) -> config.Settings:
    return config.load(env=env)


def test_single_redis_by_default() -> None:
    redis = load().redis
    assert redis.sentinels == [] and not redis.ha
    assert (redis.master_name, redis.min_replicas_acked, redis.wait_timeout_ms) == ("tessera", 1, 1000)


def test_sentinels_from_env_as_pairs() -> None:
    redis = load(TESSERA_REDIS_SENTINELS="10.0.0.1:26379, [::1]:26380,sentinel-c:5000").redis
    assert redis.ha
    assert redis.sentinel_addresses == [("10.0.0.1", 26379), ("::1", 26380), ("sentinel-c", 5000)]


@pytest.mark.parametrize("entry", ["10.0.0.1", "10.0.0.1:0", "10.0.0.1:65536", ":26379", "h:port", "h:-1"])
def test_bad_sentinel_refused(entry: str) -> None:
    with pytest.raises(ConfigError, match=r"redis\.sentinels: .*" + entry.replace("[", r"\[")):
        load(TESSERA_REDIS_SENTINELS=entry)


@pytest.mark.parametrize(("key", "value"), [("MASTER_NAME", " "), ("MIN_REPLICAS_ACKED", "-1"),
                                            ("WAIT_TIMEOUT_MS", "0"), ("WAIT_TIMEOUT_MS", "soon")])
def test_bad_wait_or_name_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"redis\.{key.lower()}"):
        load(**{f"TESSERA_REDIS_{key}": value})


def test_ha_passwords_stay_out_of_repr() -> None:
    redis = load(TESSERA_REDIS_SENTINEL_PASSWORD="s3cret-sentinel", TESSERA_REDIS_REPLICA_PASSWORD="s3cret-replica",
                 TESSERA_REDIS_SENTINEL_CLIENT_PASSWORD="s3cret-client").redis
    assert "s3cret" not in repr(redis) and "s3cret" not in str(load())
