"""`tessera preflight`: before starting a node, make sure its ports are free."""

from __future__ import annotations

import socket

from config import Settings


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def check_ports(settings: Settings) -> list[str]:
    """A line for each port another program already listens on."""
    wanted = [("redis", settings.redis.host, settings.redis.port), ("web", settings.web.host, settings.web.port)]
    return [f"{name}: {host}:{port} is already in use by another program"
            for name, host, port in wanted if port_in_use(host, port)]
