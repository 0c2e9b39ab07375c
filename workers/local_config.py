"""`tessera init`: write the local config with generated secrets, once (never committed)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TEMPLATE = """\
# Written by `tessera init`; holds secrets: keep it out of version control.
redis:
  password: "{password}"
  web_password: "{web}"
  worker_password: "{worker}"
  orchestrator_password: "{orchestrator}"
  monitor_password: "{monitor}"
web:
  signing_key: "{signing_key}"
  admin_password: "{admin}"
"""


def write_local_config(path: Path) -> bool:
    """Create the file with fresh secrets; an existing file is kept (True when written)."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    text = TEMPLATE.format(**{name: secrets.token_urlsafe(32)
                              for name in ("password", "web", "worker", "orchestrator", "monitor", "signing_key",
                                           "admin")})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return True
