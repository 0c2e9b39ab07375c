"""`tessera build --friends NETWORK:HANDLE`: the friends' profile pictures as tiles of a local build.

The same stage as a worker's (workers/pipeline/friends.py), with this machine's settings: friends.* for the APIs,
fetch.* for the URL policy, and the list cache under paths.root.
"""

from __future__ import annotations

import argparse

from config import Settings
from workers.cli.progressbar import ProgressBar
from workers.inputs.fetch import Fetcher
from workers.inputs.friends import FriendsRequest, parse_request
from workers.pipeline import friends
from workers.protocol.package import JobPackage


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--friends", metavar="NETWORK:HANDLE", default=None,
                        help="tiles from the profile pictures of an account's friends, e.g. bluesky:alice.bsky.social, "
                             "mastodon:alice@example.social, github:alice")
    parser.add_argument("--friends-lists", choices=("follows", "followers", "both"), default="both",
                        help="whose pictures: the accounts it follows, its followers, or both (default)")
    parser.add_argument("--friends-max", type=int, default=None, help="at most this many friends (default 2000)")
    parser.add_argument("--friends-self", action="store_true", help="add the account's own picture")


def request(args: argparse.Namespace) -> FriendsRequest | None:
    """The --friends request, checked as the web checks it (BadHandle says what is wrong)."""
    if not args.friends:
        return None
    network, _, handle = str(args.friends).partition(":")
    data: dict[str, object] = {"network": network, "handle": handle, "lists": args.friends_lists,
                               "include_self": bool(args.friends_self)}
    if args.friends_max is not None:
        data["max"] = args.friends_max
    return parse_request(data)


def gather(package: JobPackage, settings: Settings, bar: ProgressBar) -> friends.Gathered:
    """The package with its friends' pictures as tiles, the bar showing the counts as pages come."""
    last = [""]

    def report(stage: str, fraction: float, **fields: str) -> None:
        last[0] = stage
        bar(stage, fraction)

    api = friends.make_api(settings, Fetcher(settings.fetch))
    gathered = friends.gather_tiles(package, api, settings.limits.max_tiles, report)
    bar(last[0], friends.FRACTION, force=True)  # the final counts, however quick the pages were
    return gathered


def summary(gathered: friends.Gathered) -> str:
    counts = gathered.counts
    skipped = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in counts["skipped"].items())
    line = (f"friends: {counts['pictures']} pictures of {counts['listed']} accounts listed "
            f"({counts['handle']} on {counts['network']}, {' and '.join(counts['lists'])})")
    if skipped:
        line += f"; skipped: {skipped}"
    if counts["notes"]:
        line += "; " + "; ".join(counts["notes"])
    return line
