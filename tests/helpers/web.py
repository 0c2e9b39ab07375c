"""The real Bottle app on a real waitress server in a thread, for tests that talk HTTP to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import waitress.server

from config import Settings
from tests.helpers.keeper import keeping
from tests.helpers.processes import free_port
from tests.helpers.settings import SettingsFactory


@dataclass(frozen=True)
class WebServer:
    base_url: str
    settings: Settings


@contextmanager
def serving(make_settings: SettingsFactory, host: str = "127.0.0.1", **env: str) -> Iterator[WebServer]:
    """The real Bottle app on waitress, in a thread, on a free port of ``host``, with the keeper that admits its
    submissions to the stream (as supervisord runs one beside the web app)."""
    from web.app import CLEAR_PROXY_HEADERS, make_app

    port = free_port()
    settings = make_settings(TESSERA_WEB_PORT=str(port), TESSERA_WEB_PUBLIC_URL=f"http://{host}:{port}", **env)
    server = waitress.server.create_server(make_app(settings), host=host, port=port, threads=4,
                                           max_request_body_size=settings.limits.max_request_bytes,
                                           clear_untrusted_proxy_headers=CLEAR_PROXY_HEADERS)
    stopping = threading.Event()

    def run() -> None:
        try:
            server.run()
        except OSError:
            if not stopping.is_set():  # closing the socket under the loop is how waitress stops here
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        with keeping(settings):
            yield WebServer(base_url=f"http://{host}:{port}", settings=settings)
    finally:
        stopping.set()
        server.close()
        thread.join(timeout=5)
