"""`tessera init` secrets, the monitor role's credentials and the /admin password in settings."""

from __future__ import annotations

import stat
from pathlib import Path

import config
from workers.local_config import write_local_config
from workers.redis_server import acl_lines


def test_init_writes_every_secret_once_and_privately(tmp_path: Path) -> None:
    path = tmp_path / "config" / "local.yaml"
    assert write_local_config(path) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = config.load(path, env={})
    redis = settings.redis
    secrets = [redis.password, redis.web_password, redis.worker_password, redis.orchestrator_password,
               redis.monitor_password, settings.web.signing_key, settings.web.admin_password]
    assert all(len(secret) >= 32 for secret in secrets) and len(set(secrets)) == len(secrets)
    assert redis.acl and redis.credentials("monitor") == ("monitor", redis.monitor_password)
    assert sum(line.startswith("user monitor on ") for line in acl_lines(redis)) == 1
    before = path.read_text()
    assert write_local_config(path) is False and path.read_text() == before  # never overwritten
    for text in (repr(settings), repr(redis), repr(settings.web)):
        assert redis.monitor_password not in text and settings.web.admin_password not in text


def test_admin_page_is_off_by_default_and_set_from_env() -> None:
    assert config.load(env={}).web.admin_password == ""
    assert config.load(env={"TESSERA_WEB_ADMIN_PASSWORD": "pw"}).web.admin_password == "pw"
    assert config.load(env={"TESSERA_REDIS_MONITOR_PASSWORD": "m"}).redis.monitor_password == "m"


def test_without_acl_every_role_uses_the_one_password() -> None:
    redis = config.load(env={"TESSERA_REDIS_PASSWORD": "pw"}).redis
    assert not redis.acl and redis.credentials("monitor") == (None, "pw")
