"""Node control over SSH (paramiko), and only SSH: provision, configure, start, drain and stop a worker node.

Host keys are checked against the node's known_hosts file: an unknown or changed key is refused, never
added. Every remote argument is quoted with shlex; stdout and stderr are read while the command runs.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paramiko

from config.scaling import NodeSpec, SshSettings
from workers.protocol.errors import TesseraError

log = logging.getLogger(__name__)
OUTPUT_CAP = 1 << 20
"""Bytes of each remote stream kept (the tail); the rest is read and dropped, so nothing blocks."""
PROJECT = "tessera"


class NodeError(TesseraError):
    """A node could not be reached or a remote command failed; ``reason`` says which."""

    code = "node"


class NodeUnreachable(NodeError):
    """Connection refused or timed out, authentication failed, or the host key is unknown or changed."""

    code = "node_unreachable"


class CommandFailed(NodeError):
    """A remote command exited non-zero or ran past its timeout."""

    code = "command_failed"



@dataclass(frozen=True)
class Output:
    rc: int
    stdout: str
    stderr: str


class Ssh:
    """One SSH connection to a node, verified against its known_hosts file."""

    def __init__(self, spec: NodeSpec, timeouts: SshSettings) -> None:
        self.spec, self.timeouts = spec, timeouts
        self.where = f"{spec.user}@{spec.host}:{spec.port}"
        self.client = paramiko.SSHClient()
        try:
            self.client.load_host_keys(spec.known_hosts)
        except OSError as exc:
            raise NodeUnreachable(f"{self.where}: cannot read known_hosts {spec.known_hosts}: {exc}") from exc
        self.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        t = timeouts.connect_timeout
        try:
            self.client.connect(spec.host, port=spec.port, username=spec.user, key_filename=spec.key_file,
                                timeout=t, banner_timeout=t, auth_timeout=t, allow_agent=False,
                                look_for_keys=False)
        except paramiko.BadHostKeyException as exc:
            raise NodeUnreachable(f"{self.where}: host key mismatch: the server offered "
                                  f"{exc.key.get_name()} {exc.key.get_base64()[:16]}…, not the known_hosts key") \
                from exc
        except paramiko.AuthenticationException as exc:
            raise NodeUnreachable(f"{self.where}: authentication failed: {exc}") from exc
        except paramiko.SSHException as exc:
            text = str(exc)
            if "not found in known_hosts" in text:
                raise NodeUnreachable(f"{self.where}: unknown host key (not in {spec.known_hosts})") from exc
            raise NodeUnreachable(f"{self.where}: ssh failed: {text}") from exc
        except OSError as exc:
            raise NodeUnreachable(f"{self.where}: cannot connect: {exc}") from exc
        transport = self.client.get_transport()
        assert transport is not None
        transport.set_keepalive(max(1, int(timeouts.keepalive)))
        self._sftp: paramiko.SFTPClient | None = None

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        self.client.close()

    def run(self, *argv: str, timeout: float | None = None, check: bool = True) -> Output:
        """Run argv (each argument quoted) and read both streams as they come; raises CommandFailed."""
        command = " ".join(shlex.quote(arg) for arg in argv)
        timeout = self.timeouts.command_timeout if timeout is None else timeout
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise NodeUnreachable(f"{self.where}: connection lost")
        try:
            channel = transport.open_session(timeout=self.timeouts.connect_timeout)
            channel.exec_command(command)
            out, err = bytearray(), bytearray()
            deadline = time.monotonic() + timeout
            while not channel.exit_status_ready() or channel.recv_ready() or channel.recv_stderr_ready():
                got = False
                if channel.recv_ready():
                    out += channel.recv(65536)
                    got = True
                if channel.recv_stderr_ready():
                    err += channel.recv_stderr(65536)
                    got = True
                del out[:-OUTPUT_CAP], err[:-OUTPUT_CAP]
                if time.monotonic() > deadline:
                    channel.close()
                    raise CommandFailed(f"{self.where}: `{command}` still running after {timeout:.0f} s")
                if not got:
                    time.sleep(0.02)
            rc = channel.recv_exit_status()
            channel.close()
        except (paramiko.SSHException, OSError) as exc:
            raise NodeUnreachable(f"{self.where}: `{command}`: connection lost: {exc}") from exc
        result = Output(rc, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and rc != 0:
            tail = (result.stderr.strip() or result.stdout.strip())[-800:]
            raise CommandFailed(f"{self.where}: `{command}` exited {rc}: {tail}")
        return result

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self.client.open_sftp()
        return self._sftp

    def put(self, local: Path, remote: str, mode: int = 0o644) -> None:
        """Upload a file under a temporary name, then rename it into place."""
        self.sftp.put(str(local), remote + ".part")
        self.sftp.chmod(remote + ".part", mode)
        self.sftp.posix_rename(remote + ".part", remote)

    def write(self, remote: str, data: bytes, mode: int = 0o644) -> None:
        with self.sftp.open(remote + ".part", "wb") as out:
            out.chmod(mode)
            out.write(data)
        self.sftp.posix_rename(remote + ".part", remote)

    def read(self, remote: str) -> str:
        try:
            with self.sftp.open(remote, "rb") as src:
                return src.read().decode(errors="replace")
        except OSError:
            return ""

    def size(self, remote: str) -> int:
        try:
            return int(self.sftp.stat(remote).st_size or 0)
        except OSError:
            return -1


def stamp(paths: list[Path]) -> str:
    """A digest of wheels by name and content, to tell whether a node already has them."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


class NodeControl:
    """What the orchestrator does to one node; each call opens its own connection."""

    def __init__(self, spec: NodeSpec, timeouts: SshSettings) -> None:
        self.spec, self.timeouts = spec, timeouts
        self.root = spec.install_path.rstrip("/")
        self.conf = f"{self.root}/supervisord.conf"
        self.venv = spec.venv_path

    @contextmanager
    def session(self) -> Iterator[Ssh]:
        ssh = Ssh(self.spec, self.timeouts)
        try:
            yield ssh
        finally:
            ssh.close()

    def check(self) -> str:
        """Connect and run `true`: raises NodeUnreachable with the reason when it cannot."""
        with self.session() as ssh:
            ssh.run("true", timeout=self.timeouts.connect_timeout)
        return "reachable"

    def provision(self, wheels: Path) -> str:
        """Install the wheels from ``wheels`` into the node's virtualenv unless it already has them."""
        files = sorted(wheels.glob("*.whl"))
        project = [p for p in files if p.name.startswith(f"{PROJECT}-")]
        deps = [p for p in files if p not in project]
        if len(project) != 1:
            raise NodeError(f"{wheels}: expected one {PROJECT}-*.whl, found {len(project)}")
        did = []
        with self.session() as ssh:
            ssh.run("mkdir", "-p", f"{self.root}/wheels", f"{self.root}/config", f"{self.root}/var/log")
            want = stamp(deps)
            if ssh.read(f"{self.venv}/.tessera-deps").strip() != want:
                self._upload(ssh, deps)
                ssh.run(self.spec.python, "-m", "venv", self.venv)
                ssh.run(f"{self.venv}/bin/pip", "install", "-q", "--disable-pip-version-check", "--no-index",
                        "--find-links", f"{self.root}/wheels", *[f"{self.root}/wheels/{p.name}" for p in deps])
                ssh.write(f"{self.venv}/.tessera-deps", want.encode())
                did.append(f"{len(deps)} dependency wheels")
            want = stamp(project)
            if ssh.read(f"{self.venv}/.tessera-project").strip() != want:
                self._upload(ssh, project)
                ssh.run(f"{self.venv}/bin/pip", "install", "-q", "--disable-pip-version-check", "--no-index",
                        "--no-deps", "--force-reinstall", f"{self.root}/wheels/{project[0].name}")
                ssh.write(f"{self.venv}/.tessera-project", want.encode())
                did.append(project[0].name)
        return f"installed {', '.join(did)}" if did else "already provisioned"

    def _upload(self, ssh: Ssh, paths: list[Path]) -> None:
        for path in paths:
            remote = f"{self.root}/wheels/{path.name}"
            if ssh.size(remote) != path.stat().st_size:
                ssh.put(path, remote)

    def configure(self, files: dict[str, tuple[bytes, int]]) -> None:
        """Write files relative to the install path: {relative path: (content, mode)}."""
        with self.session() as ssh:
            ssh.run("mkdir", "-p", f"{self.root}/config", f"{self.root}/var/log")
            for relative, (data, mode) in files.items():
                ssh.write(f"{self.root}/{relative}", data, mode)

    def _ctl(self, ssh: Ssh, *args: str, timeout: float | None = None, check: bool = True) -> Output:
        return ssh.run(f"{self.venv}/bin/supervisorctl", "-c", self.conf, *args, timeout=timeout, check=check)

    def start(self) -> str:
        """Start supervisord (worker group + watchdog), or bring a running one up to date."""
        with self.session() as ssh:
            if self._ctl(ssh, "pid", check=False).rc == 0:
                self._ctl(ssh, "update")
                self._ctl(ssh, "start", "all", check=False)
                return "supervisord was running: updated"
            ssh.run(f"{self.venv}/bin/supervisord", "-c", self.conf)
            return "supervisord started"

    def status(self) -> str:
        with self.session() as ssh:
            return self._ctl(ssh, "status", check=False).stdout

    def drain(self, timeout: float) -> bool:
        """SIGTERM the workers through supervisorctl so each finishes its job; False if not done in time."""
        with self.session() as ssh:
            if self._ctl(ssh, "pid", check=False).rc != 0:
                return True  # supervisord not running: nothing to drain
            try:
                self._ctl(ssh, "stop", "watchdog", "worker:*", timeout=timeout, check=False)
            except CommandFailed as exc:
                log.warning("node %s: drain not finished: %s", self.spec.name, exc.reason)
                return False
            return True

    def stop(self, timeout: float = 60.0) -> None:
        """Shut supervisord down (stopping anything still running) and wait until it has gone."""
        with self.session() as ssh:
            pid = self._ctl(ssh, "pid", check=False)
            if pid.rc != 0 or not pid.stdout.strip().isdigit():
                return
            self._ctl(ssh, "shutdown", timeout=timeout, check=False)
            deadline = time.monotonic() + timeout
            while ssh.run("kill", "-0", pid.stdout.strip(), check=False).rc == 0:
                if time.monotonic() > deadline:
                    raise CommandFailed(f"{ssh.where}: supervisord {pid.stdout.strip()} still running")
                time.sleep(0.5)
