"""The form of a handle on each network, checked before any request (no I/O here, so the web may use it too).

- Bluesky: a domain name (``alice.bsky.social``: labels of letters, digits and inner hyphens, a last label that
  does not start with a digit, 253 characters in all, no reserved top-level domain), or a DID
  (``did:plc:`` and 24 base32 characters, or ``did:web:`` and a domain).
- Mastodon: ``user@instance`` (a leading ``@`` is dropped): a user name of letters, digits and underscores (inner
  dots and hyphens too, as remote accounts have), an instance that is a domain name.
- GitHub: a login of 1-39 letters, digits and single inner hyphens.

Each parse returns the handle in its one form (lower-case domains, no leading ``@``) or raises BadHandle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from workers.inputs.friends.model import LISTS, MAX_FRIENDS, NETWORKS, BadHandle, FriendsRequest

MAX_HANDLE = 253
LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
RESERVED_TLDS = frozenset({"alt", "arpa", "example", "internal", "invalid", "local", "localhost", "onion"})
"""Top-level domains the atproto handle spec disallows (reserved, or never resolvable)."""
DID_PLC = re.compile(r"did:plc:[a-z2-7]{24}")
MASTODON_USER = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9_])?")
GITHUB_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}")


def domain_problem(name: str) -> str | None:
    """Why ``name`` (lower case) is not a public domain name, or None."""
    labels = name.split(".")
    if len(name) > MAX_HANDLE:
        return f"it is over {MAX_HANDLE} characters"
    if len(labels) < 2:
        return "it needs a dot (a domain name such as alice.bsky.social)"
    if not all(LABEL.fullmatch(label) for label in labels):
        return "each part must be 1-63 letters, digits or inner hyphens"
    if labels[-1][0].isdigit():
        return "its last part must not start with a digit"
    if labels[-1] in RESERVED_TLDS:
        return f".{labels[-1]} is a reserved top-level domain"
    return None


def _bluesky(text: str) -> str:
    if text.startswith("did:"):
        if DID_PLC.fullmatch(text):
            return text
        if text.startswith("did:web:") and domain_problem(text[8:].lower()) is None:
            return "did:web:" + text[8:].lower()
        raise BadHandle(f"{text[:80]!r} is not a Bluesky DID (did:plc:<24 characters> or did:web:<domain>)")
    name = text.lower()
    if (problem := domain_problem(name)) is not None:
        raise BadHandle(f"{text[:80]!r} is not a Bluesky handle ({problem})")
    return name


def _mastodon(text: str) -> str:
    user, at, instance = text.partition("@")
    if not at:
        raise BadHandle(f"{text[:80]!r} is not a Mastodon handle: write user@instance, e.g. alice@mastodon.social")
    if not MASTODON_USER.fullmatch(user):
        raise BadHandle(f"{user[:80]!r} is not a Mastodon user name (letters, digits and underscores)")
    instance = instance.lower()
    if (problem := domain_problem(instance)) is not None:
        raise BadHandle(f"{instance[:80]!r} is not a Mastodon instance ({problem})")
    return f"{user}@{instance}"


def _github(text: str) -> str:
    if not GITHUB_LOGIN.fullmatch(text):
        raise BadHandle(f"{text[:80]!r} is not a GitHub login (1-39 letters, digits or single inner hyphens, "
                        "not starting or ending with a hyphen)")
    return text


PARSERS = {"bluesky": _bluesky, "mastodon": _mastodon, "github": _github}


def parse_handle(network: str, text: object) -> str:
    """``text`` as a handle of ``network``, in its one form; BadHandle says what is wrong with it."""
    if network not in PARSERS:
        raise BadHandle(f"network must be one of {', '.join(NETWORKS)}, not {str(network)[:40]!r}")
    if not isinstance(text, str) or not text.strip():
        raise BadHandle(f"a {network} handle is required")
    handle = text.strip()
    if handle.startswith("@"):  # how people write handles in posts
        handle = handle[1:]
    if len(handle) > MAX_HANDLE:
        raise BadHandle(f"{handle[:80]!r}… is not a {network} handle (over {MAX_HANDLE} characters)")
    if any(ch.isspace() or not ch.isprintable() for ch in handle):
        raise BadHandle(f"{handle[:80]!r} is not a {network} handle (it has spaces or control characters)")
    return PARSERS[network](handle)


def parse_request(data: Mapping[str, Any], max_tiles: int = MAX_FRIENDS) -> FriendsRequest:
    """A ``friends`` object of a submission (``{"network", "handle", "lists", "max", "include_self"}``) checked
    into a request; BadHandle (a JobRejected: HTTP 400 at the web) says what is wrong."""
    if not isinstance(data, Mapping):
        raise BadHandle("friends must be an object with network and handle")
    unknown = sorted(set(data) - {"network", "handle", "lists", "max", "include_self"})
    if unknown:
        raise BadHandle(f"friends: unknown field {unknown[0][:40]!r}")
    network = data.get("network")
    handle = parse_handle(str(network) if network is not None else "", data.get("handle"))
    lists = data.get("lists", list(LISTS))
    if isinstance(lists, str):
        lists = ["follows", "followers"] if lists == "both" else [lists]
    if not isinstance(lists, list) or not lists or not all(name in LISTS for name in lists):
        raise BadHandle("friends.lists must name follows, followers or both")
    top = min(MAX_FRIENDS, max_tiles)
    count = data.get("max", min(2000, top))
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= top:
        raise BadHandle(f"friends.max must be a whole number from 1 to {top}")
    include_self = data.get("include_self", False)
    if not isinstance(include_self, bool):
        raise BadHandle("friends.include_self must be true or false")
    ordered = tuple(name for name in LISTS if name in lists)
    return FriendsRequest(str(network), handle, ordered, count, include_self)
