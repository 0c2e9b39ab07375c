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
    hang: Hang | None = None

    def do_GET(self) -> None:
        time.sleep(self.delay)
        hang = self.hang
        if hang is None or not hang.take(self.path):
            super().do_GET()
            return
        body = self.send_head()  # status and headers (Content-Length included) go out now…
        self.wfile.flush()
        hang.hanging.set()
        hang.release.wait(timeout=600)  # …the body only once released: the reader blocks in recv meanwhile
        if body is not None:
            with body:
                self.copyfile(body, self.wfile)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Hang:
    """The first request for ``path`` gets its headers, then no body until ``release`` is set."""

    def __init__(self, path: str = "/t0.png") -> None:
        self.path = path
        self.hanging, self.release = threading.Event(), threading.Event()
        self._taken = False
        self._lock = threading.Lock()

    def take(self, request_path: str) -> bool:
        with self._lock:
            if self._taken or request_path.split("?", 1)[0] != self.path:
                return False
            self._taken = True
            return True


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a worker killed mid-fetch breaks the pipe: expected here


class TileServers:
    """Static tile servers (on 127.0.0.1, or ``host``) whose every answer takes a set delay (slow jobs on demand)."""

    def __init__(self, folder: Path, host: str = "127.0.0.1") -> None:
        self.folder, self.host = folder, host
        self.servers: list[ThreadingHTTPServer] = []
        self.hangs: list[Hang] = []

    def serve(self, delay: float, count: int = 8, hang: Hang | None = None) -> list[str]:
        folder = self.folder / f"tiles-{len(self.servers)}"
        folder.mkdir(parents=True)
        for number, tile in enumerate(make_tiles(count)):
            (folder / f"t{number}.png").write_bytes(encode(tile))
        handler = type("Handler", (_DelayHandler,), {"delay": delay, "hang": hang})
        server = _QuietServer((self.host, 0), partial(handler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        if hang is not None:
            self.hangs.append(hang)
        return [f"http://{self.host}:{server.server_address[1]}/t{n}.png" for n in range(count)]

    def __enter__(self) -> TileServers:
        return self

    def __exit__(self, *exc: object) -> None:
        for hang in self.hangs:
            hang.release.set()  # no handler thread left waiting
        for server in self.servers:
            server.shutdown()
            server.server_close()
