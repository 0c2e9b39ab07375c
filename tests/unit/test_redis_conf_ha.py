"""redis.conf, the ACL file and sentinel.conf as rendered for a Sentinel setup (issue 17); without sentinels the
embedded Redis's conf is as before: users inline, no replication lines, no `replica` or `sentinel` user."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

import pytest

from config import Settings
from tests.helpers.settings import SettingsFactory, settings_factory
from workers.cli.main import _instance
from workers.service.redis_server import (
    ACL_FILE,
    ROLES,
    acl_file_text,
    acl_lines,
    exec_redis,
    exec_sentinel,
    grants,
    render_conf,
    render_sentinel_conf,
    write_conf,
)

ROLE_PASSWORDS = {f"TESSERA_REDIS_{role.upper()}_PASSWORD": f"{role}-pw" for role in ROLES if role != "admin"}
HA = {"TESSERA_REDIS_SENTINELS": "127.0.0.1:26001,127.0.0.1:26002,127.0.0.1:26003",
      "TESSERA_REDIS_REPLICA_PASSWORD": "replica-pw", "TESSERA_REDIS_SENTINEL_PASSWORD": "sentinel-pw",
      "TESSERA_REDIS_SENTINEL_CLIENT_PASSWORD": "client-pw"}


@pytest.fixture
def make(tmp_path: Path) -> SettingsFactory:
    return settings_factory(tmp_path)


def ha(make: SettingsFactory, **env: str) -> Settings:
    return make(**ROLE_PASSWORDS, **HA, **env)


def test_without_sentinels_nothing_changes(make: SettingsFactory) -> None:
    settings = make(**ROLE_PASSWORDS, **{k: v for k, v in HA.items() if k != "TESSERA_REDIS_SENTINELS"})
    conf = render_conf(settings.redis)
    assert not any(word in conf for word in ("aclfile", "masteruser", "masterauth", "replicaof", "replica-pw"))
    assert "user web on " in conf and not any(line.startswith(("user replica", "user sentinel"))
                                             for line in acl_lines(settings.redis))


def test_with_sentinels_users_live_in_the_acl_file_and_any_redis_can_follow(make: SettingsFactory) -> None:
    settings = ha(make)
    conf = render_conf(settings.redis).splitlines()
    assert f'aclfile "{Path(settings.redis.data_dir) / ACL_FILE}"' in conf
    assert "masteruser replica" in conf and 'masterauth "replica-pw"' in conf  # a returning primary can follow
    assert not any(line.startswith(("user ", "requirepass", "replicaof")) for line in conf)
    replica = render_conf(settings.redis, replica_of=("10.0.0.7", 6390)).splitlines()
    assert "replicaof 10.0.0.7 6390" in replica
    users = acl_file_text(settings.redis).splitlines()
    assert users[0].startswith("user default off ") and users == acl_lines(settings.redis)
    assert "user replica on >replica-pw resetchannels resetkeys -@all +psync +replconf +ping" in users
    (sentinel,) = (line for line in users if line.startswith("user sentinel "))
    assert "resetkeys -@all" in sentinel and "&__sentinel__:hello" in sentinel and "~" not in sentinel


def test_sentinel_conf(make: SettingsFactory) -> None:
    settings = ha(make, TESSERA_REDIS_MASTER_NAME="mosaics")
    conf = render_sentinel_conf(settings.redis, 26001, "127.0.0.1", 6389, quorum=2).splitlines()
    for line in ("port 26001", "bind 127.0.0.1", "user default off", "sentinel sentinel-user sentinel",
                 'sentinel sentinel-pass "sentinel-pw"', "sentinel resolve-hostnames no",
                 "sentinel monitor mosaics 127.0.0.1 6389 2", "sentinel auth-user mosaics sentinel",
                 'sentinel auth-pass mosaics "sentinel-pw"', f"dir {settings.redis.data_dir}"):
        assert line in conf
    assert any(line.startswith("sentinel down-after-milliseconds mosaics ") for line in conf)
    (client,) = (line for line in conf if line.startswith("user client "))
    assert client.startswith("user client on >client-pw resetchannels -@all ") and "failover" not in client


def test_only_the_writers_a_failover_must_not_lose_may_wait(make: SettingsFactory) -> None:
    prefix = make().redis.prefix
    waits = {role for role in ROLES if "+wait" in grants(role, prefix)[0].commands.split()}
    assert waits == {"web", "worker"}


def test_write_conf_puts_the_acl_file_beside_it_privately(make: SettingsFactory) -> None:
    settings = ha(make).redis
    conf = write_conf(settings, replica_of=("127.0.0.1", 6391))
    acl = conf.with_name(ACL_FILE)
    assert acl.read_text() == acl_file_text(settings) and "replicaof 127.0.0.1 6391" in conf.read_text()
    assert {stat.S_IMODE(path.stat().st_mode) for path in (conf, acl)} == {0o600}


def test_the_instance_options_and_their_refusals(make: SettingsFactory, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def no_exec(*args: object) -> None:
        raise AssertionError(f"would have run {args}")

    monkeypatch.setattr(os, "execv", no_exec)  # a refusal that regressed must fail here, not replace pytest
    args = argparse.Namespace(port=6392, data_dir=str(tmp_path / "b"))
    instance = _instance(args, ha(make))
    assert (instance.host, instance.port, instance.data_dir) == ("127.0.0.1", 6392, str(tmp_path / "b"))
    with pytest.raises(SystemExit, match="needs redis.sentinels"):
        exec_redis(make().redis, replica_of=("127.0.0.1", 6391))
    with pytest.raises(SystemExit, match="set redis.sentinels"):
        exec_sentinel(make().redis, 26391)
