"""Friend lists from social networks (Bluesky, Mastodon, GitHub): whose profile pictures become the tiles.

    request = parse_request({"network": "bluesky", "handle": "alice.bsky.social", "max": 500})
    friends = gather(request, Api(fetcher, settings.friends, ListCache(folder, settings.friends.list_ttl)),
                     progress=lambda tally: ...)

handles.py checks a handle's form (no I/O: the web may use it); gather.py walks the lists through api.py (the
worker's Fetcher, rate limits); one module per network knows its API; cache.py keeps lists for a bounded time.
"""

from workers.inputs.friends.api import Api
from workers.inputs.friends.cache import ListCache
from workers.inputs.friends.gather import NETWORKS, Progress, gather
from workers.inputs.friends.handles import parse_handle, parse_request
from workers.inputs.friends.model import (
    LISTS,
    MAX_FRIENDS,
    BadHandle,
    Friend,
    FriendsRequest,
    NoFriends,
    NoSuchAccount,
    Tally,
)

__all__ = ["LISTS", "MAX_FRIENDS", "NETWORKS", "Api", "BadHandle", "Friend", "FriendsRequest", "ListCache",
           "NoFriends", "NoSuchAccount", "Progress", "Tally", "gather", "parse_handle", "parse_request"]
