"""A local fixture network: one loopback HTTP server per social network, speaking its real API's answers.

The shapes come from the networks' own documents: Bluesky's lexicons (app.bsky.actor.defs#profileView and
#profileViewDetailed, app.bsky.graph.getFollows/getFollowers, XRPC errors), Mastodon's API docs (the Account
entity, accounts/lookup, following/followers with ``Link`` pagination, ``missing.png``) and GitHub's REST docs
(simple users, ``per_page``/``page`` with ``Link``). Each server also serves the pictures of its network's CDN
(cdn.bsky.app, files.mastodon.social, avatars.githubusercontent.com), small generated PNGs.

The real host names stay in every URL (``http://cdn.bsky.app:<port>/…``): a caller maps them to loopback with
its resolver and allowlists them (tests/helpers/friends.py). For `tessera demo --friends`, whose workers are
other processes with the system's resolver, ``real_names=False`` puts the loopback address in every URL
instead, so allowlisting it is enough. No I/O beyond the sockets it listens on.

Accounts, the same on every network (``alice`` is ``alice.bsky.social``, ``alice@mastodon.social``, ``alice``):

- ``alice`` follows ``follows`` accounts and has ``followers`` followers (``overlap`` of them in both lists);
  every 10th has the default picture, accounts 3 and 4 share one picture URL, account 5's picture is on a
  private address (10.0.0.7);
- ``busy``: like alice, but its first list request is rate-limited once (429 with Retry-After: 1; GitHub: 403
  with ``x-ratelimit-remaining: 0``);
- ``broken``: its lists answer an HTML page; ``ghost``: no such account;
- Mastodon only: ``hidden`` hides its network (empty lists, ``hide_collections``), ``locked`` needs a login
  (401).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from PIL import Image

HOSTS = {"bluesky": ("public.api.bsky.app", "cdn.bsky.app"), "mastodon": ("mastodon.social", "files.mastodon.social"),
         "github": ("api.github.com", "avatars.githubusercontent.com")}
"""Per network: its API host and its picture host, as the real services name them."""
PRIVATE_AVATAR = "http://10.0.0.7/avatar.png"
LISTED = ("alice", "busy", "broken", "hidden", "locked")


def b32(seed: str, size: int) -> str:
    return base64.b32encode(hashlib.sha256(seed.encode()).digest() * 2).decode().lower()[:size]


def picture(seed: str, px: int = 24) -> bytes:
    """A small PNG of one colour from ``seed`` (grey for a default avatar)."""
    digest = hashlib.sha256(seed.encode()).digest()
    colour = (128, 128, 128) if "missing" in seed else (digest[0], digest[1], digest[2])
    out = io.BytesIO()
    Image.new("RGB", (px, px), colour).save(out, "PNG")
    return out.getvalue()


class People:
    """Who follows whom: account numbers per list of an owner; the same numbers on every network."""

    def __init__(self, follows: int, followers: int, overlap: int) -> None:
        self.follows = list(range(1, follows + 1))
        self.followers = list(range(follows - overlap + 1, follows - overlap + followers + 1))

    def of(self, owner: str, name: str) -> list[int]:
        if owner in ("hidden",):
            return []
        return self.follows if name == "follows" else self.followers

    @staticmethod
    def avatar_kind(number: int) -> str:
        if number % 10 == 0:
            return "default"
        if number == 5:
            return "private"
        return "shared" if number in (3, 4) else "own"


class Handler(BaseHTTPRequestHandler):
    """Routes one request to its network's answers (``self.server.site``)."""

    server: FixtureServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.server.log(self.path, self.headers.get("Authorization"))
        status, headers, body = self.server.site.answer(parts.path, query)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


Answer = tuple[int, dict[str, str], bytes]


def as_json(status: int, data: Any, **headers: str) -> Answer:
    return status, {"Content-Type": "application/json; charset=utf-8", **headers}, json.dumps(data).encode()


HTML = (200, {"Content-Type": "text/html; charset=utf-8"}, b"<!doctype html><title>Maintenance</title><p>Back soon")


class Site:
    """One network's API and CDN over ``people``; ``origin(host)`` is how its URLs begin."""

    def __init__(self, people: People, origin: Callable[[str], str]) -> None:
        self.people = people
        self.origin = origin
        self._throttled: set[str] = set()
        self._lock = threading.Lock()

    def throttle_once(self, owner: str) -> bool:
        """True the first time ``busy``'s list is asked for (the answer is then a rate limit)."""
        with self._lock:
            if owner != "busy" or owner in self._throttled:
                return False
            self._throttled.add(owner)
            return True

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        raise NotImplementedError

    def image(self, path: str) -> Answer:
        return 200, {"Content-Type": "image/png", "Cache-Control": "max-age=86400"}, picture(path)


class Bluesky(Site):
    api, cdn = HOSTS["bluesky"]

    def did(self, name: str) -> str:
        return "did:plc:" + b32(name, 24)

    def view(self, name: str, number: int = 0, detailed: bool = False) -> dict[str, Any]:
        handle = f"{name}.bsky.social"
        shown = "Six\u0007\u0000 <b>Sixth</b>" if number == 6 else name.title()  # a control character, markup
        view: dict[str, Any] = {"did": self.did(handle), "handle": handle, "displayName": shown,
                                "associated": {"activitySubscription": {"allowSubscriptions": "followers"}},
                                "labels": [], "createdAt": "2024-02-01T10:00:00.000Z",
                                "indexedAt": "2024-02-01T10:00:00.000Z", "description": f"I am {name}."}
        kind = self.people.avatar_kind(number) if number else "own"
        if kind == "private":
            view["avatar"] = PRIVATE_AVATAR
        elif kind != "default":  # the default picture: no avatar field at all
            owner = "shared" if kind == "shared" else handle
            view["avatar"] = (f"{self.origin(self.cdn)}/img/avatar/plain/{self.did(owner)}/"
                              f"bafkrei{b32(owner + 'cid', 52)}@jpeg")
        if detailed:
            view.update(followersCount=len(self.people.followers), followsCount=len(self.people.follows),
                        postsCount=12, banner=f"{self.origin(self.cdn)}/img/banner/plain/{view['did']}/x@jpeg")
        return view

    def owner(self, actor: str) -> str | None:
        for name in LISTED[:3]:
            if actor in (f"{name}.bsky.social", self.did(f"{name}.bsky.social")):
                return name
        return None

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        if path.startswith("/img/"):
            return self.image(path)
        method = path.removeprefix("/xrpc/")
        lists = {"app.bsky.graph.getFollows": "follows", "app.bsky.graph.getFollowers": "followers"}
        if method != "app.bsky.actor.getProfile" and method not in lists:
            return as_json(501, {"error": "MethodNotImplemented", "message": "Method Not Implemented"})
        if "actor" not in query:
            return as_json(400, {"error": "InvalidRequest", "message": 'Error: Params must have the property "actor"'})
        limit = int(query.get("limit", "50"))
        if not 1 <= limit <= 100:
            return as_json(400, {"error": "InvalidRequest", "message": "Error: limit can not be greater than 100"})
        owner = self.owner(query["actor"])
        if owner is None:
            profile = method == "app.bsky.actor.getProfile"
            message = "Profile not found" if profile else f"Actor not found: {query['actor']}"
            return as_json(400, {"error": "InvalidRequest", "message": message})
        if method == "app.bsky.actor.getProfile":
            return as_json(200, self.view(owner, detailed=True))
        if self.throttle_once(owner):
            reset = str(int(time.time()) + 1)
            return as_json(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, **{
                "Retry-After": "1", "RateLimit-Limit": "3000", "RateLimit-Remaining": "0", "RateLimit-Reset": reset,
                "RateLimit-Policy": "3000;w=300"})
        if owner == "broken":
            return HTML
        numbers = self.people.of(owner, lists[method])
        start = int(query.get("cursor", "0") or 0)
        chunk = numbers[start:start + limit]
        body: dict[str, Any] = {"subject": self.view(owner), lists[method]: [self.view(f"f{n}", n) for n in chunk]}
        if start + limit < len(numbers):
            body["cursor"] = str(start + limit)
        return as_json(200, body, **{"RateLimit-Limit": "3000", "RateLimit-Remaining": "2999",
                                     "RateLimit-Reset": str(int(time.time()) + 300), "RateLimit-Policy": "3000;w=300"})


class Mastodon(Site):
    api, files = HOSTS["mastodon"]
    ids = {name: str(1000 + i) for i, name in enumerate(LISTED)}

    def account(self, name: str, number: int = 0) -> dict[str, Any]:
        remote = number % 7 == 1
        acct = f"{name}@fosstodon.org" if remote else name
        home = "https://fosstodon.org" if remote else f"https://{self.api}"
        kind = self.people.avatar_kind(number) if number else "own"
        owner = "shared" if kind == "shared" else acct
        avatar = {"default": f"{self.origin(self.api)}/avatars/original/missing.png", "private": PRIVATE_AVATAR}.get(
            kind, f"{self.origin(self.files)}/{'cache/' if remote else ''}accounts/avatars/{b32(owner, 9)}/original/"
                  f"{b32(owner + 'file', 16)}.png")
        return {"id": self.ids.get(name, str(200000 + number)), "username": name, "acct": acct,
                "display_name": "" if number % 4 == 2 else name.title(), "locked": name == "locked", "bot": False,
                "discoverable": True, "group": False, "created_at": "2023-01-02T00:00:00.000Z", "note": "<p>hi</p>",
                "url": f"{home}/@{name}", "uri": f"{home}/users/{name}", "avatar": avatar, "avatar_static": avatar,
                "header": f"{self.origin(self.api)}/headers/original/missing.png",
                "header_static": f"{self.origin(self.api)}/headers/original/missing.png",
                "followers_count": len(self.people.followers), "following_count": len(self.people.follows),
                "statuses_count": 3, "last_status_at": "2024-05-01", "hide_collections": name == "hidden",
                "emojis": [], "fields": []}

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        if path.startswith(("/avatars/", "/headers/", "/accounts/", "/cache/")):
            return self.image(path)
        not_found = as_json(404, {"error": "Record not found"})
        if path == "/api/v1/accounts/lookup":
            name = query.get("acct", "").removesuffix(f"@{self.api}")
            return as_json(200, self.account(name)) if name in self.ids else not_found
        parts = path.removeprefix("/api/v1/accounts/").split("/")
        names = {v: k for k, v in self.ids.items()}
        if len(parts) != 2 or parts[0] not in names or parts[1] not in ("following", "followers"):
            return not_found
        owner, name = names[parts[0]], "follows" if parts[1] == "following" else "followers"
        if owner == "locked":
            return as_json(401, {"error": "This API requires an authenticated user"})
        if self.throttle_once(owner):
            return as_json(429, {"error": "Too many requests"}, **{"Retry-After": "1", "X-RateLimit-Limit": "300",
                           "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2030-01-01T00:00:00.000Z"})
        if owner == "broken":
            return HTML
        limit = min(int(query.get("limit", "40")), 80)  # Mastodon clamps a larger limit to 80
        numbers = self.people.of(owner, name)
        start = int(query.get("max_id", "0"))
        chunk = numbers[start:start + limit]
        base = f"{self.origin(self.api)}{path}"
        links = [f'<{base}?{urlencode({"limit": limit, "since_id": start})}>; rel="prev"']
        if len(chunk) == limit:  # as Mastodon does: a full page has a next link, even the last one
            links.insert(0, f'<{base}?{urlencode({"limit": limit, "max_id": start + limit})}>; rel="next"')
        return as_json(200, [self.account(f"f{n}", n) for n in chunk], Link=", ".join(links),
                       **{"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": "299",
                          "X-RateLimit-Reset": "2030-01-01T00:00:00.000Z"})


class GitHub(Site):
    api, avatars = HOSTS["github"]

    def user(self, login: str, number: int = 0, detailed: bool = False) -> dict[str, Any]:
        uid = 1000 + number if number else 583231 + LISTED.index(login)
        kind = self.people.avatar_kind(number) if number else "own"
        avatar = PRIVATE_AVATAR if kind == "private" else (
            f"{self.origin(self.avatars)}/u/{1003 if kind == 'shared' else uid}?v=4")
        api = self.origin(self.api)
        user = {"login": login, "id": uid, "node_id": "MDQ6VXNlcj" + b32(login, 6), "avatar_url": avatar,
                "gravatar_id": "", "url": f"{api}/users/{login}", "html_url": f"https://github.com/{login}",
                "followers_url": f"{api}/users/{login}/followers", "following_url": f"{api}/users/{login}/following"
                "{/other_user}", "type": "User", "user_view_type": "public", "site_admin": False}
        if detailed:
            user.update(name=login.title(), company=None, blog="", location=None, bio=None, public_repos=8,
                        followers=len(self.people.followers), following=len(self.people.follows),
                        created_at="2011-01-25T18:44:36Z")
        return user

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        if path.startswith("/u/"):
            return self.image(path)
        not_found = as_json(404, {"message": "Not Found", "documentation_url":
                                  "https://docs.github.com/rest/users/users#get-a-user", "status": "404"})
        parts = path.removeprefix("/users/").split("/")
        if parts[0] not in LISTED[:3] or len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("followers",
                                                                                               "following")):
            return not_found
        if len(parts) == 1:
            return as_json(200, self.user(parts[0], detailed=True))
        owner, name = parts[0], "follows" if parts[1] == "following" else "followers"
        if self.throttle_once(owner):
            return as_json(403, {"message": "API rate limit exceeded for 127.0.0.1."}, **{
                "x-ratelimit-limit": "60", "x-ratelimit-remaining": "0", "x-ratelimit-used": "60",
                "x-ratelimit-reset": str(int(time.time()) + 1), "x-ratelimit-resource": "core"})
        if owner == "broken":
            return HTML
        per_page, page = min(int(query.get("per_page", "30")), 100), int(query.get("page", "1"))
        numbers = self.people.of(owner, name)
        chunk = numbers[(page - 1) * per_page:page * per_page]
        last = max(1, -(-len(numbers) // per_page))
        url = f"{self.origin(self.api)}{path}?per_page={per_page}&page="
        links = [f'<{url}{page + 1}>; rel="next"', f'<{url}{last}>; rel="last"'] if page < last else []
        links += [f'<{url}{page - 1}>; rel="prev"', f'<{url}1>; rel="first"'] if page > 1 else []
        headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "4999",
                   "x-ratelimit-reset": str(int(time.time()) + 3600)}
        if links:
            headers["Link"] = ", ".join(links)
        return as_json(200, [self.user(f"f{n}", n) for n in chunk], **headers)


class FixtureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, site: Callable[[Callable[[str], str]], Site], host: str, real_names: bool) -> None:
        """``site(origin)`` makes the network's answers; ``origin(name)`` is ``http://name:<this port>``, or
        the server's own address in every URL without ``real_names``."""
        super().__init__((host, 0), Handler)
        self.site = site(lambda name: f"http://{name if real_names else host}:{self.server_address[1]}")
        self.paths: list[str] = []
        self.tokens: list[str | None] = []
        """The Authorization header of each request, in order."""
        self._lock = threading.Lock()

    def log(self, path: str, authorization: str | None) -> None:
        with self._lock:
            self.paths.append(path)
            self.tokens.append(authorization)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that hung up


class FixtureNetwork:
    """The three servers on ``host`` (loopback), each on a free port; ``with`` starts and stops them.

    With ``real_names`` (tests) every URL names the real service and a resolver maps it here; without (a demo
    whose workers run as other processes, with only ``host`` allowlisted) every URL names ``host`` itself."""

    def __init__(self, follows: int = 230, followers: int = 150, overlap: int = 20, host: str = "127.0.0.1",
                 real_names: bool = True) -> None:
        people = People(follows, followers, overlap)
        sites: dict[str, type[Site]] = {"bluesky": Bluesky, "mastodon": Mastodon, "github": GitHub}
        self.people, self.host, self.real_names = people, host, real_names
        self.servers = {name: FixtureServer(partial(cls, people), host, real_names) for name, cls in sites.items()}

    @property
    def ports(self) -> dict[str, int]:
        return {name: server.server_address[1] for name, server in self.servers.items()}

    def hosts(self) -> dict[str, str]:
        """Every host name in the fixture's URLs and the loopback address it is served on (to allowlist)."""
        if not self.real_names:
            return {self.host: self.host}
        return {name: self.host for network in self.servers for name in HOSTS[network]}

    def api(self, network: str) -> str:
        """The value of ``friends.<network>.api`` that reaches this fixture (Mastodon's names ``{instance}``)."""
        host = self.host if not self.real_names else "{instance}" if network == "mastodon" else HOSTS[network][0]
        return f"http://{host}:{self.ports[network]}"

    def requests(self, network: str) -> list[str]:
        return list(self.servers[network].paths)

    def __enter__(self) -> FixtureNetwork:
        for server in self.servers.values():
            threading.Thread(target=server.serve_forever, daemon=True, name="friends-fixture").start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()
