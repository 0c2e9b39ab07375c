"""Worker processes that the bench starts, watches and stops by their PIDs (stdlib only)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from common import pause, resume


class WorkerPool:
    """Two (or more) worker processes of one system, their output in log files under ``logs``."""

    def __init__(self, commands: Sequence[Sequence[str]], env: Mapping[str, str], cwd: Path, logs: Path,
                 name: str) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.processes: list[subprocess.Popen[bytes]] = []
        for slot, command in enumerate(commands):
            with open(logs / f"{name}-{slot}.log", "ab") as log:
                self.processes.append(subprocess.Popen(list(command), cwd=cwd, env={**os.environ, **env},
                                                       stdout=log, stderr=subprocess.STDOUT))

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def check_alive(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(f"{self.name} worker {process.pid} exited with {process.returncode} (see its log)")

    def wait_ready(self, ready: Callable[[], bool], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} workers not ready after {timeout:.0f} s")
            time.sleep(0.05)

    def pause(self) -> None:
        pause(self.pids)

    def resume(self) -> float:
        return resume(self.pids)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGCONT (in case they are paused), SIGTERM, then SIGKILL whatever lingers."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
