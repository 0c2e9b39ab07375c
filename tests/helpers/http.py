"""Static tile servers on loopback whose answers take a set delay (slow jobs on demand)."""

from __future__ import annotations

import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.helpers.images import encode, make_tiles


class _DelayHandler(SimpleHTTPRequestHandler):
    delay = 0.0

    def do_GET(self) -> None:
        time.sleep(self.delay)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a worker killed mid-fetch breaks the pipe: expected here


class TileServers:
    """Static tile servers (on 127.0.0.1, or ``host``) whose every answer takes a set delay (slow jobs on demand)."""

    def __init__(self, folder: Path, host: str = "127.0.0.1") -> None:
        self.folder, self.host = folder, host
        self.servers: list[ThreadingHTTPServer] = []

    def serve(self, delay: float, count: int = 8) -> list[str]:
        folder = self.folder / f"tiles-{len(self.servers)}"
        folder.mkdir(parents=True)
        for number, tile in enumerate(make_tiles(count)):
            (folder / f"t{number}.png").write_bytes(encode(tile))
        handler = type("Handler", (_DelayHandler,), {"delay": delay})
        server = _QuietServer((self.host, 0), partial(handler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return [f"http://{self.host}:{server.server_address[1]}/t{n}.png" for n in range(count)]

    def __enter__(self) -> TileServers:
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
