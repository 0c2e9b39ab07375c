"""The exception tree, the exit codes and the entry points' last-resort handler."""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest

import config
import web.app
from workers.cli import main as cli
from workers.protocol import errors, exitcodes, logs
from workers.protocol.errors import TesseraError

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "kernels", "workers", "web", "orchestrator")


def _modules_defining_classes() -> list[str]:
    """Every module of ours with a class statement (``__main__`` modules run a command when imported)."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__main__":
                continue
            tree = ast.parse(path.read_text(), str(path))
            if any(isinstance(node, ast.ClassDef) for node in ast.walk(tree)):
                found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def _our_exceptions() -> dict[str, type[BaseException]]:
    classes: dict[str, type[BaseException]] = {}
    for name in _modules_defining_classes():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException):
                classes[f"{name}.{cls.__qualname__}"] = cls
    return classes


EXCEPTIONS = _our_exceptions()


def test_the_walk_finds_the_tree() -> None:
    names = {cls.__name__ for cls in EXCEPTIONS.values()}
    assert {"TesseraError", "ConfigError", "LocalConfigError", "JobRejected", "StoreUnavailable",
            "NodeError", "NodeUnreachable", "CommandFailed"} <= names


@pytest.mark.parametrize("name", sorted(EXCEPTIONS))
def test_every_exception_is_a_tessera_error(name: str) -> None:
    assert issubclass(EXCEPTIONS[name], TesseraError), f"{name} is outside the TesseraError tree"


@pytest.mark.parametrize("name", sorted(EXCEPTIONS))
def test_every_exception_has_its_own_code_and_is_drawn(name: str) -> None:
    cls = EXCEPTIONS[name]
    assert "code" in vars(cls), f"{name} has no code of its own"
    assert errors.__doc__ is not None and f" {cls.__name__} " in errors.__doc__, f"{name} missing from the tree"


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in EXCEPTIONS.values() if issubclass(cls, TesseraError)]
    assert len(codes) == len(set(codes)), sorted(codes)


def test_transient_and_permanent_are_apart() -> None:
    assert issubclass(errors.StoreUnavailable, errors.TransientError)
    assert issubclass(config.ConfigError, TesseraError) and not issubclass(config.ConfigError, errors.JobRejected)
    assert not set(errors.JobRejected.__subclasses__()) & set(errors.TransientError.__subclasses__())


def test_exit_codes_are_distinct() -> None:
    codes = {name: value for name, value in vars(exitcodes).items() if name.startswith("RET_")}
    assert set(codes) == {"RET_OK", "RET_ERROR", "RET_CONFIG", "RET_CONNECT", "RET_INTERNAL"}
    assert len(set(codes.values())) == len(codes)


def test_guarded_turns_a_bug_into_ret_internal_with_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    @exitcodes.guarded
    def entry(fail: bool) -> int:
        if fail:
            raise RuntimeError("boom")
        return exitcodes.RET_OK

    assert entry(False) == exitcodes.RET_OK
    with caplog.at_level(logging.ERROR):
        assert entry(True) == exitcodes.RET_INTERNAL
    assert "Traceback" in caplog.text and "RuntimeError: boom" in caplog.text


PRINTS_A_LOT = """
from workers.protocol.exitcodes import guarded

@guarded
def entry() -> int:
    for n in range(200_000):
        print(f"line {n}")
    return 0

raise SystemExit(entry())
"""


def test_a_reader_that_goes_away_is_no_internal_error() -> None:
    """`tessera status | head`: the pipe closes under the command, which ends quietly with RET_OK."""
    process = subprocess.Popen([sys.executable, "-c", PRINTS_A_LOT], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2])
    assert process.stdout is not None and process.stdout.readline() == b"line 0\n"
    process.stdout.close()  # as `head -1` does once it has its line
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == exitcodes.RET_OK, stderr
    assert b"internal error" not in stderr and b"BrokenPipe" not in stderr and b"Exception ignored" not in stderr


def test_guarded_lets_system_exit_through() -> None:
    @exitcodes.guarded
    def entry() -> int:
        raise SystemExit(2)  # argparse's way to refuse arguments

    with pytest.raises(SystemExit):
        entry()


def _boom(*args: object, **kwargs: object) -> int:
    raise RuntimeError("boom in a command")


def test_tessera_returns_ret_internal_on_a_bug(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(cli, "_init", _boom)
    with caplog.at_level(logging.ERROR):
        assert cli.main(["init", "--path", str(tmp_path / "local.yaml")]) == exitcodes.RET_INTERNAL
    assert "Traceback" in caplog.text and "RuntimeError: boom in a command" in caplog.text


def test_tessera_returns_ret_config_on_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "local.yaml"
    bad.write_text("redis: [unclosed\n")
    assert cli.main(["--config", str(bad), "status"]) == exitcodes.RET_CONFIG
    assert "not valid YAML" in capsys.readouterr().err


def test_tessera_web_returns_ret_config_on_a_bad_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(logs, "setup", lambda *args, **kwargs: None)  # keep pytest's log handlers
    bad = tmp_path / "local.yaml"
    bad.write_text("web: {port: nope}\n")
    assert web.app.main(["--config", str(bad)]) == exitcodes.RET_CONFIG
    assert "web.port" in capsys.readouterr().err


def test_tessera_web_returns_ret_internal_on_a_bug(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(logs, "setup", lambda *args, **kwargs: None)
    monkeypatch.setattr(config, "load", _boom)
    with caplog.at_level(logging.ERROR):
        assert web.app.main(["--config", str(tmp_path / "local.yaml")]) == exitcodes.RET_INTERNAL
    assert "Traceback" in caplog.text and "RuntimeError: boom in a command" in caplog.text


def test_watchdog_leaves_a_worker_fatal_on_a_config_error(caplog: pytest.LogCaptureFixture) -> None:
    from workers.service.watchdog import Watchdog

    dog = Watchdog.__new__(Watchdog)  # only the revive bookkeeping: no Redis, no supervisord
    dog.to_revive, dog.left_fatal = {"worker:worker-0", "worker:worker-1"}, set()
    workers = [{"group": "worker", "name": "worker-0", "statename": "FATAL", "exitstatus": exitcodes.RET_CONFIG},
               {"group": "worker", "name": "worker-1", "statename": "FATAL", "exitstatus": exitcodes.RET_CONNECT}]
    with caplog.at_level(logging.ERROR):
        dog._leave_config_errors(workers)
        dog._leave_config_errors(workers)
    assert dog.to_revive == {"worker:worker-1"}
    assert caplog.text.count("config error") == 1  # said once, not on every event


def test_worker_state_reads_what_a_heartbeat_holds() -> None:
    from workers.protocol.states import READY, WorkerState

    assert [WorkerState.read(raw) for raw in ("idle", "busy", "starting")] == list(
        (WorkerState.IDLE, WorkerState.BUSY, WorkerState.STARTING))
    assert WorkerState.read(None) is WorkerState.read("gone") is WorkerState.STARTING
    assert WorkerState.STARTING not in READY and cast(str, WorkerState.IDLE) == "idle"  # a StrEnum is a str
