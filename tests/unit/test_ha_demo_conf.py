"""`make ha-demo`'s supervisord file (config/supervisord-ha.conf), read by supervisor's own parser: every program
is a real `tessera` command line, and the topology is one: the Sentinels every process is told of are the ones it
runs, watching the primary it runs, with the replica following that primary, beside `make demo`'s ports."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

import config
from workers.cli.main import _parser

ROOT = Path(__file__).resolve().parents[2]
HA_CONF = ROOT / "config" / "supervisord-ha.conf"


@pytest.fixture(scope="module")
def programs() -> dict[str, tuple[list[str], dict[str, str]]]:
    """Process name → (argv after the executable, environment), as supervisord would start it."""
    (ROOT / "var" / "ha" / "log").mkdir(parents=True, exist_ok=True)  # as `make ha-demo` does: the parser wants it
    options = ServerOptions()
    options.realize(args=["-c", str(HA_CONF)])
    found = {}
    for group in options.process_group_configs:
        for process in group.process_configs:
            argv = shlex.split(process.command)
            found[process.name] = (argv, dict(process.environment or {}))
    return found


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_every_program_is_a_tessera_command_line(programs: dict[str, tuple[list[str], dict[str, str]]]) -> None:
    for name, (argv, _) in programs.items():
        executable = Path(argv[0]).name
        assert executable in ("tessera", "tessera-web"), name
        if executable == "tessera":
            _parser().parse_args(argv[1:])  # SystemExit on a command or flag the CLI does not have


def test_one_topology_every_process_follows(programs: dict[str, tuple[list[str], dict[str, str]]]) -> None:
    redis_a, redis_b = programs["redis-a"][0], programs["redis-b"][0]
    primary = f"127.0.0.1:{_flag(redis_a, '--port')}"
    assert _flag(redis_b, "--replica-of") == primary and _flag(redis_b, "--port") != _flag(redis_a, "--port")
    sentinels = {name: argv for name, (argv, _) in programs.items() if argv[1:2] == ["sentinel"]}
    assert len(sentinels) == 3  # a quorum of 2 survives losing one
    assert all(_flag(argv, "--primary") == primary for argv in sentinels.values())
    ports = {f"127.0.0.1:{_flag(argv, '--port')}" for argv in sentinels.values()}
    for name, (_, env) in programs.items():
        settings = config.load(None, env={**env, "TESSERA_CONFIG": str(HA_CONF.parent / "defaults.yaml")})
        assert settings.redis.ha and set(settings.redis.sentinels) == ports, name
        assert f"{settings.redis.host}:{settings.redis.port}" == primary, name


def test_it_runs_beside_make_demo(programs: dict[str, tuple[list[str], dict[str, str]]]) -> None:
    """Its own ports: the single-Redis demo's Redis and web app may keep running."""
    single = config.load(None, env={"TESSERA_CONFIG": str(ROOT / "config" / "defaults.yaml")})
    _, env = programs["web"]
    ha = config.load(None, env={**env, "TESSERA_CONFIG": str(ROOT / "config" / "defaults.yaml")})
    assert ha.web.port != single.web.port and ha.redis.port != single.redis.port
    used = {int(_flag(argv, "--port")) for argv, _ in programs.values() if "--port" in argv}
    assert single.redis.port not in used and single.web.port not in used
