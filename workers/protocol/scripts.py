"""The Lua of the protocol, as one Redis functions library that the keeper loads as admin (``lua/*.lua``; each
file's header documents its KEYS and ARGV).

No role may EVAL: a worker node, which holds only the worker password, can run our functions and nothing of
its own (FCALL; Redis still checks each command inside a function against the caller's ACL, so a function
grants nothing the role could not do by hand). The library's name and its functions' names carry a hash of
the code, so nodes of two releases never call each other's code: a node whose release's library is not loaded
yet waits, as in an outage (:class:`FunctionsMissing`), until its keeper loads it.

A function may start with library files (``start.lua`` defines ``start()``); :func:`script` joins them in
order, so the start logic has one copy, used by both START and TAKE, and the completion note (``note.lua``)
one, used by FINISH, DEAD_LETTER and RECONCILE.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from workers.protocol.errors import TesseraError

FOLDER = Path(__file__).with_name("lua")

FUNCTIONS = {
    "finish": ("note", "finish"),
    "dead_letter": ("note", "dead_letter"),
    "update": ("note", "update"),
    "start": ("note", "start", "start_delivery"),
    "take": ("note", "start", "take"),
    "refresh": ("refresh",),
    "reconcile": ("note", "reconcile"),
    "vanished": ("vanished",),
    "admit": ("admit",),
    "trim": ("trim",),
    "webhook_take": ("webhook_take",),
    "webhook_note": ("webhook_note",),
    "cancel": ("note", "cancel"),
}
"""Each function of the library: the lua files its body is made of, libraries first."""


@functools.cache
def script(*names: str) -> str:
    """The text of ``lua/<name>.lua`` for each name, joined in order (libraries first)."""
    return "\n".join((FOLDER / f"{name}.lua").read_text(encoding="utf-8") for name in names)


VERSION = hashlib.sha256("\0".join(f"{name}={script(*parts)}" for name, parts in FUNCTIONS.items())
                         .encode()).hexdigest()[:12]
LIBRARY = f"tessera_{VERSION}"


def name(function: str) -> str:
    """What FCALL calls ``function`` of this release by."""
    return f"tessera_{function}_{VERSION}"


def library_code() -> str:
    """The FUNCTION LOAD text: each script as the body of a function that takes KEYS and ARGV as EVAL gave them."""
    bodies = (f"redis.register_function('{name(function)}', function(KEYS, ARGV)\n{script(*parts)}\nend)"
              for function, parts in FUNCTIONS.items())
    return f"#!lua name={LIBRARY}\n" + "\n".join(bodies) + "\n"


FINISH, DEAD_LETTER, UPDATE = name("finish"), name("dead_letter"), name("update")
START, TAKE, REFRESH = name("start"), name("take"), name("refresh")
RECONCILE, VANISHED, ADMIT, TRIM = name("reconcile"), name("vanished"), name("admit"), name("trim")
CANCEL = name("cancel")
WEBHOOK_TAKE, WEBHOOK_NOTE = name("webhook_take"), name("webhook_note")


class FunctionsMissing(TesseraError, redis.exceptions.ConnectionError):
    """Redis answers but this release's library is not loaded (a fresh Redis, before its keeper has loaded it):
    a ConnectionError too, so every caller waits it out as it waits out an outage (``REDIS_DOWN``)."""

    code = "functions_missing"


@contextlib.contextmanager
def loaded() -> Iterator[None]:
    """Around an FCALL (or a pipeline holding one): a missing function becomes :class:`FunctionsMissing`."""
    try:
        yield
    except redis.ResponseError as exc:
        if "function not found" in str(exc).lower():
            raise FunctionsMissing(f"the Redis functions {LIBRARY} are not loaded yet") from exc
        raise


def call(r: redis.Redis, function: str, numkeys: int, *keys_and_args: Any) -> Any:
    """FCALL ``function`` (a name of this module), a missing library raised as :class:`FunctionsMissing`."""
    with loaded():
        return r.fcall(function, numkeys, *keys_and_args)


def is_loaded(r: redis.Redis) -> bool:
    return bool(r.function_list(library=LIBRARY))


def load(r: redis.Redis) -> bool:
    """Load this release's library unless it is there (as admin: loading code is an admin's power, since a
    function runs with its caller's rights); True when this call loaded it. Older releases' libraries stay for
    the nodes not yet upgraded."""
    if is_loaded(r):
        return False
    try:
        r.function_load(library_code())
    except redis.ResponseError as exc:
        if "already exists" not in str(exc):
            raise
        return False
    return True
