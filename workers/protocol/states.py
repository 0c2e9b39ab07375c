"""The states a worker writes in its heartbeat (``tessera:worker:<node>:<pid>``, field ``state``)."""

from __future__ import annotations

import enum


class WorkerState(enum.StrEnum):
    STARTING = "starting"
    """Connected, compiling its kernels; not taking jobs yet."""
    IDLE = "idle"
    """Waiting for a job."""
    BUSY = "busy"
    """Running a job (the heartbeat's ``job`` names it)."""

    @classmethod
    def read(cls, raw: str | None) -> WorkerState:
        """The state in a heartbeat; a missing or unknown one reads as STARTING: neither idle nor ready."""
        try:
            return cls(raw or "")
        except ValueError:
            return cls.STARTING


READY = (WorkerState.IDLE, WorkerState.BUSY)
"""States of a worker that takes jobs (it has warmed up and joined the group)."""
