"""`tessera build --friends` and `tessera demo --friends` as real processes against the local fixture network."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.friends import fixture_config
from tests.helpers.images import encode, make_target, make_tiles
from tests.helpers.settings import base_env
from workers.inputs.friends.fixture import FixtureNetwork

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def network() -> Iterator[FixtureNetwork]:
    with FixtureNetwork(follows=120, followers=60, overlap=20, real_names=False) as fixture:
        yield fixture


def tessera(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run `tessera`, its stderr on a terminal (the progress bar draws only there): (code, stdout, terminal)."""
    controller, terminal = pty.openpty()
    shown: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the child closed the terminal
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        done = subprocess.run([sys.executable, "-m", "workers", *args], env={**os.environ, **env}, cwd=cwd,
                              stdout=subprocess.PIPE, stderr=terminal, timeout=300, check=False)
    finally:
        os.close(terminal)
    reader.join(timeout=10)
    os.close(controller)
    return done.returncode, done.stdout.decode(), b"".join(shown).decode(errors="replace")


def build_env(network: FixtureNetwork, tmp_path: Path) -> dict[str, str]:
    return {**base_env(tmp_path), "TESSERA_CONFIG": str(fixture_config(network, tmp_path / "friends.yaml"))}


def test_build_with_friends_writes_the_mosaic_and_shows_the_gathering(network: FixtureNetwork,
                                                                       tmp_path: Path) -> None:
    (tmp_path / "target.png").write_bytes(encode(make_target()))
    code, out, terminal = tessera(["build", "target.png", "--friends", "bluesky:alice.bsky.social", "-o", "out.jpg",
                                   "--grid", "16"], build_env(network, tmp_path), tmp_path)
    assert code == 0, terminal
    with Image.open(tmp_path / "out.jpg") as image:
        assert image.width == 16 * 32
    # 160 accounts listed: 16 default avatars, one shared picture, one on a private address
    assert "friends: 142 pictures of 160 accounts listed (alice.bsky.social on bluesky, follows and followers); " \
           "skipped: 16 default avatar, 1 duplicate avatar, 1 refused url" in out
    assert "gathering friends: " in terminal and "% " in terminal  # the bar, with the live counts
    assert any(f.suffix == ".json" for f in (tmp_path / "var" / "friend-lists").iterdir())  # the node's list cache


def test_build_with_friends_and_tiles_uses_both(network: FixtureNetwork, tmp_path: Path) -> None:
    (tmp_path / "target.png").write_bytes(encode(make_target()))
    (tmp_path / "mine").mkdir()
    for number, tile in enumerate(make_tiles(3)):
        (tmp_path / "mine" / f"t{number}.png").write_bytes(encode(tile))
    code, out, terminal = tessera(["build", "target.png", "--friends", "github:alice", "--friends-lists", "follows",
                                   "--tiles", "mine", "-o", "out.jpg", "--grid", "12"],
                                  build_env(network, tmp_path), tmp_path)
    assert code == 0, terminal
    assert "friends: 118 pictures of 120 accounts listed (alice on github, follows)" in out  # GitHub: no defaults
    assert " 121 tiles, " in out  # 118 friends and 3 files


@pytest.mark.parametrize(("friends", "why"), [
    ("github:ghost", "no such account on GitHub: ghost"),
    ("mastodon:alice", "is not a Mastodon handle: write user@instance"),
    ("gitlab:alice", "network must be one of bluesky, mastodon, github"),
])
def test_build_with_bad_friends_fails_with_the_reason(network: FixtureNetwork, tmp_path: Path, friends: str,
                                                      why: str) -> None:
    (tmp_path / "target.png").write_bytes(encode(make_target()))
    code, out, terminal = tessera(["build", "target.png", "--friends", friends, "-o", "out.jpg"],
                                  build_env(network, tmp_path), tmp_path)
    assert code == 1 and why in terminal, (out, terminal)
    assert not (tmp_path / "out.jpg").exists()


def test_build_needs_tiles_or_friends(tmp_path: Path) -> None:
    (tmp_path / "target.png").write_bytes(encode(make_target()))
    code, _, terminal = tessera(["build", "target.png", "-o", "out.jpg"], base_env(tmp_path), tmp_path)
    assert code == 1 and "give the tiles: --tiles FOLDER_OR_URL_FILE, or --friends NETWORK:HANDLE" in terminal


def test_demo_friends_builds_from_the_bundled_fixture_offline(tmp_path: Path) -> None:
    pytest.importorskip("skimage", reason="the demo extra (scikit-image) is not installed")
    code, out, terminal = tessera(["demo", "--friends", "--grid", "24"], base_env(tmp_path), tmp_path)
    assert code == 0, terminal
    assert "the friends of bluesky:alice.bsky.social on the bundled fixture network (offline" in out
    assert "friends: 575 pictures of 641 accounts listed" in out
    assert (tmp_path / "var" / "demo-friends.jpg").stat().st_size > 0
