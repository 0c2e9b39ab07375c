"""A small client for Tessera's HTTP API, used by `tessera demo` and the tests."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from typing import Any

from workers.protocol.status import FINAL

Files = list[tuple[str, str, bytes]]
"""(field name, file name, bytes) for each file part."""


def encode_multipart(fields: dict[str, str], files: Files) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type."""
    boundary = "tessera-" + secrets.token_hex(12)
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, data in files:
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n")
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(url: str, body: bytes | None = None, content_type: str | None = None,
            timeout: float = 60.0) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON reply) for a GET, or a POST when ``body`` is given; 4xx/5xx are returned, not raised."""
    headers = {"Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=body, headers=headers, method="POST" if body is not None else "GET")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as reply:
            return reply.status, json.loads(reply.read() or b"{}")
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, {"raw": text.decode(errors="replace")}


def submit(base_url: str, target: bytes, tiles: list[bytes], options: dict[str, str],
           tile_urls: list[str] | None = None) -> tuple[int, dict[str, Any]]:
    files = [("target", "target.png", target)] + [("tiles", f"tile{i}.png", t) for i, t in enumerate(tiles)]
    fields = dict(options)
    if tile_urls:
        fields["tile_urls"] = "\n".join(tile_urls)
    body, content_type = encode_multipart(fields, files)
    return request(base_url.rstrip("/") + "/api/mosaics", body, content_type)


def wait_for(base_url: str, status_url: str, timeout: float = 300.0, interval: float = 0.5) -> dict[str, Any]:
    """Poll a job's status until it is final (done, failed or canceled); TimeoutError past ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, view = request(base_url.rstrip("/") + status_url)
        if code == 200 and view.get("state") in FINAL:
            return view
        time.sleep(interval)
    raise TimeoutError(f"job at {status_url} not finished after {timeout:.0f} s")


def wait_healthy(base_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if request(base_url.rstrip("/") + "/healthz", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{base_url} not healthy after {timeout:.0f} s")
