"""config.load / config.locate: defaults, file and env layers, errors naming their source, secrets out of repr."""

from __future__ import annotations

from pathlib import Path

import pytest

import config
from config import ConfigError
from config.converters import convert, string_list

SECRET = "s3cr3t-pw-XYZ"
SIGNING = "sign-key-ABC"


def write(tmp_path: Path, text: str, name: str = "local.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_load() -> None:
    settings = config.load(env={})
    assert settings.web.port == 8080
    assert settings.redis.url == "redis://127.0.0.1:6389/0"
    assert settings.redis.password == ""
    assert settings.fetch.allow_hosts == []
    assert settings.limits.max_cells_per_side == 256
    assert settings.node  # filled from the hostname


def test_local_file_overrides_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "web:\n  port: 9001\nredis:\n  password: pw\nfetch:\n  allow_hosts: [a.example, b]\n")
    settings = config.load(path, env={})
    assert settings.web.port == 9001
    assert settings.web.host == "127.0.0.1"  # untouched keys keep their defaults
    assert settings.redis.password == "pw"
    assert settings.fetch.allow_hosts == ["a.example", "b"]


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "web:\n  port: 9001\n")
    env = {
        "TESSERA_REDIS_URL": "redis://10.0.0.5:7000/1",
        "TESSERA_WEB_PORT": "9100",
        "TESSERA_FETCH_ALLOW_HOSTS": "a, b",
        "TESSERA_NODE": "node-7",
    }
    settings = config.load(path, env=env)
    assert settings.web.port == 9100
    assert settings.redis.host == "10.0.0.5"
    assert settings.redis.port == 7000
    assert settings.fetch.allow_hosts == ["a", "b"]
    assert settings.node == "node-7"


def test_password_in_redis_url_fills_password() -> None:
    settings = config.load(env={"TESSERA_REDIS_URL": f"redis://:{SECRET}@127.0.0.1:6389/0"})
    assert settings.redis.password == SECRET


def test_unknown_key_names_file_and_key_path(tmp_path: Path) -> None:
    path = write(tmp_path, "web:\n  prot: 8080\n")
    with pytest.raises(ConfigError) as info:
        config.load(path, env={})
    message = str(info.value)
    assert message.startswith(str(path))
    assert "web.prot" in message


def test_unknown_top_level_section(tmp_path: Path) -> None:
    path = write(tmp_path, "webb:\n  port: 1\n")
    with pytest.raises(ConfigError, match="webb"):
        config.load(path, env={})


def test_bad_type_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'web:\n  port: "abc"\n')
    with pytest.raises(ConfigError) as info:
        config.load(path, env={})
    message = str(info.value)
    assert message.startswith(str(path))
    assert "web.port" in message
    assert "abc" in message


def test_bad_env_value_names_environment() -> None:
    with pytest.raises(ConfigError, match=r"^environment: web\.port"):
        config.load(env={"TESSERA_WEB_PORT": "eighty"})


def test_section_given_as_scalar_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "web: 5\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        config.load(path, env={})


def test_negative_number_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "limits:\n  max_tiles: -1\n")
    with pytest.raises(ConfigError, match=r"limits\.max_tiles.*negative"):
        config.load(path, env={})


def test_invalid_yaml_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "web: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        config.load(path, env={})
    assert str(info.value).startswith(str(path))


def test_non_mapping_top_level_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping") as info:
        config.load(path, env={})
    assert str(info.value).startswith(str(path))


def test_missing_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "nope.yaml", env={})


def test_non_redis_url_refused() -> None:
    with pytest.raises(ConfigError, match=r"redis\.url"):
        config.load(env={"TESSERA_REDIS_URL": "http://127.0.0.1:6379"})


def test_repr_hides_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, f"redis:\n  password: {SECRET}\nweb:\n  signing_key: {SIGNING}\n")
    settings = config.load(path, env={})
    for text in (repr(settings), str(settings), repr(settings.redis), repr(settings.web)):
        assert SECRET not in text
        assert SIGNING not in text
    assert "***" in repr(settings.redis)


def test_repr_hides_password_carried_in_url() -> None:
    settings = config.load(env={"TESSERA_REDIS_URL": f"redis://user:{SECRET}@10.0.0.5:7000/2"})
    assert SECRET not in repr(settings)
    assert SECRET not in repr(settings.redis)
    assert "10.0.0.5:7000" in repr(settings.redis)


def test_relative_paths_resolved_against_root(tmp_path: Path) -> None:
    path = write(tmp_path, f"paths:\n  root: {tmp_path}\n  media: m/media\n  uploads: up\n")
    settings = config.load(path, env={})
    root = tmp_path.resolve()
    assert settings.paths.root == str(root)
    assert settings.paths.media == str(root / "m" / "media")
    assert settings.paths.uploads == str(root / "up")
    assert settings.redis.data_dir == str(root / "var" / "redis")


def test_require_secrets() -> None:
    with pytest.raises(ConfigError, match=r"redis\.password"):
        config.load(env={}).require_secrets()
    with pytest.raises(ConfigError, match=r"web\.signing_key"):
        config.load(env={"TESSERA_REDIS_PASSWORD": "pw"}).require_secrets()
    config.load(env={"TESSERA_REDIS_PASSWORD": "pw"}).require_secrets(signing=False)  # a worker signs nothing
    config.load(env={"TESSERA_REDIS_PASSWORD": "pw", "TESSERA_WEB_SIGNING_KEY": "k"}).require_secrets()


def test_locate_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert config.locate(None, env={}) is None
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "local.yaml").write_text("{}\n")
    assert config.locate(None, env={}) == Path("config") / "local.yaml"
    assert config.locate(None, env={"TESSERA_CONFIG": "/etc/t.yaml"}) == Path("/etc/t.yaml")
    assert config.locate("given.yaml", env={"TESSERA_CONFIG": "/etc/t.yaml"}) == Path("given.yaml")


@pytest.mark.parametrize(
    ("hint", "value", "expected"),
    [(int, "1_000", 1000), (int, " 7 ", 7), (float, "0.5", 0.5), (bool, "yes", True), (bool, "off", False),
     (str, None, ""), (str, 12, "12")],
)
def test_convert_accepts(hint: type, value: object, expected: object) -> None:
    assert convert(hint, value) == expected


@pytest.mark.parametrize(("hint", "value"), [(int, True), (int, "1.5"), (float, "x"), (bool, "maybe"), (str, [1])])
def test_convert_refuses(hint: type, value: object) -> None:
    with pytest.raises(ValueError):
        convert(hint, value)


def test_string_list() -> None:
    assert string_list(" a, ,b ,") == ["a", "b"]
    assert string_list(None) == []
    with pytest.raises(ValueError):
        string_list([{"a": 1}])
