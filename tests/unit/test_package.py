"""JobPackage: the v1 JSON contract between web tier and workers."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import config
from config import LimitSettings
from workers.protocol.errors import BadPackage
from workers.protocol.options import Options
from workers.protocol.package import JobPackage, new_job_id


@pytest.fixture(scope="module")
def limits() -> LimitSettings:
    return config.load(env={}).limits


def good() -> dict[str, Any]:
    return {
        "v": 1,
        "id": "job-abc",
        "created_at": 1700000000.5,
        "target": "http://example.com/t.jpg",
        "tiles": ["http://example.com/1.png", "https://example.com/2.png"],
        "options": {"cols": 40, "rows": 30, "tile_px": 32, "seed": 7},
    }


def test_round_trip(limits: LimitSettings) -> None:
    package = JobPackage.create("http://e.com/t.jpg", ["http://e.com/a.png"], Options(48, 32, 16, 3))
    decoded = JobPackage.decode(package.encode(), limits)
    assert decoded == package
    assert isinstance(decoded.tiles, tuple)


def test_decode_bytes() -> None:
    package = JobPackage.decode(json.dumps(good()).encode())
    assert package.id == "job-abc"
    assert package.options == Options(40, 30, 32, 7)
    assert package.created_at == 1700000000.5


def test_create_uses_given_or_new_id() -> None:
    assert JobPackage.create("t", [], Options(1, 1, 8, 0), job_id="fixed").id == "fixed"
    assert len(JobPackage.create("t", [], Options(1, 1, 8, 0)).id) >= 22


def test_new_job_id_is_random_and_long() -> None:
    ids = {new_job_id() for _ in range(50)}
    assert len(ids) == 50
    for job_id in ids:
        assert len(job_id) >= 22  # 16 bytes = 128 bits in url-safe base64
        assert re.fullmatch(r"[A-Za-z0-9_-]+", job_id)


def bad(raw: str | bytes, limits: LimitSettings | None = None) -> BadPackage:
    with pytest.raises(BadPackage) as info:
        JobPackage.decode(raw, limits)
    assert info.value.raw == raw
    assert info.value.code == "bad_package"
    return info.value


def test_bad_json_keeps_raw() -> None:
    assert "not valid JSON" in str(bad("{not json"))


def test_invalid_utf8_bytes() -> None:
    bad(b"\xff\xfe{")


def test_non_object() -> None:
    assert "JSON object" in str(bad("[1, 2]"))


def test_unknown_version() -> None:
    data = good() | {"v": 2}
    assert "version 2" in str(bad(json.dumps(data)))


@pytest.mark.parametrize("field", ["id", "target", "tiles", "options"])
def test_missing_field(field: str) -> None:
    data = good()
    del data[field]
    assert repr(field) in str(bad(json.dumps(data)))


def test_missing_option() -> None:
    data = good()
    del data["options"]["seed"]
    assert "'seed'" in str(bad(json.dumps(data)))


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("id", 5, "id and target"),
        ("id", "", "id and target"),
        ("target", None, "id and target"),
        ("tiles", "http://e.com/a.png", "tiles"),
        ("tiles", ["ok", 3], "tiles"),
        ("options", [40, 30], "options must be an object"),
        ("created_at", "yesterday", "created_at must be a number"),
    ],
)
def test_wrong_types(field: str, value: Any, words: str) -> None:
    data = good() | {field: value}
    assert words in str(bad(json.dumps(data)))


@pytest.mark.parametrize("value", ["abc", None, [1]])
def test_option_not_a_number(value: Any) -> None:
    data = good()
    data["options"]["cols"] = value
    assert "must be a whole number" in str(bad(json.dumps(data)))


@pytest.mark.parametrize(
    ("option", "value"),
    [("cols", 100000), ("rows", 257), ("tile_px", 1), ("tile_px", 4096), ("seed", -1), ("seed", 2**32), ("cols", 0)],
)
def test_options_over_limits(limits: LimitSettings, option: str, value: int) -> None:
    data = good()
    data["options"][option] = value
    raw = json.dumps(data)
    JobPackage.decode(json.dumps(good()), limits)  # the unchanged package passes
    error = bad(raw, limits)
    assert str(error).startswith("bad job package: ")


def test_limits_not_checked_without_limits() -> None:
    data = good()
    data["options"]["cols"] = 100000
    assert JobPackage.decode(json.dumps(data)).options.cols == 100000


def test_infinite_option_is_bad_package() -> None:
    raw = json.dumps(good()).replace('"cols": 40', '"cols": 1e999')
    bad(raw)


@pytest.mark.parametrize("value", [40.7, True])
def test_option_must_be_an_integer_not_a_float_or_bool(value: Any) -> None:
    data = good()
    data["options"]["cols"] = value
    assert "must be a whole number" in str(bad(json.dumps(data)))


def test_deeply_nested_json_is_bad_package() -> None:
    bad("[" * 100000 + "]" * 100000)
