"""The results account's pure parts: the chroot layout, the sshd drop-in, the checks, and the node key lines."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from config.settings import ResultSettings
from orchestrator import account, nodekeys
from orchestrator.account import AccountError, Folder

USER = "tessera-results"


def results(**fields: str) -> ResultSettings:
    return ResultSettings(**{"user": USER, **fields})  # type: ignore[arg-type]


def test_the_default_chroot_is_the_folder_above_media() -> None:
    lay = account.layout(results(), "/srv/tessera/media")
    assert (lay.chroot, lay.media, lay.sftp_path) == ("/srv/tessera", "/srv/tessera/media", "/media")
    assert lay.folders == (Folder("/srv/tessera", "root", 0o755), Folder("/srv/tessera/media", USER, 0o755))


def test_a_deeper_media_folder_has_root_folders_all_the_way_down() -> None:
    lay = account.layout(results(chroot="/srv/jail/"), "/srv/jail/www/media/")
    assert lay.sftp_path == "/www/media"
    assert [(f.path, f.owner) for f in lay.folders] == [
        ("/srv/jail", "root"), ("/srv/jail/www", "root"), ("/srv/jail/www/media", USER)]
    assert account.sftp_path(results(chroot="/srv/jail"), "/srv/jail/www/media") == "/www/media"


@pytest.mark.parametrize("chroot, media, says", [
    ("/srv/jail", "/srv/other/media", "must lie inside results.chroot"),
    ("/srv/jail", "/srv/jail", "must lie inside"),
    ("/srv/jail", "/srv/jail/../media", "must lie inside"),
    ("", "/media", "the chroot cannot be /"),
    ("jail", "/srv/jail/media", "must be absolute"),
])
def test_a_layout_sshd_would_refuse_or_that_leaves_media_outside_is_refused(chroot: str, media: str,
                                                                             says: str) -> None:
    with pytest.raises(AccountError, match=says):
        account.layout(results(chroot=chroot), media)


@pytest.mark.parametrize("user", ["root", ""])
def test_the_account_is_never_root(user: str) -> None:
    with pytest.raises(AccountError, match="not root"):
        account.layout(results(user=user), "/srv/tessera/media")


def test_the_default_user_is_the_dedicated_account() -> None:
    assert ResultSettings().user == USER


def test_the_drop_in_holds_the_account_to_sftp_in_its_chroot_without_links() -> None:
    text = account.dropin(account.layout(results(), "/srv/tessera/media"), "/etc/ssh/tessera-results.keys")
    lines = [line.strip() for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == f"Match User {USER}"
    assert set(lines[1:]) == {
        "AuthorizedKeysFile /etc/ssh/tessera-results.keys", "ChrootDirectory /srv/tessera",
        "ForceCommand internal-sftp -d /media -P symlink,hardlink", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "AllowTcpForwarding no", "AllowStreamLocalForwarding no",
        "AllowAgentForwarding no", "X11Forwarding no", "PermitTunnel no", "PermitTTY no", "PermitUserRC no"}


def test_the_denied_requests_are_names_sftp_server_knows() -> None:
    known = subprocess.run(["/usr/lib/openssh/sftp-server", "-Q", "requests"], capture_output=True, text=True,
                           check=True, timeout=10).stdout.split()
    assert set(account.DENIED_REQUESTS) <= set(known)


def test_the_drop_in_is_one_sshd_accepts(tmp_path: Path) -> None:
    (tmp_path / "tessera-results.conf").write_text(
        account.dropin(account.layout(results(), "/srv/tessera/media"), "/etc/ssh/tessera-results.keys"))
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "hk")], check=True,
                   timeout=30)
    (tmp_path / "sshd_config").write_text(f"Include {tmp_path}/tessera-results.conf\nHostKey {tmp_path}/hk\n"
                                          "Subsystem sftp internal-sftp\n")  # a global line after the Match
    done = subprocess.run(["/usr/sbin/sshd", "-t", "-f", str(tmp_path / "sshd_config")], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_ownership_problems_name_each_folder_sshd_would_refuse() -> None:
    dir_mode = stat.S_IFDIR
    assert account.ownership_problems([("/", 0, dir_mode | 0o755), ("/srv", 0, dir_mode | 0o755)]) == []
    problems = account.ownership_problems([("/tmp", 0, dir_mode | 0o1777), ("/home/ann", 1000, dir_mode | 0o755)])
    assert len(problems) == 2
    assert problems[0].startswith("/tmp: group or others may write it")
    assert problems[1].startswith("/home/ann: owned by uid 1000")


def test_strays_are_what_the_chroot_would_show_besides_media() -> None:
    lay = account.layout(results(chroot="/srv/t"), "/srv/t/www/media")
    listing = {"/srv/t": ["www", "uploads", "redis"], "/srv/t/www": ["media"], "/srv/t/www/media": ["x.jpg"]}
    assert account.strays(lay, lambda path: listing[path]) == ["/srv/t/redis", "/srv/t/uploads"]


KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAA"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBB"
OPERATOR = 'from="10.0.0.1" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOOOO ann@laptop'


def test_a_node_line_is_restricted_and_names_its_node() -> None:
    assert nodekeys.key_line("node-a", KEY_A) == f"restrict {KEY_A} tessera-node:node-a"
    for bad in ("a b", "", "a\nb", "-a"):
        with pytest.raises(ValueError):
            nodekeys.key_line(bad, KEY_A)


def test_with_key_replaces_only_that_nodes_line() -> None:
    text = nodekeys.with_key(OPERATOR + "\n", "a", KEY_A)
    text = nodekeys.with_key(text, "b", KEY_B)
    text = nodekeys.with_key(text, "a", KEY_B)  # a node added again gets a fresh key: the old one goes
    assert text.splitlines() == [OPERATOR, f"restrict {KEY_B} tessera-node:b", f"restrict {KEY_B} tessera-node:a"]
    assert nodekeys.nodes_in(text) == ["b", "a"]


def test_without_key_takes_out_only_that_nodes_line() -> None:
    text = nodekeys.with_key(nodekeys.with_key(OPERATOR, "a", KEY_A), "ab", KEY_B)
    assert nodekeys.without_key(text, "a").splitlines() == [OPERATOR, f"restrict {KEY_B} tessera-node:ab"]
    assert nodekeys.without_key(nodekeys.without_key(text, "a"), "a") == nodekeys.without_key(text, "a")
    assert nodekeys.without_key("", "a") == ""


def test_new_keys_are_fresh_ed25519_pairs() -> None:
    one, two = nodekeys.new_key(), nodekeys.new_key()
    assert one.public.startswith("ssh-ed25519 ") and one.public != two.public
    assert one.private.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")


def test_the_keys_file_is_edited_whole_and_under_a_lock(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(OPERATOR + "\n")
    names = [f"n{i}" for i in range(40)]
    threads = [threading.Thread(target=nodekeys.authorize, args=(keys, name, KEY_A)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(nodekeys.nodes_in(keys.read_text())) == sorted(names)  # no run lost another's line
    assert keys.read_text().splitlines()[0] == OPERATOR
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o644
    nodekeys.revoke(keys, "n3")
    assert "n3" not in nodekeys.nodes_in(keys.read_text()) and len(nodekeys.nodes_in(keys.read_text())) == 39
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "keys.lock"]  # no temporaries left
    nodekeys.revoke(tmp_path / "none", "a")  # no file: nothing to take out, nothing made
    assert not (tmp_path / "none").exists()
