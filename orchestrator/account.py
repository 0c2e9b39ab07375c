"""The web host's results account: SFTP only, inside a chroot that holds nothing but the media folder, no links.

Worker nodes store finished mosaics into the web host's media folder over SFTP. What a node can do there is
what its key can do, so the key is one of the account ``results.user`` (never root): no shell, no command,
no forwarding, no pty (sshd's ``ForceCommand internal-sftp`` and the rest of :func:`dropin`), and a view of
the file system that is the chroot only (``results.chroot``, by default the folder above ``paths.media``),
where symlinks and hardlinks cannot be made (``-P``): a node can neither read a secret of the web host
nor link one into the folder the web serves.

sshd accepts a chroot only when it and every folder above it belong to root and no one else may write them;
the account owns only the media folder inside. :func:`layout` and :func:`dropin` say what is wanted (pure);
:func:`setup`, behind `tessera results-account`, makes it so and can be run again at any time.
"""

from __future__ import annotations

import itertools
import os
import posixpath
import pwd
import stat
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from config import ConfigError, Settings
from config.settings import ResultSettings
from orchestrator.nodekeys import KEYS_MODE
from workers.protocol.files import write_atomic

NOLOGIN = "/usr/sbin/nologin"
NO_PASSWORD = "*"
"""The account's password hash: one that no password matches."""
DENIED_REQUESTS = ("symlink", "hardlink")
"""SFTP requests refused (names as ``/usr/lib/openssh/sftp-server -Q requests`` gives them): no links, so a node
cannot make a name in the media folder for a file it was not given."""
ROOT_MODE = 0o755
"""The chroot and every folder on the way to the media folder: root's, readable, writable by no one else."""
MEDIA_MODE = 0o755
"""The media folder: the account's; the web host's programs (root) read it, serve it and sweep it."""


class AccountError(ConfigError):
    """The results account cannot be made as set: a chroot sshd would refuse, media outside it, root as the user."""

    code = "results_account"


@dataclass(frozen=True)
class Folder:
    path: str
    owner: str
    """``root`` or the account's name."""
    mode: int


@dataclass(frozen=True)
class Layout:
    """Where the account lives: its chroot, the media folder inside, and the path the account sees it at."""

    user: str
    chroot: str
    media: str
    sftp_path: str
    """The media folder inside the chroot (what a node's ``results.path`` must say)."""
    folders: tuple[Folder, ...]
    """The chroot, each folder down to the media folder, then the media folder itself."""


def sftp_path(results: ResultSettings, media: str) -> str:
    """Where the account sees the media folder (``/media`` with the default chroot): a node's ``results.path``."""
    return layout(results, media).sftp_path


def layout(results: ResultSettings, media: str) -> Layout:
    """The chroot tree for ``results.user`` around ``media`` (absolute): ``results.chroot``, or the folder above."""
    user = results.user
    if not user or user == "root":
        raise AccountError(f"results.user: {user or '(empty)'}: the results account must be one of its own, "
                           "not root")
    media = posixpath.normpath(media)
    chroot = posixpath.normpath(results.chroot) if results.chroot else posixpath.dirname(media)
    if not posixpath.isabs(media) or not posixpath.isabs(chroot):
        raise AccountError(f"results.chroot {chroot!r}, paths.media {media!r}: both must be absolute paths")
    inside = posixpath.relpath(media, chroot)
    if chroot == "/" or inside == "." or inside.startswith(".."):
        raise AccountError(f"paths.media {media}: must lie inside results.chroot {chroot}, below it, and the "
                           "chroot cannot be /")
    parts = inside.split("/")
    between = [posixpath.join(chroot, *parts[:depth]) for depth in range(len(parts))]
    folders = (*(Folder(path, "root", ROOT_MODE) for path in between), Folder(media, user, MEDIA_MODE))
    return Layout(user=user, chroot=chroot, media=media, sftp_path="/" + inside, folders=folders)


def dropin(lay: Layout, authorized_keys: str) -> str:
    """The sshd_config drop-in (``Match User``) that holds the account to SFTP in its chroot."""
    return "\n".join([
        "# Tessera's results account: written by `tessera results-account` (orchestrator/account.py); edits",
        "# here are lost when it runs again. Worker nodes store finished mosaics through it, over SFTP only.",
        f"Match User {lay.user}",
        f"    AuthorizedKeysFile {authorized_keys}",  # root's file: the account cannot change its own keys
        f"    ChrootDirectory {lay.chroot}",
        f"    ForceCommand internal-sftp -d {lay.sftp_path} -P {','.join(DENIED_REQUESTS)}",
        "    PasswordAuthentication no",
        "    KbdInteractiveAuthentication no",
        "    AllowTcpForwarding no",
        "    AllowStreamLocalForwarding no",
        "    AllowAgentForwarding no",
        "    X11Forwarding no",
        "    PermitTunnel no",
        "    PermitTTY no",
        "    PermitUserRC no",
        "",  # a Match in an included file ends with the file: sshd_config's lines after the Include hold for all
    ])


def ownership_problems(entries: Iterable[tuple[str, int, int]]) -> list[str]:
    """Of (path, owner uid, mode) for the folders above a chroot: why sshd would refuse each one, if it would."""
    problems = []
    for path, uid, mode in entries:
        if uid != 0:
            problems.append(f"{path}: owned by uid {uid}; sshd wants every folder above a chroot to be root's")
        if mode & 0o022:
            problems.append(f"{path}: group or others may write it ({stat.filemode(mode)}); sshd refuses that "
                            "above a chroot")
    return problems


def strays(lay: Layout, listing: Callable[[str], list[str]]) -> list[str]:
    """What a root-owned folder of the layout holds besides the way to the media folder: the account could read
    it (uploads, Redis's files, logs), so it must not be there."""
    found = []
    for folder, below in itertools.pairwise(lay.folders):
        extra = sorted(set(listing(folder.path)) - {posixpath.basename(below.path)})
        found += [posixpath.join(folder.path, name) for name in extra]
    return found


# -- the part that changes the host: run as root ---------------------------------------------------------------

def setup(settings: Settings, run: Callable[..., object] = subprocess.run) -> list[str]:
    """Make the account, its chroot tree, its keys file and its sshd rules; what was done, line by line."""
    if os.geteuid() != 0:
        raise AccountError("tessera results-account: run as root (it adds a system user and writes sshd's rules)")
    results = settings.results
    lay = layout(results, settings.paths.media)
    _check_above(lay.chroot)
    found = strays(lay, lambda path: os.listdir(path) if os.path.isdir(path) else [])
    if found:
        raise AccountError(f"the chroot {lay.chroot} would show the account more than the media folder: "
                           f"{', '.join(found)}; put paths.media in a folder of its own (e.g. /srv/tessera/media)")
    done = [_ensure_user(lay, run)]
    done += [_ensure_folder(folder) for folder in lay.folders]
    keys = Path(results.authorized_keys)
    if not keys.exists():
        write_atomic(keys, b"", KEYS_MODE)
        done.append(f"{keys}: made (empty; the orchestrator adds a line per node)")
    os.chmod(keys, KEYS_MODE)
    write_atomic(Path(results.sshd_dropin), dropin(lay, results.authorized_keys).encode(), 0o644)
    done.append(f"{results.sshd_dropin}: written; reload sshd to apply it (systemctl reload ssh)")
    done.append(f"nodes store into {lay.sftp_path} (results.path inside the chroot {lay.chroot})")
    return done


def _check_above(chroot: str) -> None:
    """The folders above the chroot (those missing made, root's) as sshd wants them, or why it would refuse."""
    Path(chroot).parent.mkdir(mode=ROOT_MODE, parents=True, exist_ok=True)
    entries = [(str(path), found.st_uid, found.st_mode) for path in reversed(Path(chroot).parents)
               for found in [os.stat(path)]]
    problems = ownership_problems(entries)
    if problems:
        raise AccountError("; ".join(problems))


def _ensure_user(lay: Layout, run: Callable[..., object]) -> str:
    """A system user with no password and no shell, its home the media folder (where sshd starts it).

    Its password is ``*`` (none can match), not useradd's ``!``: sshd without PAM takes ``!`` for a locked
    account and refuses even its keys."""
    try:
        entry = pwd.getpwnam(lay.user)
    except KeyError:
        run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", lay.sftp_path,
             "--shell", NOLOGIN, "--password", NO_PASSWORD, lay.user], check=True, capture_output=True)
        return f"user {lay.user}: added (system, no password, shell {NOLOGIN})"
    if entry.pw_uid == 0:
        raise AccountError(f"results.user {lay.user}: has uid 0; the results account must not be root")
    if entry.pw_shell != NOLOGIN:
        run(["usermod", "--shell", NOLOGIN, lay.user], check=True, capture_output=True)
        return f"user {lay.user}: shell set to {NOLOGIN}"
    return f"user {lay.user}: already there"


def _ensure_folder(folder: Folder) -> str:
    entry = pwd.getpwnam(folder.owner)
    path = Path(folder.path)
    path.mkdir(mode=folder.mode, exist_ok=True)
    if folder.owner != "root":  # results already there become the account's, so a rerun can replace them
        for current, dirs, files in os.walk(path):
            for name in (*dirs, *files):
                os.lchown(os.path.join(current, name), entry.pw_uid, entry.pw_gid)
    os.lchown(path, entry.pw_uid, entry.pw_gid)
    os.chmod(path, folder.mode)
    return f"{path}: {folder.owner}'s, {stat.filemode(folder.mode | stat.S_IFDIR)}"
