"""Property-based fuzzing of what arrives from outside: job packages and request options."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import config
from workers.protocol.errors import BadPackage, JobRejected
from workers.protocol.options import Options, check_job, parse_options
from workers.protocol.package import JobPackage

LIMITS = config.load(env={}).limits
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)
FIELDS = {"v": st.just(1) | JSON, "id": st.text(max_size=30) | JSON, "target": st.text(max_size=30) | JSON,
          "tiles": st.lists(st.text(max_size=20), max_size=3) | JSON,
          "options": st.fixed_dictionaries({}, optional={k: JSON | st.integers(-5, 300) for k in
                                                         ("cols", "rows", "tile_px", "seed", "noop", "blend", "x")})}


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_decode_or_fail_cleanly(raw: bytes) -> None:
    try:
        JobPackage.decode(raw, LIMITS)
    except BadPackage as exc:
        assert exc.raw == raw and str(exc)


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({}, optional=FIELDS))
def test_any_json_object_decodes_to_a_valid_package_or_fails_cleanly(data: dict[str, Any]) -> None:
    raw = json.dumps(data)
    try:
        package = JobPackage.decode(raw, LIMITS)
    except BadPackage as exc:
        assert str(exc).startswith(("bad job package", "the job package is not valid JSON"))
        return
    assert package.v == 1 and isinstance(package.id, str) and isinstance(package.options, Options)
    assert JobPackage.decode(package.encode(), LIMITS) == package  # what decodes, round-trips


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["grid", "tile_px", "seed", "blend", "min_distance", "max_uses"]),
                       st.text(max_size=12) | st.integers(-10**6, 10**6) | st.none() | st.floats(), max_size=6))
def test_options_parse_or_reject_with_a_message(raw: dict[str, Any]) -> None:
    try:
        options = parse_options(raw, "40", 32)
        check_job(options, LIMITS)
    except JobRejected as exc:
        assert str(exc)
        return
    assert 1 <= options.cols <= LIMITS.max_cells_per_side
    assert LIMITS.tile_px_min <= options.tile_px <= LIMITS.tile_px_max
