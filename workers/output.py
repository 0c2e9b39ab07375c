"""Render the mosaic and encode it (JPEG or PNG) while holding at most about one copy of the output.

JPEG: the mosaic is rendered into one RGBX buffer that Pillow encodes in place (4/3 of the RGB size,
plus the much smaller JPEG). PNG: the mosaic is rendered and compressed a strip of cells at a time,
so only the compressed stream and one strip are ever held.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

import kernels

FORMATS = {"jpeg": "jpg", "png": "png"}
"""Output formats and their file extensions."""
STRIP_PIXELS = 8 * 1024 * 1024
"""Pixels rendered per strip (PNG, and progress for JPEG)."""

Step = Callable[[float], None]
"""Called with the fraction of the output rendered so far."""


def _strip_rows(rows: int, width: int, px: int) -> int:
    return max(1, min(rows, STRIP_PIXELS // max(1, width * px)))


def _render_strips(tiles: np.ndarray, assignment: np.ndarray, offsets: np.ndarray | None, canvas: np.ndarray,
                   step: Step, strip_cells: int, emit: Callable[[np.ndarray], None] | None = None) -> None:
    """Render cell rows ``strip_cells`` at a time into ``canvas`` (whole image, or one strip reused)."""
    px, rows = tiles.shape[1], assignment.shape[0]
    for r0 in range(0, rows, strip_cells):
        r1 = min(rows, r0 + strip_cells)
        y0 = 0 if emit else r0 * px
        view = canvas[y0 : y0 + (r1 - r0) * px, :, :3]
        kernels.render(tiles, assignment[r0:r1], out=view, offsets=None if offsets is None else offsets[r0:r1])
        if emit:
            emit(view)
        step(r1 / rows)


def render_image(tiles: np.ndarray, assignment: np.ndarray, offsets: np.ndarray | None, step: Step) -> Image.Image:
    """The whole mosaic as one RGBX image (Pillow encodes RGBX in place, with no RGB copy)."""
    rows, cols = assignment.shape
    px = tiles.shape[1]
    canvas = np.empty((rows * px, cols * px, 4), dtype=np.uint8)
    _render_strips(tiles, assignment, offsets, canvas, step, _strip_rows(rows, cols * px, px))
    return Image.frombuffer("RGBX", (cols * px, rows * px), canvas, "raw", "RGBX", 0, 1)  # shares canvas


def jpeg_bytes(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=False)
    return out.getvalue()


def encode_jpeg(tiles: np.ndarray, assignment: np.ndarray, offsets: np.ndarray | None, quality: int,
                step: Step) -> bytes:
    return jpeg_bytes(render_image(tiles, assignment, offsets, step), quality)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def encode_png(tiles: np.ndarray, assignment: np.ndarray, offsets: np.ndarray | None, level: int,
               step: Step) -> bytes:
    rows, cols = assignment.shape
    px = tiles.shape[1]
    width, height = cols * px, rows * px
    strip_cells = _strip_rows(rows, width, px)
    canvas = np.empty((strip_cells * px, width, 4), dtype=np.uint8)
    compressor = zlib.compressobj(level)
    parts = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))]

    def emit(strip: np.ndarray) -> None:
        lines = np.empty((strip.shape[0], 1 + width * 3), dtype=np.uint8)
        lines[:, 0] = 1  # filter "Sub": each byte minus the one a pixel to its left
        flat = strip.reshape(strip.shape[0], width * 3)
        lines[:, 1:4] = flat[:, :3]
        np.subtract(flat[:, 3:], flat[:, :-3], out=lines[:, 4:])
        parts.append(_chunk(b"IDAT", compressor.compress(lines.tobytes())))

    _render_strips(tiles, assignment, offsets, canvas, step, strip_cells, emit)
    parts.append(_chunk(b"IDAT", compressor.flush()))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


def encode(fmt: str, tiles: np.ndarray, assignment: np.ndarray, offsets: np.ndarray | None, quality: int,
           png_level: int, step: Step) -> bytes:
    """The mosaic as ``fmt`` ("jpeg" or "png") bytes."""
    if fmt == "jpeg":
        return encode_jpeg(tiles, assignment, offsets, quality, step)
    if fmt == "png":
        return encode_png(tiles, assignment, offsets, png_level, step)
    raise ValueError(f"unknown output format {fmt!r} (known: {', '.join(FORMATS)})")
