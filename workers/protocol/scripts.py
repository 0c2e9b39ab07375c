"""The Lua scripts of the protocol, read once from ``lua/*.lua`` (each file's header documents its KEYS and ARGV).

A script may start with library files (``start.lua`` defines ``start()``); :func:`script` joins them in order,
so the start logic has one copy, used by both START and TAKE, and the completion note (``note.lua``) one,
used by FINISH and DEAD_LETTER.
"""

from __future__ import annotations

import functools
from pathlib import Path

FOLDER = Path(__file__).with_name("lua")


@functools.cache
def script(*names: str) -> str:
    """The text of ``lua/<name>.lua`` for each name, joined in order (libraries first)."""
    return "\n".join((FOLDER / f"{name}.lua").read_text(encoding="utf-8") for name in names)


FINISH = script("note", "finish")
DEAD_LETTER = script("note", "dead_letter")
UPDATE = script("update")
START = script("start", "start_delivery")
TAKE = script("start", "take")
RECONCILE = script("note", "reconcile")
VANISHED = script("vanished")
