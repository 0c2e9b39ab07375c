"""The test network: each node in a network namespace with an address of its own, or loopback ports.

With namespaces (root and a working `ip netns add`; TESSERA_TEST_NETNS=0 forces the fallback), one bridge
on the host holds the web host's address 10.231.<k>.1/24 (Redis, the web app, its SFTP and the tile servers
listen there), and node i lives in namespace ``tessera-<pid>-<name>`` with 10.231.<k>.<i+2>/24 on a veth pair
whose host end is on that bridge. Everything a node runs over SSH is a child of its sshd, so it stays in
that namespace and reaches the host only through its link: cutting the link takes the node off the network.
Without namespaces every address is 127.0.0.1 and nodes differ by port and folder.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field

import psutil

LOCK = "/tmp/tessera-test-netns.lock"
"""Held while a subnet is chosen and made, so parallel test runs never pick the same one."""
SUBNETS = range(20, 250)
"""Third octets tried for 10.231.<k>.0/24."""


@dataclass
class Network:
    """Where the web host and each node listen, and how to run something inside a node's namespace."""

    host: str = "127.0.0.1"
    """The web host's address as the nodes reach it."""
    addresses: dict[str, str] = field(default_factory=dict)
    namespaces: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    """node → the host end of its veth pair."""
    bridge: str = ""
    why_not: str = ""
    """Why namespaces are not used ("" when they are)."""

    @property
    def namespaced(self) -> bool:
        return bool(self.namespaces)

    def address(self, name: str) -> str:
        return self.addresses.get(name, "127.0.0.1")

    def netns(self, name: str) -> str:
        return self.namespaces.get(name, "")

    def cut(self, name: str) -> None:
        """The node's cable pulled: the host end of its link goes down (its processes keep running)."""
        _ip("link", "set", self.links[name], "down")

    def mend(self, name: str) -> None:
        if name in self.links:
            _ip("link", "set", self.links[name], "up")

    def pids(self, name: str) -> list[int]:
        if name not in self.namespaces:
            return []
        listed = _ip("netns", "pids", self.namespaces[name], check=False).stdout.split()
        return [int(pid) for pid in listed if pid.isdigit()]

    def kill(self, name: str) -> list[int]:
        """SIGKILL every process in the node's namespace (all started by this test run, through its sshd)."""
        victims = []
        for pid in self.pids(name):
            try:
                proc = psutil.Process(pid)
                os.kill(pid, signal.SIGKILL)
                victims.append(proc)
            except (ProcessLookupError, psutil.NoSuchProcess):
                pass
        psutil.wait_procs(victims, timeout=10)
        return [p.pid for p in victims]

    def close(self) -> None:
        for name in list(self.namespaces):
            self.kill(name)
            _ip("netns", "del", self.namespaces.pop(name), check=False)
        for link in self.links.values():
            _ip("link", "del", link, check=False)  # gone with its peer already, normally
        self.links.clear()
        if self.bridge:
            _ip("link", "del", self.bridge, check=False)
            self.bridge = ""


def make_network(names: Iterable[str], env: dict[str, str] | None = None) -> Network:
    """Namespaces for ``names`` when they can be made, else the loopback layout (printing why)."""
    env = dict(os.environ) if env is None else env
    if env.get("TESSERA_TEST_NETNS", "1") == "0":
        return _loopback("TESSERA_TEST_NETNS=0")
    if os.geteuid() != 0:
        return _loopback("not root")
    net = Network()
    try:
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _build(net, list(names))
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        net.close()
        return _loopback(f"cannot make network namespaces: {exc}")
    return net


def _build(net: Network, names: list[str]) -> None:
    pid = os.getpid()
    k = _free_subnet()
    net.bridge, net.host = f"tsb{pid}", f"10.231.{k}.1"
    _ip("link", "add", net.bridge, "type", "bridge")
    _ip("addr", "add", f"{net.host}/24", "dev", net.bridge)
    _ip("link", "set", net.bridge, "up")
    for i, name in enumerate(names):
        ns, link = f"tessera-{pid}-{name}", f"tsv{pid}n{i}"
        _ip("netns", "add", ns)
        net.namespaces[name] = ns
        _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
        net.links[name] = link
        _ip("link", "set", link, "master", net.bridge, "up")
        net.addresses[name] = f"10.231.{k}.{i + 2}"
        _ip("-n", ns, "addr", "add", f"{net.addresses[name]}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")


def _free_subnet() -> int:
    """A 10.231.<k>.0/24 no interface or route on this machine uses."""
    seen = _ip("-4", "addr").stdout + _ip("-4", "route").stdout
    used = {int(k) for k in re.findall(r"\b10\.231\.(\d+)\.", seen)}
    start = os.getpid() % len(SUBNETS)
    for k in [*SUBNETS[start:], *SUBNETS[:start]]:
        if k not in used:
            return k
    raise RuntimeError("no free 10.231.<k>.0/24")


def _loopback(why: str) -> Network:
    print(f"\ntest nodes on loopback ports, not in network namespaces: {why}")
    return Network(why_not=why)


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done
