"""Exit codes of Tessera's entry points; supervisord's ``exitcodes=`` and the watchdog read them."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import ParamSpec

P = ParamSpec("P")

RET_OK = 0
"""Finished normally (a worker after a warm stop)."""
RET_ERROR = 1
"""The command ran and failed (e.g. the demo job failed)."""
RET_CONFIG = 2
"""Bad or missing configuration: do not respawn, a person must fix it (the watchdog leaves such a worker FATAL)."""
RET_CONNECT = 3
"""Redis unreachable at start: respawn once it answers (the watchdog revives FATAL workers)."""
RET_INTERNAL = 70
"""An unexpected error (a bug): the traceback is in the log (``guarded``)."""


def guarded(entry: Callable[P, int]) -> Callable[P, int]:
    """An entry point whose unexpected exception is logged with its traceback and ends in ``RET_INTERNAL``.

    ``SystemExit`` and ``KeyboardInterrupt`` are not exceptions of this kind and pass through."""

    @functools.wraps(entry)
    def run(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return entry(*args, **kwargs)
        except BrokenPipeError:  # the reader has gone (`tessera status | head`): not an error of ours
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush fails no more
            return RET_OK
        except Exception:
            logging.getLogger(entry.__module__).exception("internal error; exiting %d", RET_INTERNAL)
            return RET_INTERNAL

    return run
