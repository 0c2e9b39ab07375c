"""The job package v1: the JSON contract between the web tier and the workers.

It holds ids, options and *references* to images (http(s) URLs), never image
bytes, so a worker on any machine can run the job from the package alone.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from config import LimitSettings
from workers.protocol.errors import BadPackage, JobRejected
from workers.protocol.options import Options, check_job

VERSION = 1
ID_BYTES = 16
"""Job ids carry 128 random bits: unguessable, so an id is the only key to a job."""
MAX_TILE_NAME = 200
"""Longest tile name (an upload's original file name, shown when the mosaic is explored)."""


def new_job_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


@dataclass(frozen=True)
class JobPackage:
    """One mosaic job. Build with :meth:`create`; cross the wire with encode/decode."""

    id: str
    target: str
    tiles: tuple[str, ...]
    options: Options
    created_at: float = field(default_factory=time.time)
    v: int = VERSION
    tile_names: tuple[str, ...] = ()
    """Empty, or one name per tile: an upload's original file name ("" for a tile given by URL)."""
    friends: dict[str, Any] | None = None
    """A friends request as asked (workers/inputs/friends/handles.py ``parse_request`` checks it; the worker
    gathers the pictures as a stage of the job): what was asked, never the pictures."""

    @classmethod
    def create(cls, target: str, tiles: list[str], options: Options, job_id: str | None = None,
               tile_names: list[str] | None = None, friends: dict[str, Any] | None = None) -> JobPackage:
        return cls(id=job_id or new_job_id(), target=target, tiles=tuple(tiles), options=options,
                   tile_names=tuple(tile_names or ()), friends=friends)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "v": self.v,
            "id": self.id,
            "created_at": self.created_at,
            "target": self.target,
            "tiles": list(self.tiles),
            "options": self.options.to_json(),
        }
        if self.tile_names:
            data["tile_names"] = list(self.tile_names)
        if self.friends is not None:
            data["friends"] = self.friends
        return data

    def encode(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes | str, limits: LimitSettings | None = None) -> JobPackage:
        """Parse and validate; any problem becomes BadPackage carrying the raw text."""
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise BadPackage(f"the job package is not valid JSON: {exc}", raw) from exc
        try:
            package = cls._from_json(data)
            if limits is not None:
                check_job(package.options, limits)  # the grid once the target's size is known (pipeline)
        except JobRejected as exc:
            raise BadPackage(f"bad job package: {exc}", raw) from exc
        return package

    @classmethod
    def _from_json(cls, data: Any) -> JobPackage:
        if not isinstance(data, dict):
            raise JobRejected("the package must be a JSON object")
        if data.get("v") != VERSION or isinstance(data.get("v"), bool):
            raise JobRejected(f"unknown package version {data.get('v')!r} (this worker reads v{VERSION})")
        job_id, target, tiles, opts = (_require(data, k) for k in ("id", "target", "tiles", "options"))
        if not isinstance(job_id, str) or not job_id or not isinstance(target, str):
            raise JobRejected("id and target must be strings")
        if not isinstance(tiles, list) or not all(isinstance(t, str) for t in tiles):
            raise JobRejected("tiles must be a list of URLs")
        if not isinstance(opts, dict):
            raise JobRejected("options must be an object")
        required: dict[str, Any] = {k: _whole(_require(opts, k), k) for k in REQUIRED_OPTIONS}
        options = Options(**required, **_optional(opts))
        created_at = data.get("created_at", time.time())
        if isinstance(created_at, bool) or not isinstance(created_at, (int, float)):
            raise JobRejected("created_at must be a number")
        names = _tile_names(data.get("tile_names"), len(tiles))
        friends = data.get("friends")
        if friends is not None and not isinstance(friends, dict):
            raise JobRejected("friends must be an object")
        return cls(id=job_id, target=target, tiles=tuple(tiles), options=options, created_at=created_at,
                   tile_names=names, friends=friends)


REQUIRED_OPTIONS = ("cols", "rows", "tile_px", "seed")


def _optional(opts: dict[str, Any]) -> dict[str, Any]:
    """Options with defaults: each must have the type of its default in Options."""
    known = {f.name: f for f in dataclasses.fields(Options) if f.name not in REQUIRED_OPTIONS}
    values = {}
    for name, value in opts.items():
        if name in REQUIRED_OPTIONS:
            continue
        if name not in known:
            raise JobRejected(f"unknown option {name!r}")
        expected = type(known[name].default)
        if type(value) is not expected and not (expected is float and type(value) is int):
            raise JobRejected(f"option {name} must be of type {expected.__name__}, not {str(value)[:20]!r}")
        values[name] = value
    return values


def _tile_names(value: Any, count: int) -> tuple[str, ...]:
    """Optional (packages before it have none): one string per tile, each at most MAX_TILE_NAME long."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) != count:
        raise JobRejected("tile_names must be a list with one name per tile")
    if not all(isinstance(name, str) and len(name) <= MAX_TILE_NAME for name in value):
        raise JobRejected(f"tile_names must be strings of at most {MAX_TILE_NAME} characters")
    return tuple(value)


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise JobRejected(f"option {name} must be a whole number, not {str(value)[:20]!r}")
    return value


def _require(data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise JobRejected(f"missing field {key!r}")
    return data[key]
