"""The web's URL check (UrlPolicy.check_all) and host-name syntax: lookups bounded, refusals without addresses.

Resolvers here are test functions; nothing resolves for real except names the IDNA codec refuses first."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator

import pytest

from workers.inputs.urlpolicy import UrlPolicy, host_problem, resolve
from workers.protocol.errors import FetchFailed, UrlRefused

DNS = {"public.example": ["93.184.216.34"], "intranet.example": ["10.20.30.40"],
       "loop.example": ["127.0.0.1", "::1"], "mixed.example": ["93.184.216.34", "10.9.8.7"]}


class Resolver:
    """DNS above; other names do not resolve (as resolve() says it: FetchFailed)."""

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.delay, self.gate = delay, gate
        self.lock = threading.Lock()

    def __call__(self, host: str, port: int) -> Iterable[str]:
        with self.lock:
            self.calls.append((host, port))
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delay)
        if host in DNS:
            return DNS[host]
        if host.startswith("public-"):
            return ["93.184.216.34"]
        raise FetchFailed(f"cannot resolve {host!r}: Name or service not known")


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """Holds slow lookups until the test ends, then lets their threads finish."""
    event = threading.Event()
    yield event
    event.set()


@pytest.mark.parametrize("host", ["a..b", ".a.example", "a.example..", "x" * 64 + ".example",
                                  ".".join(["abcdefgh"] * 30), "a b.example", "a\tb.example"])
def test_host_problem_refuses_bad_names(host: str) -> None:
    assert host_problem(host) is not None


@pytest.mark.parametrize("host", ["public.example", "public.example.", "under_score.example", "bücher.example",
                                  "127.0.0.1", "::1", "fe80::1%eth0", "x" * 63 + ".example"])
def test_host_problem_accepts_good_names(host: str) -> None:
    assert host_problem(host) is None


@pytest.mark.parametrize("url", ["http://a..b/x.png", "https://.example/x.png", "http://" + "x" * 64 + ".io/"])
def test_check_refuses_an_empty_or_long_label_before_any_lookup(url: str) -> None:
    resolver = Resolver()
    with pytest.raises(UrlRefused, match="not a valid name"):
        UrlPolicy((), resolver=resolver).check(url)
    assert resolver.calls == []


def test_resolve_turns_a_name_the_codec_refuses_into_a_refusal() -> None:
    with pytest.raises(UrlRefused, match="not a valid host name"):
        resolve("a..b", 80)  # the IDNA codec refuses it before any DNS query is sent


@pytest.mark.parametrize("host", ["intranet.example", "loop.example", "mixed.example"])
def test_check_all_refuses_a_private_name_without_its_address(host: str) -> None:
    with pytest.raises(UrlRefused) as caught:
        UrlPolicy((), resolver=Resolver()).check_all([f"http://{host}/x.png"])
    message = str(caught.value)
    assert f"{host} is not an allowed host" in message
    for address in DNS[host]:
        assert address not in message
    assert "10." not in message and "127." not in message


def test_check_all_refuses_a_name_that_does_not_resolve_as_a_refusal_not_a_transient_error() -> None:
    with pytest.raises(UrlRefused, match="cannot resolve no-such-host.invalid"):
        UrlPolicy((), resolver=Resolver()).check_all(["http://public.example/a.png",
                                                      "http://no-such-host.invalid/x.png"])


def test_check_all_accepts_public_and_allowlisted_hosts_and_looks_each_host_up_once() -> None:
    resolver = Resolver()
    urls = [f"http://public.example/{n}.png" for n in range(50)] + ["https://public.example/t.png",
                                                                     "http://intranet.example/ok.png"]
    UrlPolicy(["intranet.example"], resolver=resolver).check_all(urls)
    assert sorted(resolver.calls) == [("public.example", 80), ("public.example", 443)]


def test_check_all_checks_every_form_before_any_lookup() -> None:
    resolver = Resolver()
    with pytest.raises(UrlRefused, match="only http and https"):
        UrlPolicy((), resolver=resolver).check_all(["http://public.example/a.png", "file:///etc/passwd"])
    assert resolver.calls == []


def test_check_all_runs_lookups_at_once() -> None:
    resolver = Resolver(delay=0.3)
    started = time.monotonic()
    UrlPolicy((), resolver=resolver, lookup_threads=8).check_all([f"http://public-{n}.example/" for n in range(8)])
    assert time.monotonic() - started < 1.5  # one after another: 2.4 s
    assert len(resolver.calls) == 8


def test_check_all_answers_within_its_budget_when_lookups_hang(gate: threading.Event) -> None:
    resolver = Resolver(gate=gate)
    policy = UrlPolicy((), resolver=resolver, lookup_budget=0.5, lookup_threads=4)
    started = time.monotonic()
    with pytest.raises(UrlRefused, match=r"looking up public-0\.example took longer than 0\.5 s"):
        policy.check_all([f"http://public-{n}.example/x.png" for n in range(40)])
    assert time.monotonic() - started < 2.0
    assert len(resolver.calls) <= 4  # the pool's size; the rest were cancelled before they started


def test_check_all_answers_at_the_first_bad_host_without_waiting_for_slow_ones(gate: threading.Event) -> None:
    def resolver(host: str, port: int) -> list[str]:
        if host != "intranet.example":
            gate.wait(10)
        return DNS.get(host, ["93.184.216.34"])

    started = time.monotonic()
    with pytest.raises(UrlRefused, match="intranet.example is not an allowed host"):
        UrlPolicy((), resolver=resolver, lookup_budget=5.0).check_all(
            ["http://public-slow.example/a.png", "http://intranet.example/b.png"])
    assert time.monotonic() - started < 2.0


def test_check_keeps_the_address_rule_for_the_worker() -> None:
    with pytest.raises(UrlRefused, match="private or loopback"):
        UrlPolicy((), resolver=Resolver()).check("http://intranet.example/x.png")
    with pytest.raises(FetchFailed):  # at fetch time an unresolvable name may be a DNS outage: retried
        UrlPolicy((), resolver=Resolver()).check("http://no-such-host.invalid/x.png")


@pytest.mark.parametrize(("errno", "permanent"), [(socket.EAI_NONAME, True), (socket.EAI_AGAIN, False),
                                                  (socket.EAI_FAIL, False)])
def test_a_name_that_does_not_exist_is_refused_a_resolver_failure_is_transient(
        monkeypatch: pytest.MonkeyPatch, errno: int, permanent: bool) -> None:
    """NXDOMAIN will not change on a retry (a tile is skipped, a target fails); a resolver that cannot answer may."""
    def failing(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(errno, "resolver says no")

    monkeypatch.setattr(socket, "getaddrinfo", failing)
    with pytest.raises(UrlRefused if permanent else FetchFailed, match="cannot resolve"):
        resolve("some.example", 80)
