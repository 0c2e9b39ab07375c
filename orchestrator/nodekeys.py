"""A results key per node: made when the orchestrator adds the node, one line in the account's keys, gone with it.

Each node gets a fresh key pair of its own, so a node that is removed (or given up on) loses its way into
the web host's results account without touching the others, and a key taken from one node opens nothing
once that node is gone. The private half goes only to that node (``config/results_key``); the web host keeps
only the public line, marked ``tessera-node:<name>`` and with every forwarding, pty and rc file refused
(``restrict``; the account's sshd rules add the chroot and SFTP only).

The keys file is shared by every orchestrator run on this host: each change reads, edits and replaces it
whole (``write_atomic``) under an exclusive lock on ``<file>.lock``, so two runs never lose each other's line.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from workers.protocol.files import write_atomic

MARK = "tessera-node:"
"""The comment of a node's line: the mark, then the node's name."""
OPTIONS = "restrict"
"""sshd's authorized_keys options on every node key: no forwarding of any kind, no pty, no ~/.ssh/rc."""
KEYS_MODE = 0o644
"""The keys file: root's, outside the chroot, so the account cannot change it; readable by all, as sshd reads
it with the account's uid (public keys only)."""
NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Names a key line can carry: one word, so the line's comment names exactly one node."""


@dataclass(frozen=True)
class NodeKey:
    """A node's key pair: the private key in OpenSSH's format, and the public ``ssh-ed25519 <base64>``."""

    private: bytes
    public: str


def new_key() -> NodeKey:
    """A fresh ed25519 pair, made in memory: the private half is never written to this host's disk.

    Ed25519 in OpenSSH's format, because paramiko tries a key file as RSA, then ECDSA, then ed25519 and
    reports the last failure: for any other kind a refused key would read as a file in the wrong format."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return NodeKey(private=private, public=public.decode())


def key_line(node: str, public: str) -> str:
    """The authorized_keys line of a node: options, key, and the comment that names the node."""
    if not NODE_NAME.fullmatch(node):
        raise ValueError(f"node name {node!r}: one word of letters, digits, '.', '_' or '-' is needed in a key line")
    return f"{OPTIONS} {public} {MARK}{node}"


def _is_node_line(line: str, node: str) -> bool:
    return line.split()[-1:] == [f"{MARK}{node}"]


def with_key(text: str, node: str, public: str) -> str:
    """``text`` (an authorized_keys file) with the node's line replaced by one for ``public``; other lines kept."""
    return without_key(text, node) + key_line(node, public) + "\n"


def without_key(text: str, node: str) -> str:
    """``text`` without the node's line; every other line (an operator's own keys included) kept as it was."""
    kept = [line for line in text.splitlines() if not _is_node_line(line, node)]
    return "".join(line + "\n" for line in kept)


def nodes_in(text: str) -> list[str]:
    """The nodes that have a line in ``text``."""
    return [words[-1][len(MARK):] for words in map(str.split, text.splitlines())
            if words and words[-1].startswith(MARK)]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield  # the lock goes with the file's close


def edit(path: Path, change: Callable[[str], str]) -> None:
    """Replace the keys file with ``change(its text)``, whole and under the lock."""
    with _locked(path):
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        write_atomic(path, change(text).encode(), KEYS_MODE)


def authorize(path: Path, node: str, public: str) -> None:
    """Let the node's key (and no older key of that node) into the results account."""
    key_line(node, public)  # a bad name fails before the file is touched
    edit(path, lambda text: with_key(text, node, public))


def revoke(path: Path, node: str) -> None:
    """Take the node's key out of the results account (nothing to do when it has none)."""
    if path.exists():
        edit(path, lambda text: without_key(text, node))
