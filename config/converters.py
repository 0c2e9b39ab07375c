"""Small named converters from YAML/env values to typed fields; each raises ValueError quoting the bad value."""

from __future__ import annotations

import typing
from typing import Any


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip().replace("_", ""))
    except ValueError:
        raise ValueError(f"not an integer: {value!r}") from None


def number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {value!r}") from None


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise ValueError(f"not a string: {value!r}")
    return str(value)


def string_list(value: Any) -> list[str]:
    """A YAML list, or a comma-separated string (as env vars give it)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list) and all(isinstance(item, (str, int)) for item in value):
        return [str(item) for item in value]
    raise ValueError(f"not a list of strings: {value!r}")


_BY_TYPE = {bool: boolean, int: integer, float: number, str: text}


def convert(hint: Any, value: Any) -> Any:
    """Convert ``value`` to the type named by a dataclass field's annotation."""
    if typing.get_origin(hint) is list:
        return string_list(value)
    converter = _BY_TYPE.get(hint)
    if converter is None:
        raise ValueError(f"no converter for {hint!r}")
    result = converter(value)
    if isinstance(result, (int, float)) and not isinstance(result, bool) and result < 0:
        raise ValueError(f"must not be negative: {value!r}")
    return result
