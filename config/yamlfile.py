"""The one YAML reader of config/: safe_load only, and every failure a ConfigError that names the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from config.errors import ConfigError


def parse(text: str, source: str) -> Any:
    """The YAML document in ``text`` (None when empty); ``source`` names it in the error."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc


def read_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping at the top of the YAML file ``path`` ({} for an empty file)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    data = parse(text, str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data
