"""The embedded Redis's durability is a setting, `always` by default (issue 13: 3)."""

from __future__ import annotations

import pytest

from config import ConfigError
from tests.helpers.settings import SettingsFactory
from workers.service.redis_server import render_conf


def conf_lines(make_settings: SettingsFactory, **env: str) -> list[str]:
    return render_conf(make_settings(**env).redis).splitlines()


def test_the_embedded_redis_fsyncs_every_write_by_default(make_settings: SettingsFactory) -> None:
    lines = conf_lines(make_settings)
    assert "appendonly yes" in lines and "appendfsync always" in lines
    assert not any(line.startswith("appendfsync") and line != "appendfsync always" for line in lines)


def test_durability_can_be_traded_for_speed_and_is_checked(make_settings: SettingsFactory) -> None:
    assert "appendfsync everysec" in conf_lines(make_settings, TESSERA_REDIS_APPENDFSYNC="everysec")
    with pytest.raises(ConfigError, match="redis.appendfsync"):
        make_settings(TESSERA_REDIS_APPENDFSYNC="sometimes")
