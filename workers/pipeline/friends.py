"""The "gathering friends" stage: a package's friends request becomes tiles (the friends' avatars, then any extra
tile URLs) with a label per tile, before the usual stages.

The package records only what was asked (``package.friends``); the list is gathered here, on the worker, through
its SSRF-safe fetcher and the node's list cache (workers/inputs/friends). The counts go to the job's status after
every page (``friends``, JSON) and into the stage text, so the page shows them live; a rate-limit wait is slept
in short slices that each report, so the heartbeat sees a live build and a cancel is heard.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from config import Settings
from workers.inputs.fetch import Fetcher
from workers.inputs.friends import Api, Friend, FriendsRequest, ListCache, Tally, gather, parse_request
from workers.pipeline import deepzoom as dz
from workers.protocol.package import JobPackage

STAGE = "gathering friends"
FRACTION = 0.005
"""Where the stage sits on the job's progress scale: the list pages are quick next to fetching the pictures."""
LIST_CACHE = "var/friend-lists"
"""The node's friend-list cache, under paths.root (kept friends.list_ttl seconds, owner-only)."""
WAIT_SLICE = 1.0
"""Seconds of a rate-limit wait between two progress reports."""


class Report(Protocol):
    """The build's progress report, with extra status fields (workers/service/progress.py Progress)."""

    def __call__(self, stage: str, fraction: float, **fields: str) -> None: ...


@dataclass(frozen=True)
class Gathered:
    """The package with the friends' pictures as its tiles, a map.json label per tile, and the final counts."""

    package: JobPackage
    labels: list[dz.Label]
    counts: dict[str, Any]


def make_api(settings: Settings, fetcher: Fetcher) -> Api:
    """One per process: it keeps each API host's rate-limit state between jobs."""
    cache = ListCache(Path(settings.paths.root) / LIST_CACHE, settings.friends.list_ttl)
    return Api(fetcher, settings.friends, cache)


def counts(request: FriendsRequest, tally: Tally) -> dict[str, Any]:
    """What the status and the job's details say of a gathering."""
    return {"network": request.network, "handle": request.handle, "lists": list(request.lists),
            "listed": tally.listed, "pictures": tally.kept, "skipped": {k: v for k, v in tally.skipped.items() if v},
            "pages": tally.pages, "rate_limit_waits": tally.waits, "waited_s": round(tally.waited, 1),
            "notes": tally.notes, "cached": tally.cached}


def stage_text(tally: Tally) -> str:
    """E.g. "gathering friends: 340 listed, 300 pictures, 40 skipped (36 default avatar, 4 duplicate avatar)"."""
    skipped = {reason.replace("_", " "): n for reason, n in tally.skipped.items() if n}
    text = f"{STAGE}: {tally.listed} listed, {tally.kept} pictures, {sum(skipped.values())} skipped"
    if skipped:
        text += " (" + ", ".join(f"{n} {reason}" for reason, n in skipped.items()) + ")"
    if tally.waits:
        text += f"; waited {tally.waited:.0f} s for rate limits ({tally.waits}x)"
    return text


def label(friend: Friend) -> dict[str, str]:
    """A friend's map.json label; the viewer shows name and handle and links the profile (http(s) only)."""
    return {"name": friend.name, "handle": friend.handle, "profile_url": friend.profile_url}


def gather_tiles(package: JobPackage, api: Api, max_tiles: int, report: Report) -> Gathered:
    """``package`` with its friends' avatars before its own tiles (BadHandle, NoSuchAccount, NoFriends: the job
    fails with the reason; a rate limit past friends.max_wait is transient)."""
    request = parse_request(package.friends or {}, max(1, max_tiles - len(package.tiles)))
    last = [Tally()]

    def progress(tally: Tally) -> None:
        last[0] = tally
        report(stage_text(tally), FRACTION, friends=json.dumps(counts(request, tally)))

    report(f"{STAGE} of {request.handle} on {request.network}", FRACTION)
    sleep = api.sleep
    api.sleep = _reporting_sleep(lambda: report(stage_text(last[0]) + "; waiting for a rate limit", FRACTION))
    try:
        friends = gather(request, api, progress)
    finally:
        api.sleep = sleep
    tiles = [f.avatar_url for f in friends] + list(package.tiles)
    labels: list[dz.Label] = [label(f) for f in friends]
    labels += dz.tile_labels(package.tiles, package.tile_names)
    return Gathered(dataclasses.replace(package, tiles=tuple(tiles), tile_names=()), labels,
                    counts(request, last[0]))


def _reporting_sleep(beat: Callable[[], None]) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            beat()  # the heartbeat's progress time, and the cancel check (Canceled is raised here)
            time.sleep(min(WAIT_SLICE, left))
    return sleep


def details(build: dict[str, Any], gathered: Gathered) -> dict[str, Any]:
    """The gathering's counts for the job's details, with how many of the friends' pictures the tile stage got
    (the others failed to fetch or decode: ``tiles_skipped`` of the details says why)."""
    extra = len(gathered.package.tiles) - gathered.counts["pictures"]
    return {**gathered.counts, "pictures_fetched": max(0, int(build.get("tiles_used", 0)) - extra)}
