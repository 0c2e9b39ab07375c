"""Build nested frozen dataclasses from YAML data, with errors that name file and key."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

from config.converters import convert
from config.errors import ConfigError

SourceOf = Callable[[str], str]
"""Where the value at a key path came from (a file name, or "environment")."""


def build(cls: type, data: Any, source_of: SourceOf, prefix: str = "") -> Any:
    """``cls`` from a mapping: unknown keys refused, missing required keys named, values converted."""
    where = prefix.rstrip(".") or "(top level)"
    if not isinstance(data, dict):
        raise ConfigError(f"{source_of(prefix.rstrip('.'))}: {where}: must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(f"{source_of(prefix + str(key))}: {prefix}{key}: unknown key")
    for name, spec in fields.items():
        required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        if required and name not in data:
            raise ConfigError(f"{source_of(prefix + name)}: {prefix}{name}: missing")
    hints = typing.get_type_hints(cls)
    return cls(**{name: _value(hints[name], value, source_of, prefix + name) for name, value in data.items()})


def _value(hint: Any, value: Any, source_of: SourceOf, path: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return build(typing.cast(type, hint), value, source_of, path + ".")
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{source_of(path)}: {path}: must be a list")
        item = typing.get_args(hint)[0]
        return tuple(build(item, entry, source_of, f"{path}[{i}].") for i, entry in enumerate(value))
    if typing.get_origin(hint) is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source_of(path)}: {path}: must be a mapping")
        return value
    try:
        return convert(hint, value)
    except ValueError as exc:
        raise ConfigError(f"{source_of(path)}: {path}: {exc}") from exc
