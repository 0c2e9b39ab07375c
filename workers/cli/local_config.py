"""`tessera init`: write the local config's generated secrets (never committed), and add new ones later.

A file written before a secret existed (say redis.monitor_password) gets just the missing keys;
values already there, comments and layout are left as they are. Runs on every `make demo`/`make test`.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

from config import yamlfile
from config.errors import ConfigError
from workers.protocol.files import write_atomic
from workers.protocol.webhooks import new_secret

HEADER = "# Written by `tessera init`; holds secrets: keep it out of version control.\n"
SECRETS = (("redis", "password"), ("redis", "web_password"), ("redis", "worker_password"),
           ("redis", "orchestrator_password"), ("redis", "monitor_password"), ("redis", "keeper_password"),
           ("redis", "webhooks_password"), ("redis", "replica_password"), ("redis", "sentinel_password"),
           ("redis", "sentinel_client_password"), ("web", "signing_key"), ("web", "admin_password"),
           ("webhooks", "secret"))
"""Every generated secret, in the order a fresh file lists them."""
FORMATS = {("webhooks", "secret"): new_secret}
"""Secrets of a form of their own (Standard Webhooks' ``whsec_`` + base64); the others are URL-safe tokens."""


class LocalConfigError(ConfigError):
    """The existing file cannot be read as YAML or extended without changing what it says."""

    code = "local_config"


def ensure_secrets(path: Path) -> list[str]:
    """Add every missing secret to ``path`` (created if absent); return the `section.key` names added.

    A key that is present is never changed, even when empty (``admin_password: ""`` keeps /admin off).
    The file is replaced atomically and left readable by its owner only.
    """
    path = path.resolve()  # a symlinked local.yaml stays a link; its target is rewritten
    old = path.read_text() if path.exists() else ""
    before = _parse(old, path)
    missing = [(section, key) for section, key in SECRETS if key not in (before.get(section) or {})]
    if not missing:
        return []
    text = old if old.startswith("#") else HEADER + old
    for section in dict.fromkeys(section for section, _ in missing):
        text = _insert(text, section, [f'{key}: "{_generate(section, key)}"' for s, key in missing if s == section])
    _check(before, _parse(text, path), missing, path)
    write_atomic(path, text.encode(), mode=0o600)
    return [f"{section}.{key}" for section, key in missing]


def _generate(section: str, key: str) -> str:
    make = FORMATS.get((section, key))
    return make() if make is not None else secrets.token_urlsafe(32)


def _parse(text: str, path: Path) -> dict[str, Any]:
    try:
        data = yamlfile.parse(text, str(path)) if text.strip() else {}
    except ConfigError as exc:
        raise LocalConfigError(str(exc)) from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or any(not isinstance(data.get(s) or {}, dict) for s, _ in SECRETS):
        raise LocalConfigError(f"{path}: expected sections `redis:`, `web:` and `webhooks:` as mappings")
    return data


def _insert(text: str, section: str, entries: list[str]) -> str:
    """Put ``entries`` first under the block section ``section:``, or append that section at the end."""
    lines = text.splitlines(keepends=True)
    header = re.compile(rf"^{re.escape(section)}:\s*(#.*)?$")
    for index, current in enumerate(lines):
        if header.match(current.rstrip("\n")):
            indent = _child_indent(lines[index + 1:])
            lines[index + 1:index + 1] = [f"{indent}{entry}\n" for entry in entries]
            return "".join(lines)
    body = "".join(lines)
    if body and not body.endswith("\n"):
        body += "\n"
    return body + f"{section}:\n" + "".join(f"  {entry}\n" for entry in entries)


def _child_indent(rest: list[str]) -> str:
    """The indentation of a section's first key (two spaces for an empty section)."""
    for current in rest:
        stripped = current.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = current[:len(current) - len(current.lstrip())]
        return indent or "  "
    return "  "


def _check(before: dict[str, Any], after: dict[str, Any], added: list[tuple[str, str]], path: Path) -> None:
    """The edited text must say everything the old one said, plus the added keys (else write nothing)."""
    expected = {name: dict(value) if isinstance(value, dict) else value for name, value in before.items()}
    for section, key in added:
        expected.setdefault(section, None)
        expected[section] = {**(expected[section] or {}), key: (after.get(section) or {}).get(key)}
    if after != expected or any(not (after[s] or {}).get(k) for s, k in added):
        raise LocalConfigError(f"{path}: cannot add {', '.join(f'{s}.{k}' for s, k in added)} without rewriting "
                               "the file; add them by hand (see config/defaults.yaml)")
