"""The web host's results account against a real sshd configured by `tessera results-account`'s own code.

The account, its chroot tree, its keys file and its sshd drop-in are made by ``account.setup`` (a test user
with a name of its own, removed at the end; the drop-in and keys file in the test's folder, read by a test
sshd that includes the drop-in as Debian's sshd_config includes sshd_config.d/). Each node key is made and
written by orchestrator/nodekeys.py, as the orchestrator does when it adds a node. Then, with a node's key:
the SFTP result store works, and nothing else does: no command, no shell, no forwarding, nothing outside the
chroot, no links; and once the node is removed, its key opens nothing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

import config
from config import Settings
from orchestrator import account, nodekeys
from tests.helpers.sshd import SshServer, assert_tools, start_sshd
from workers.results.stores import SftpResultStore

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent.parent
JOB = "R" * 22
ROOT_FOLDER = "/run"
"""Where the chroot and the keys file go: sshd wants every folder above a chroot root's and writable by no one
else, which rules out /tmp (and pytest's tmp_path below it), and reads the keys file as the account."""


@dataclass
class WebHost:
    settings: Settings
    server: SshServer
    known_hosts: Path
    secret: Path
    folder: Path
    setup_said: list[str]

    @property
    def user(self) -> str:
        return self.settings.results.user

    @property
    def media(self) -> Path:
        return Path(self.settings.paths.media)

    def node_key(self, node: str) -> Path:
        """A key made for ``node`` and let in, as the orchestrator does when it adds the node."""
        key = nodekeys.new_key()
        nodekeys.authorize(Path(self.settings.results.authorized_keys), node, key.public)
        path = self.folder / f"{node}_key"
        path.write_bytes(key.private)
        path.chmod(0o600)
        return path

    def connect(self, key: Path) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect("127.0.0.1", port=self.server.port, username=self.user, key_filename=str(key), timeout=10,
                       banner_timeout=10, auth_timeout=10, allow_agent=False, look_for_keys=False)
        return client


@pytest.fixture(scope="module")
def web_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebHost]:
    assert_tools()
    assert os.geteuid() == 0, "sshd chroots only as root: these tests (and their sshd) must run as root"
    folder = tmp_path_factory.mktemp("results-account")
    base = Path(tempfile.mkdtemp(prefix="tessera-test-", dir=ROOT_FOLDER))
    base.chmod(0o755)  # sshd reads the keys file as the account
    chroot = base / "chroot"
    user = f"tessera-t{secrets.token_hex(4)}"
    settings = config.load(env={
        "TESSERA_PATHS_ROOT": str(folder), "TESSERA_PATHS_MEDIA": str(chroot / "media"),
        "TESSERA_RESULTS_USER": user, "TESSERA_RESULTS_AUTHORIZED_KEYS": str(base / "results.keys"),
        "TESSERA_RESULTS_SSHD_DROPIN": str(folder / "tessera-results.conf")})
    secret = folder / "config" / "local.yaml"  # a secret of the web host, outside the chroot
    secret.parent.mkdir()
    secret.write_text("redis:\n  password: not-for-nodes\n")
    (folder / "no_keys").write_text("")
    server = None
    try:
        account.setup(settings)
        said = account.setup(settings)  # again: changes nothing, breaks nothing
        server = start_sshd(folder / "sshd", "webhost", folder / "no_keys", include=folder / "tessera-results.conf")
        (folder / "known_hosts").write_text(server.known_hosts_line + "\n")
        yield WebHost(settings, server, folder / "known_hosts", secret, folder, said)
    finally:
        if server is not None:
            server.stop()
        # --force: an sshd session of the account may still be ending
        done = subprocess.run(["userdel", "--force", user], capture_output=True, text=True, timeout=60)
        assert done.returncode in (0, 6), done.stderr  # 6: no such user (setup failed before making it)
        shutil.rmtree(base)


def store(host: WebHost, key: Path) -> SftpResultStore:
    """A node's result store, with the settings the orchestrator gives it (results.path inside the chroot)."""
    s = host.settings
    results = config.settings.ResultSettings(
        store="sftp", host="127.0.0.1", port=host.server.port, user=host.user, key_file=str(key),
        known_hosts=str(host.known_hosts), path=account.sftp_path(s.results, s.paths.media), timeout=10)
    return SftpResultStore(results)


def test_a_node_key_stores_results_in_the_media_folder(web_host: WebHost) -> None:
    assert f"user {web_host.user}: already there" in web_host.setup_said
    results = store(web_host, web_host.node_key("store"))
    try:
        assert results.put(JOB, b"jpeg bytes", "jpg") == f"{JOB}.jpg"
        assert results.put(JOB, b"second run", "jpg") == f"{JOB}.jpg"  # renamed over the first
        assert results.put_folder(JOB, {"image.dzi": b"<Image/>", "image_files/0/0_0.jpg": b"t"}) == f"{JOB}.dz"
        assert results.put_folder(JOB, {"image.dzi": b"<Image2/>"}) == f"{JOB}.dz"  # swapped whole
    finally:
        results.close()
    assert (web_host.media / f"{JOB}.jpg").read_bytes() == b"second run"
    assert [p.name for p in (web_host.media / f"{JOB}.dz").iterdir()] == ["image.dzi"]
    assert (web_host.media / f"{JOB}.jpg").stat().st_uid == pwd.getpwnam(web_host.user).pw_uid  # made as the account


def test_the_account_has_no_password_no_shell_and_owns_only_the_media_folder(web_host: WebHost) -> None:
    entry = pwd.getpwnam(web_host.user)
    assert entry.pw_uid != 0 and entry.pw_shell == "/usr/sbin/nologin"
    [shadow] = [line.split(":") for line in Path("/etc/shadow").read_text().splitlines()
                if line.startswith(f"{web_host.user}:")]
    assert shadow[1] == "*"  # no password matches it
    chroot, media = os.stat(web_host.media.parent), os.stat(web_host.media)
    assert (chroot.st_uid, stat.S_IMODE(chroot.st_mode)) == (0, 0o755)
    assert (media.st_uid, stat.S_IMODE(media.st_mode)) == (entry.pw_uid, 0o755)


def test_setup_refuses_a_chroot_that_would_show_more_than_media(web_host: WebHost) -> None:
    stray = web_host.media.parent / "uploads"
    stray.mkdir()
    try:
        with pytest.raises(account.AccountError, match=f"more than the media folder: {stray}"):
            account.setup(web_host.settings)
    finally:
        stray.rmdir()


def test_the_command_prints_the_layout_and_the_drop_in(web_host: WebHost) -> None:
    s = web_host.settings
    env = {"PATH": "/usr/bin:/bin", "TESSERA_REDIS_PASSWORD": "unused", "TESSERA_PATHS_ROOT": s.paths.root,
           "TESSERA_PATHS_MEDIA": s.paths.media, "TESSERA_RESULTS_USER": s.results.user,
           "TESSERA_RESULTS_AUTHORIZED_KEYS": s.results.authorized_keys,
           "TESSERA_RESULTS_SSHD_DROPIN": s.results.sshd_dropin}
    empty = web_host.folder / "empty.yaml"  # not this checkout's config/local.yaml
    empty.write_text("{}\n")
    done = subprocess.run([sys.executable, "-m", "workers", "--config", str(empty), "results-account", "--dry-run"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert f"{s.paths.media}: {s.results.user}'s, mode 755" in done.stdout
    assert account.dropin(account.layout(s.results, s.paths.media), s.results.authorized_keys) in done.stdout


def test_a_node_key_runs_no_command_opens_no_shell_and_forwards_nothing(web_host: WebHost) -> None:
    key = web_host.node_key("shell")
    with _connected(web_host, key) as client:
        stdin, stdout, stderr = client.exec_command("echo ran-$((6*7)); id", timeout=10)
        stdin.channel.shutdown_write()  # the SFTP server sshd runs instead ends at the end of its input
        said = stdout.read() + stderr.read()
        assert b"ran-42" not in said and b"uid=" not in said
    with _connected(web_host, key) as client, pytest.raises(paramiko.SSHException):
        client.invoke_shell()  # a terminal is refused (PermitTTY no, restrict)
    with _connected(web_host, key) as client:  # a shell without a terminal: sshd starts the SFTP server instead
        said = _shell_says(client)
        assert b"ran-42" not in said and b"uid=" not in said
    with _connected(web_host, key) as client, pytest.raises(paramiko.ChannelException):
        transport = client.get_transport()  # no way through the web host to its Redis or web app
        assert transport is not None
        transport.open_channel("direct-tcpip", ("127.0.0.1", web_host.server.port), ("127.0.0.1", 0), timeout=10)


@contextlib.contextmanager
def _connected(web_host: WebHost, key: Path) -> Iterator[paramiko.SSHClient]:
    """A connection of its own per probe: sshd may end a connection whose session it refused, and one probe's
    end must not decide the next one's outcome."""
    client = web_host.connect(key)
    try:
        yield client
    finally:
        client.close()


def _shell_says(client: paramiko.SSHClient) -> bytes:
    """What a terminal-less shell session answers a command with; the SFTP server sshd runs instead may end
    the channel before the command is even sent, which answers nothing either."""
    transport = client.get_transport()
    assert transport is not None
    channel = transport.open_session(timeout=10)
    channel.settimeout(10)
    channel.invoke_shell()
    said = b""
    try:
        channel.sendall(b"echo ran-$((6*7)); id\n")
        channel.shutdown_write()
        while chunk := channel.recv(4096):
            said += chunk
    except OSError:  # closed by the server: nothing ran
        pass
    return said


def test_sftp_sees_the_chroot_only(web_host: WebHost) -> None:
    client = web_host.connect(web_host.node_key("reader"))
    try:
        sftp = client.open_sftp()
        assert sftp.listdir("/") == ["media"]
        for path in (str(web_host.secret), str(ROOT / "config" / "defaults.yaml"), "/etc/passwd",
                     "/../../etc/passwd", web_host.settings.results.authorized_keys):
            with pytest.raises(OSError):
                with sftp.open(path) as found:
                    found.read()
    finally:
        client.close()


def test_sftp_makes_no_links(web_host: WebHost) -> None:
    client = web_host.connect(web_host.node_key("linker"))
    try:
        sftp = client.open_sftp()
        with sftp.open("/media/linked-from.jpg", "wb") as out:
            out.write(b"a result")
        for target in ("/etc/passwd", str(web_host.secret), "/media/linked-from.jpg"):
            with pytest.raises(OSError):
                sftp.symlink(target, f"/media/{JOB}L.jpg")
        with pytest.raises(OSError):  # paramiko has no call for OpenSSH's hardlink extension: the raw request
            sftp._request(paramiko.sftp.CMD_EXTENDED,  # type: ignore[attr-defined]  # private, as posix_rename uses it
                          "hardlink@openssh.com", "/media/linked-from.jpg", f"/media/{JOB}H.jpg")
        sftp.remove("/media/linked-from.jpg")
    finally:
        client.close()
    assert not any(os.path.lexists(web_host.media / f"{JOB}{kind}.jpg") for kind in "LH")


def test_a_removed_node_key_opens_nothing(web_host: WebHost) -> None:
    keys = Path(web_host.settings.results.authorized_keys)
    gone, kept = web_host.node_key("gone"), web_host.node_key("kept")
    web_host.connect(gone).close()  # it worked while the node was there
    nodekeys.revoke(keys, "gone")
    assert "gone" not in nodekeys.nodes_in(keys.read_text()) and "kept" in nodekeys.nodes_in(keys.read_text())
    with pytest.raises(paramiko.AuthenticationException):
        web_host.connect(gone)
    web_host.connect(kept).close()
