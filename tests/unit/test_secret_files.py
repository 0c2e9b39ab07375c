"""``TESSERA_<NAME>_FILE``: a setting read from a mounted secret file (config/secret_files.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import config
from config.secret_files import MAX_SECRET_BYTES
from config.settings import DEFAULTS_FILE
from config.yamlfile import read_mapping

SECRET = "s3cret-Value"


def _secret(tmp_path: Path, text: str | bytes, name: str = "secret") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def test_a_section_setting_comes_from_its_file_with_the_trailing_newline_stripped(tmp_path: Path) -> None:
    settings = config.load(env={"TESSERA_REDIS_WORKER_PASSWORD_FILE": _secret(tmp_path, SECRET + "\n")})
    assert settings.redis.worker_password == SECRET


def test_a_top_level_and_a_typed_setting_come_from_files(tmp_path: Path) -> None:
    env = {"TESSERA_NODE_FILE": _secret(tmp_path, "pod-7\r\n", "node"),
           "TESSERA_WEB_PORT_FILE": _secret(tmp_path, "8099", "port")}
    settings = config.load(env=env)
    assert settings.node == "pod-7"
    assert settings.web.port == 8099  # converted as the plain variable would be


def test_a_password_in_a_redis_url_file_fills_the_password(tmp_path: Path) -> None:
    url = _secret(tmp_path, f"redis://:{SECRET}@10.0.0.5:6379/0\n")
    settings = config.load(env={"TESSERA_REDIS_URL_FILE": url})
    assert settings.redis.password == SECRET
    assert settings.redis.host == "10.0.0.5"


def test_inner_whitespace_and_leading_space_are_kept(tmp_path: Path) -> None:
    settings = config.load(env={"TESSERA_WEB_SIGNING_KEY_FILE": _secret(tmp_path, " a b\n\n")})
    assert settings.web.signing_key == " a b"


def test_both_the_variable_and_its_file_set_is_refused(tmp_path: Path) -> None:
    env = {"TESSERA_REDIS_PASSWORD": SECRET, "TESSERA_REDIS_PASSWORD_FILE": _secret(tmp_path, SECRET)}
    with pytest.raises(config.ConfigError, match="TESSERA_REDIS_PASSWORD and TESSERA_REDIS_PASSWORD_FILE"):
        config.load(env=env)


def test_a_missing_file_names_the_variable_and_the_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(config.ConfigError, match="TESSERA_REDIS_PASSWORD_FILE: cannot read .*nope.*No such file"):
        config.load(env={"TESSERA_REDIS_PASSWORD_FILE": missing})


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file all the same")
def test_an_unreadable_file_is_a_config_error_without_the_content(tmp_path: Path) -> None:
    path = _secret(tmp_path, SECRET)
    os.chmod(path, 0)
    with pytest.raises(config.ConfigError, match="TESSERA_REDIS_PASSWORD_FILE: cannot read") as caught:
        config.load(env={"TESSERA_REDIS_PASSWORD_FILE": path})
    assert SECRET not in str(caught.value)


def test_a_folder_or_an_empty_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="TESSERA_REDIS_PASSWORD_FILE: cannot read"):
        config.load(env={"TESSERA_REDIS_PASSWORD_FILE": str(tmp_path)})
    with pytest.raises(config.ConfigError, match="TESSERA_REDIS_PASSWORD_FILE: empty"):
        config.load(env={"TESSERA_REDIS_PASSWORD_FILE": ""})


def test_a_binary_or_huge_file_is_refused_without_quoting_it(tmp_path: Path) -> None:
    binary = _secret(tmp_path, b"\xff\xfe" + SECRET.encode(), "binary")
    with pytest.raises(config.ConfigError, match="not UTF-8 text") as caught:
        config.load(env={"TESSERA_REDIS_PASSWORD_FILE": binary})
    assert caught.value.__suppress_context__  # `from None`: a traceback would quote the decode error's bytes
    assert "xff" not in str(caught.value) and SECRET not in str(caught.value)
    huge = _secret(tmp_path, b"x" * (MAX_SECRET_BYTES + 1), "huge")
    with pytest.raises(config.ConfigError, match="longer than"):
        config.load(env={"TESSERA_REDIS_PASSWORD_FILE": huge})


def test_the_file_is_read_only_for_known_settings(tmp_path: Path) -> None:
    """An unknown TESSERA_*_FILE is ignored, as an unknown TESSERA_* variable is (the file is not even opened)."""
    settings = config.load(env={"TESSERA_NO_SUCH_SETTING_FILE": str(tmp_path / "absent")})
    assert settings.node


def test_no_setting_name_is_another_settings_file_variable() -> None:
    """``results.key_file`` is read from TESSERA_RESULTS_KEY_FILE; a ``results.key`` beside it would make that
    name mean two things, so no section may hold both ``x`` and ``x_file``."""
    defaults = read_mapping(DEFAULTS_FILE)
    sections = {"": {k: v for k, v in defaults.items() if not isinstance(v, dict)}}
    sections.update({k: v for k, v in defaults.items() if isinstance(v, dict)})
    clashes = [f"{section}.{key}" for section, keys in sections.items() for key in keys
               if key.endswith("_file") and key.removesuffix("_file") in keys]
    assert not clashes
