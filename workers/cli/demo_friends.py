"""`tessera demo --friends`: a mosaic of alice's friends from the bundled fixture network, offline.

The fixture (workers/inputs/friends/fixture.py) serves Bluesky's real answers on a loopback port, every URL naming
127.0.0.1, which this run alone allowlists; the mosaic is built locally, as `tessera build --friends` does, so no
running service and no network are needed. Its pictures are plain generated squares: it shows the gathering, the
skips and the counts, not anyone's face.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from config import Settings
from workers.cli import build
from workers.cli.demo import demo_images
from workers.inputs.friends.fixture import FixtureNetwork

HANDLE = "bluesky:alice.bsky.social"
FOLLOWS, FOLLOWERS, OVERLAP = 400, 300, 60
"""alice's friends on the fixture: 640 accounts, every 10th with the default picture (left out and counted)."""


def fixture_settings(settings: Settings, network: FixtureNetwork) -> Settings:
    """``settings`` with every network's API at ``network`` and its loopback address allowlisted."""
    apis = {name: dataclasses.replace(getattr(settings.friends, name), api=network.api(name))
            for name in ("bluesky", "mastodon", "github")}
    fetch = dataclasses.replace(settings.fetch, allow_hosts=sorted({*settings.fetch.allow_hosts, network.host}))
    return dataclasses.replace(settings, friends=dataclasses.replace(settings.friends, **apis), fetch=fetch)


def run_demo_friends(settings: Settings, grid: str = "64", tile_px: int = 16) -> int:
    folder = Path(settings.paths.root) / "var"
    folder.mkdir(parents=True, exist_ok=True)
    target, _ = demo_images(count=0)
    (folder / "demo-target.png").write_bytes(target)
    output = folder / "demo-friends.jpg"
    parser = argparse.ArgumentParser(prog="tessera build")
    build.add_arguments(parser)
    args = parser.parse_args([str(folder / "demo-target.png"), "--friends", HANDLE, "--friends-self",
                              "-o", str(output), "--grid", grid, "--tile-px", str(tile_px), "--no-cache"])
    with FixtureNetwork(FOLLOWS, FOLLOWERS, OVERLAP, real_names=False) as network:
        print(f"the friends of {HANDLE} on the bundled fixture network (offline, {network.api('bluesky')})")
        return build.run(args, fixture_settings(settings, network))
