"""Render the mosaic and encode it (JPEG or PNG) while holding at most about one copy of the output.

JPEG: the mosaic is rendered a strip of cells at a time into a few reused buffers, and the strips are
encoded on every core and joined into one JPEG (workers/pipeline/jpegstrips.py); with the zoomable view, which needs
the whole picture, into one RGBX canvas. PNG: the mosaic is rendered and compressed a strip of cells at a
time, so only the compressed stream and one strip are ever held.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

import kernels
from workers.pipeline import jpegstrips

FORMATS = {"jpeg": "jpg", "png": "png"}
"""Output formats and their file extensions."""
STRIP_PIXELS = 8 * 1024 * 1024
"""Pixels rendered per strip (PNG, and progress for JPEG)."""

Step = Callable[[float], None]
"""Called with the fraction of the output rendered so far."""


def _strip_rows(rows: int, width: int, px: int) -> int:
    return max(1, min(rows, STRIP_PIXELS // max(1, width * px)))


def _render_rows(tiles: np.ndarray, assignment: np.ndarray, offsets: np.ndarray | None, r0: int, r1: int,
                 out: np.ndarray) -> None:
    """Cell rows [r0, r1) of the mosaic into ``out``."""
    kernels.render(tiles, assignment[r0:r1], out=out, offsets=None if offsets is None else offsets[r0:r1])


def _render_strips(tiles: np.ndarray, assignment: np.ndarray, offsets: np.ndarray | None, canvas: np.ndarray,
                   step: Step, strip_cells: int, emit: Callable[[np.ndarray], None] | None = None) -> None:
    """Render cell rows ``strip_cells`` at a time into ``canvas`` (whole image, or one strip reused)."""
    px, rows = tiles.shape[1], assignment.shape[0]
    for r0 in range(0, rows, strip_cells):
        r1 = min(rows, r0 + strip_cells)
        y0 = 0 if emit else r0 * px
        view = canvas[y0 : y0 + (r1 - r0) * px]
        _render_rows(tiles, assignment, offsets, r0, r1, view)
        if emit:
            emit(view)
        step(r1 / rows)


def render_canvas(tiles: np.ndarray, assignment: np.ndarray, offsets: np.ndarray | None, step: Step) -> np.ndarray:
    """The whole mosaic as one RGBX array (for the zoomable view; see :func:`rgbx_image`)."""
    rows, cols = assignment.shape
    px = tiles.shape[1]
    canvas = np.empty((rows * px, cols * px, 4), dtype=np.uint8)
    _render_strips(tiles, assignment, offsets, canvas, step, _strip_rows(rows, cols * px, px))
    return canvas


def rgbx_image(canvas: np.ndarray) -> Image.Image:
    """An RGBX canvas as a Pillow image that shares its memory (Pillow holds RGB as 4 bytes a pixel)."""
    height, width = canvas.shape[:2]
    return Image.frombuffer("RGBX", (width, height), canvas, "raw", "RGBX", 0, 1)


def jpeg_bytes(canvas: np.ndarray, quality: int, px: int) -> bytes:
    """The same bytes as :func:`encode_jpeg` gives (the same strips: whole cells of ``px`` rows)."""
    return jpegstrips.encode(canvas, quality, px)


def encode_jpeg(tiles: np.ndarray, assignment: np.ndarray, offsets: np.ndarray | None, quality: int,
                step: Step) -> bytes:
    """Rendered and encoded a strip at a time, the strips encoded on every core (workers/pipeline/jpegstrips.py)."""
    rows, cols = assignment.shape
    px = tiles.shape[1]

    def render(first: int, end: int, out: np.ndarray) -> None:
        _render_rows(tiles, assignment, offsets, first // px, end // px, out)

    height, width = rows * px, cols * px
    return jpegstrips.encode_rendered(width, height, quality, render, jpegstrips.strip_rows(width, height, px),
                                      step=step)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def encode_png(tiles: np.ndarray, assignment: np.ndarray, offsets: np.ndarray | None, level: int,
               step: Step) -> bytes:
    rows, cols = assignment.shape
    px = tiles.shape[1]
    width, height = cols * px, rows * px
    strip_cells = _strip_rows(rows, width, px)
    canvas = np.empty((strip_cells * px, width, 3), dtype=np.uint8)
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
