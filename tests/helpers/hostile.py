"""Hostile things for the security tests: a loopback server of bad answers and a corpus of bad files."""

from __future__ import annotations

import io
import struct
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

import numpy as np
from PIL import Image

from tests.helpers.images import encode, make_tiles

PNG = encode(make_tiles(1)[0])


class Hostile(BaseHTTPRequestHandler):
    """Each path is one kind of bad answer."""

    def do_GET(self) -> None:
        routes = {
            "/ok.png": lambda: self.answer(200, PNG, "image/png"),
            "/page.png": lambda: self.answer(200, b"<html><script>alert(1)</script></html>", "text/html"),
            "/missing.png": lambda: self.answer(404, b"no", "text/plain"),
            "/broken.png": lambda: self.answer(503, b"later", "text/plain"),
            "/huge.png": lambda: self.answer(200, b"x" * 4096, "image/png"),
            "/endless.png": self.endless,
            "/slow.png": self.slow,
            "/to-private": lambda: self.redirect("http://10.1.2.3/a.png"),
            "/to-metadata": lambda: self.redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-evil-name": lambda: self.redirect(
                f"http://evil.test:{cast(tuple[str, int], self.server.server_address)[1]}/ok.png"),
            "/to-file": lambda: self.redirect("file:///etc/passwd"),
            "/hop1": lambda: self.redirect("/hop2"),
            "/hop2": lambda: self.redirect("/ok.png"),
            "/loop": lambda: self.redirect("/loop"),
        }
        routes.get(self.path, lambda: self.answer(404, b"", "text/plain"))()

    def answer(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def endless(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        try:
            for _ in range(10_000):
                self.wfile.write(b"\x00" * 65536)
        except OSError:
            pass

    def slow(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        try:
            for byte in PNG[:40]:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass




def png_header(width: int, height: int) -> bytes:
    """A PNG that declares a size (a decompression bomb's header) and holds almost nothing."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def photo(width: int = 120, height: int = 80) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    return Image.fromarray(np.stack([x * 2, y * 3, (x + y)], axis=-1).astype(np.uint8), "RGB")


def bad_files() -> dict[str, bytes]:
    """Uploads that must be refused by the web tier (or fail their job) with a reason."""
    good_png = _save(photo(), "PNG")
    return {
        "zero bytes": b"",
        "not an image": b"hello, I am text",
        "html": b"<!doctype html><html><script>alert(1)</script></html>",
        "svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="9" height="9"/></svg>',
        "pdf": b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
        "tiff": _save(photo(), "TIFF"),
        "bomb 50000x50000": png_header(50_000, 50_000),
        "truncated png": good_png[: len(good_png) // 2],
        "truncated jpeg": _save(photo(), "JPEG")[:300],
    }


def odd_but_good_files() -> dict[str, bytes]:
    """Real-world formats that must decode correctly."""
    rgba = photo().convert("RGBA")
    rgba.putalpha(128)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when shown
    frames = [photo(), photo().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return {
        "cmyk jpeg": _save(photo().convert("CMYK"), "JPEG"),
        "exif-rotated jpeg": _save(photo(), "JPEG", exif=exif),
        "progressive jpeg": _save(photo(), "JPEG", progressive=True),
        "greyscale png": _save(photo().convert("L"), "PNG"),
        "palette png": _save(photo().convert("P"), "PNG"),
        "rgba png": _save(rgba, "PNG"),
        "16-bit png": _save(Image.fromarray(np.asarray(photo().convert("L"), np.uint16) * 257), "PNG"),
        "animated gif": _save(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "webp": _save(photo(), "WEBP"),
    }
