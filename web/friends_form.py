"""A submission's ``friends`` request, from JSON or the form, checked at once (the handle's form per network, no
request to any network: the worker gathers the list as a stage of the job).

JSON: ``"friends": {"network", "handle", "lists", "max", "include_self"}``. The form: ``friends_network``,
``friends_handle`` (empty: no friends), ``friends_lists`` (``follows``, ``followers`` or ``both``),
``friends_max`` and ``friends_include_self`` (a checkbox: present means yes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workers.inputs.friends.handles import parse_request
from workers.inputs.friends.model import BadHandle, FriendsRequest

FORM_FIELDS = ("friends_network", "friends_handle", "friends_lists", "friends_max", "friends_include_self")
"""The form's fields (the OpenAPI document's form schema names the same)."""


def from_json(value: Any, max_tiles: int, other_tiles: int) -> FriendsRequest | None:
    """The JSON body's ``friends`` (None when absent); BadHandle (400) says what is wrong with it."""
    if value is None:
        return None
    return parse_request(value, _room(max_tiles, other_tiles))


def from_form(forms: Mapping[str, str], max_tiles: int, other_tiles: int) -> FriendsRequest | None:
    """The form's friends fields (None without a handle)."""
    handle = (forms.get("friends_handle") or "").strip()
    if not handle:
        return None
    data: dict[str, Any] = {"network": forms.get("friends_network") or "", "handle": handle,
                            "lists": forms.get("friends_lists") or "both",
                            "include_self": bool(forms.get("friends_include_self"))}
    count = (forms.get("friends_max") or "").strip()
    if count:
        if not count.isdigit():
            raise BadHandle(f"friends.max must be a whole number, not {count[:20]!r}")
        data["max"] = int(count)
    return parse_request(data, _room(max_tiles, other_tiles))


def _room(max_tiles: int, other_tiles: int) -> int:
    """How many friends fit beside the job's other tiles under limits.max_tiles."""
    if other_tiles >= max_tiles:
        raise BadHandle(f"{other_tiles} other tiles leave no room for friends under the limit of {max_tiles}")
    return max_tiles - other_tiles
