"""`tessera init` secrets, the monitor role's credentials and the /admin password in settings."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import standardwebhooks
import yaml

import config
from workers.cli.local_config import HEADER, LocalConfigError, ensure_secrets
from workers.cli.main import main
from workers.protocol.webhooks import secret_key
from workers.service.redis_server import acl_lines

OLD_FILE = """\
# Written by `tessera init`; holds secrets: keep it out of version control.
redis:
    password: "old-admin"   # kept as it is, comment included
    web_password: "old-web"
    worker_password: "old-worker"
    orchestrator_password: "old-orchestrator"
web:
  signing_key: "old-signing"
worker:
  block_ms: 500
"""


def test_init_writes_every_secret_once_and_privately(tmp_path: Path) -> None:
    path = tmp_path / "config" / "local.yaml"
    assert len(ensure_secrets(path)) == 13 and path.read_text().startswith(HEADER)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = config.load(path, env={})
    redis = settings.redis
    secrets = [redis.password, redis.web_password, redis.worker_password, redis.orchestrator_password,
               redis.monitor_password, redis.keeper_password, redis.webhooks_password, redis.replica_password,
               redis.sentinel_password, redis.sentinel_client_password, settings.web.signing_key,
               settings.web.admin_password, settings.webhooks.secret]
    assert all(len(secret) >= 32 for secret in secrets) and len(set(secrets)) == len(secrets)
    assert redis.acl and redis.credentials("monitor") == ("monitor", redis.monitor_password)
    assert sum(line.startswith("user monitor on ") for line in acl_lines(redis)) == 1
    assert redis.credentials("keeper") == ("keeper", redis.keeper_password)
    assert redis.credentials("webhooks") == ("webhooks", redis.webhooks_password)
    assert settings.webhooks.secret.startswith("whsec_")  # Standard Webhooks' form, read by its own library:
    assert standardwebhooks.Webhook(settings.webhooks.secret)._whsecret == secret_key(settings.webhooks.secret)
    assert settings.webhooks.secret not in repr(settings)
    before = path.read_text()
    assert ensure_secrets(path) == [] and path.read_text() == before  # never overwritten
    for text in (repr(settings), repr(redis), repr(settings.web)):
        assert redis.monitor_password not in text and settings.web.admin_password not in text


def test_admin_page_is_off_by_default_and_set_from_env() -> None:
    assert config.load(env={}).web.admin_password == ""
    assert config.load(env={"TESSERA_WEB_ADMIN_PASSWORD": "pw"}).web.admin_password == "pw"
    assert config.load(env={"TESSERA_REDIS_MONITOR_PASSWORD": "m"}).redis.monitor_password == "m"


def test_without_acl_every_role_uses_the_one_password() -> None:
    redis = config.load(env={"TESSERA_REDIS_PASSWORD": "pw"}).redis
    assert not redis.acl and redis.credentials("monitor") == (None, "pw")


def test_init_adds_only_the_missing_secrets_to_an_older_file(tmp_path: Path) -> None:
    path = tmp_path / "local.yaml"
    path.write_text(OLD_FILE)
    path.chmod(0o644)
    assert ensure_secrets(path) == ["redis.monitor_password", "redis.keeper_password", "redis.webhooks_password",
                                    "redis.replica_password", "redis.sentinel_password",
                                    "redis.sentinel_client_password", "web.admin_password", "webhooks.secret"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.startswith(HEADER) and "# kept as it is, comment included" in text and "block_ms: 500" in text
    assert "\n    monitor_password: " in text  # the section's own indentation
    settings = config.load(path, env={})
    assert settings.redis.password == "old-admin" and settings.web.signing_key == "old-signing"
    assert settings.worker.block_ms == 500
    assert len(settings.redis.monitor_password) >= 32 and len(settings.web.admin_password) >= 32
    assert settings.redis.monitor_password != settings.web.admin_password
    assert ensure_secrets(path) == [] and path.read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["local.yaml"]  # no temporary file left behind


def test_present_keys_are_kept_even_when_empty_and_missing_sections_are_added(tmp_path: Path) -> None:
    path = tmp_path / "local.yaml"
    path.write_text('node: n1\nredis:\n  password: "p"\n  monitor_password: ""\n')
    added = ensure_secrets(path)
    assert "redis.monitor_password" not in added and "web.admin_password" in added and "web.signing_key" in added
    data = yaml.safe_load(path.read_text())
    assert data["node"] == "n1" and data["redis"]["password"] == "p" and data["redis"]["monitor_password"] == ""
    assert path.read_text().startswith(HEADER)


def test_a_file_that_cannot_be_extended_safely_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "local.yaml"
    for text in ("web: {signing_key: s}\n", "redis: [1, 2]\n", "redis: {password: [unclosed\n"):
        path.write_text(text)
        with pytest.raises(LocalConfigError):
            ensure_secrets(path)
        assert path.read_text() == text


def test_the_command_says_what_it_did(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config" / "local.yaml"
    assert main(["init", "--path", str(path)]) == 0 and capsys.readouterr().out.startswith(f"wrote {path}")
    path.write_text("\n".join(line for line in path.read_text().splitlines() if "admin_password" not in line))
    assert main(["init", "--path", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"added to {path}: web.admin_password (")
    assert main(["init", "--path", str(path)]) == 0 and capsys.readouterr().out == f"kept {path}: no secret missing\n"
    path.write_text("redis: [\n")
    assert main(["init", "--path", str(path)]) == 2 and "not valid YAML" in capsys.readouterr().err
