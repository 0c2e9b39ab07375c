"""A one-line progress bar for terminals, fed by the pipeline's progress reports."""

from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO


class ProgressBar:
    """Call with (stage, fraction); redraws at most every ``interval`` seconds. Silent when not a terminal."""

    def __init__(self, stream: TextIO = sys.stderr, interval: float = 0.1, enabled: bool | None = None) -> None:
        self.stream = stream
        self.interval = interval
        self.enabled = stream.isatty() if enabled is None else enabled
        self._last = 0.0
        self._drawn = False

    def __call__(self, stage: str, fraction: float, force: bool = False) -> None:
        """Redraw; ``force``: even within ``interval`` of the last (a stage's final counts)."""
        now = time.monotonic()
        if not self.enabled or (now - self._last < self.interval and fraction < 1 and not force):
            return
        self._last = now
        self.stream.write("\r" + render_line(stage, fraction, shutil.get_terminal_size().columns))
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def render_line(stage: str, fraction: float, columns: int) -> str:
    """``[#####·····]  45% stage``, fitted to ``columns``."""
    fraction = min(1.0, max(0.0, fraction))
    width = max(10, min(40, columns // 3))
    filled = int(round(width * fraction))
    line = f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:3.0f}% {stage}"
    return line[: max(1, columns - 1)].ljust(max(1, columns - 1))
