"""Settings from mounted secret files: ``TESSERA_<NAME>_FILE=/run/secrets/...`` gives ``TESSERA_<NAME>``'s value.

A container platform mounts a secret as a file (Kubernetes Secret volumes, podman/docker secrets), which keeps
it out of the process's environment, where ``ps e``, a crash report or a child process would see it. Every
variable the env layer reads (config/settings.py ``_env_layer``) can come from a file this way.
"""

from __future__ import annotations

from collections.abc import Mapping

from config.errors import ConfigError

FILE_SUFFIX = "_FILE"
MAX_SECRET_BYTES = 1 << 20
"""A secret file longer than this is refused: a setting is a line, not a disk image mounted by mistake."""


def env_value(env: Mapping[str, str], name: str) -> str | None:
    """``env[name]``, else the text of the file ``env[name + "_FILE"]`` names (trailing newlines stripped, as
    ``echo`` and editors add one), else None. Both set is an error: which one wins would be a guess."""
    file_var = name + FILE_SUFFIX
    if file_var not in env:
        return env.get(name)
    if name in env:
        raise ConfigError(f"environment: {name} and {file_var} are both set: set only one")
    return read_secret(file_var, env[file_var])


def read_secret(file_var: str, path: str) -> str:
    """The text of the secret file ``path`` that variable ``file_var`` names; errors name the variable and the
    path, never the file's content."""
    if not path:
        raise ConfigError(f"environment: {file_var}: empty (it must name a file)")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"environment: {file_var}: cannot read {path!r}: {reason}") from exc
    if len(data) > MAX_SECRET_BYTES:
        raise ConfigError(f"environment: {file_var}: {path!r} is longer than {MAX_SECRET_BYTES} bytes")
    try:
        return data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        # not chained: a decode error quotes the bytes it stopped at, which are the secret's
        raise ConfigError(f"environment: {file_var}: {path!r} is not UTF-8 text") from None
