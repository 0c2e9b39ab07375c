"""`tessera preflight` against real sockets: a busy port is named, free ports pass."""

from __future__ import annotations

import socket

from tests.helpers.processes import free_port
from tests.helpers.settings import SettingsFactory
from workers.cli.preflight import check_ports


def test_busy_web_port_is_reported(make_settings: SettingsFactory) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        settings = make_settings(TESSERA_WEB_PORT=str(port), TESSERA_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
        assert check_ports(settings) == [f"web: 127.0.0.1:{port} is already in use by another program"]


def test_free_ports_pass(make_settings: SettingsFactory) -> None:
    settings = make_settings(TESSERA_WEB_PORT=str(free_port()), TESSERA_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert check_ports(settings) == []
