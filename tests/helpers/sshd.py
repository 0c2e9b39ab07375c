"""Real OpenSSH servers acting as separate machines: own host keys, own address or port, own folder, key auth only.

In a network namespace (``netns``) a server listens on its own address, port 22; otherwise on a free
loopback port.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil

from tests.helpers.processes import free_port, stop_process, wait_until

SSHD = "/usr/sbin/sshd"
BIND_TRIES = 3
"""Ports tried for a server on a free port: between our probe and sshd's bind another process may take it."""


def keygen(path: Path) -> str:
    """A new ed25519 key pair at ``path``; its public line."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True,
                   capture_output=True, timeout=30)
    return Path(f"{path}.pub").read_text().strip()


@dataclass
class SshServer:
    name: str
    folder: Path
    port: int
    host_key_line: str
    address: str = "127.0.0.1"
    netns: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def known_hosts_line(self) -> str:
        kind, key = self.host_key_line.split()[:2]
        host = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{host} {kind} {key}"

    def start(self) -> None:
        inside = ["ip", "netns", "exec", self.netns] if self.netns else []  # execs sshd: our child is sshd itself
        with open(self.folder / "sshd.log", "ab") as log:  # the child has its own copy of the file
            self.process = subprocess.Popen([*inside, SSHD, "-D", "-e", "-f", str(self.folder / "sshd_config")],
                                            stdout=subprocess.DEVNULL, stderr=log)
        wait_until(self._banner, timeout=15, what=f"sshd {self.name} on port {self.port}")

    def _banner(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"sshd {self.name} exited: {(self.folder / 'sshd.log').read_text()[-2000:]}")
        try:
            with socket.create_connection((self.address, self.port), timeout=1) as sock:
                return sock.recv(64).startswith(b"SSH-2.0")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10)
            self.process = None


def start_sshd(folder: Path, name: str, authorized_keys: Path, address: str = "127.0.0.1",
               netns: str = "", include: Path | None = None, more_keys: tuple[Path, ...] = ()) -> SshServer:
    """``include``: a drop-in read first, as Debian's sshd_config reads sshd_config.d/ (the results account's
    ``Match User`` rules); ``more_keys``: further authorized_keys files for every user."""
    folder.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # Debian's sshd wants its privilege-separation dir
    host_key = folder / "host_key"
    line = keygen(host_key)
    keys = " ".join(str(path) for path in (authorized_keys, *more_keys))
    for attempt in range(BIND_TRIES):
        port = 22 if netns else free_port(address)
        (folder / "sshd_config").write_text(
            (f"Include {include}\n" if include else "") +
            f"Port {port}\nListenAddress {address}\nHostKey {host_key}\nPidFile {folder}/sshd.pid\n"
            f"AuthorizedKeysFile {keys}\nPubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
            "Subsystem sftp internal-sftp\nLogLevel ERROR\nMaxStartups 50\nMaxSessions 50\n")
        server = SshServer(name=name, folder=folder, port=port, host_key_line=line, address=address, netns=netns)
        try:
            server.start()
            return server
        except RuntimeError as exc:  # the free port was taken before sshd bound it: another one
            if netns or "Address already in use" not in str(exc) or attempt == BIND_TRIES - 1:
                raise
    raise AssertionError("not reached")


def kill_tree(pidfile: Path) -> list[int]:
    """SIGKILL the process in ``pidfile`` (a node's supervisord, started through our sshd) and its children."""
    if not pidfile.exists():
        return []
    try:
        root = psutil.Process(int(pidfile.read_text().strip()))
        if "supervisord" not in " ".join(root.cmdline()):
            return []  # a stale pidfile: that pid is not ours
    except (psutil.NoSuchProcess, ValueError):
        return []
    victims = [root, *root.children(recursive=True)]
    for proc in victims:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    psutil.wait_procs(victims, timeout=10)
    return [p.pid for p in victims]


def assert_tools() -> None:
    assert os.path.exists(SSHD), "openssh-server is not installed (make test installs it)"
    assert shutil.which("ssh-keygen"), "ssh-keygen is not installed"
