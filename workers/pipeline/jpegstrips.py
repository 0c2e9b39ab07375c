"""One baseline JPEG encoded as strips on every core, joined with restart markers.

libjpeg encodes an image on one core. Cut into strips of whole MCU rows (16 pixel rows at 4:2:0), each
strip encodes to its own JPEG with the same tables, and a restart marker between two strips resets the
decoder's DC predictors. So the strips' entropy-coded data, joined by RST0..RST7 markers under the first
strip's header (its height made the whole image's, plus a restart interval of one strip), is exactly a
whole-image encode with that restart interval: it decodes to the same pixels as an encode in one piece.
The strips can be encoded on threads (simplejpeg lets go of the GIL), and rendered one at a time into a
few reused buffers, so a mosaic is never held whole.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import simplejpeg

SUBSAMPLING = "420"
"""Pillow's default, as before."""
MCU_ROWS = 16
"""Pixel rows per MCU row at 4:2:0."""
MAX_INTERVAL = 0xFFFF
"""The largest restart interval a DRI segment can declare, in MCUs."""
STRIP_PIXELS = 2 * 1024 * 1024
"""Pixels per strip, about: 512 rows of a 4096 px wide mosaic (128-1024 rows encode equally fast here)."""
SOF0, SOS, DRI, RST0, EOI = 0xC0, 0xDA, 0xDD, 0xD0, 0xD9

Render = Callable[[int, int, np.ndarray], None]
"""Fills the given ``(end - first, width, 3)`` buffer with the image's rows [first, end)."""


def strip_rows(width: int, height: int, unit: int = 1) -> int:
    """Rows per strip: whole MCU rows, a multiple of ``unit`` (a cell's height), within a restart interval.

    Returns ``height`` (one strip) when no such height is shorter than the image."""
    step = MCU_ROWS * unit // math.gcd(MCU_ROWS, unit)
    most = MAX_INTERVAL // -(-width // MCU_ROWS) * MCU_ROWS  # rows whose MCUs fit in one interval
    wanted = max(step, STRIP_PIXELS // max(1, width) // step * step)
    rows = min(wanted, most // step * step)
    return rows if 0 < rows < height else height


def encode(image: np.ndarray, quality: int, unit: int = 1, threads: int | None = None) -> bytes:
    """JPEG bytes of a uint8 ``(height, width, 3 or 4)`` RGB or RGBX array, in strips of whole ``unit`` rows."""
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    rows = strip_rows(width, height, unit)
    with ThreadPoolExecutor(_threads(threads)) as pool:
        parts = list(pool.map(lambda span: _encode(image[span[0] : span[1]], quality),
                              _strips(height, rows)))
    return join(parts, height, _interval(width, rows))


def encode_rendered(width: int, height: int, quality: int, render: Render, rows: int,
                    threads: int | None = None, step: Callable[[float], None] | None = None) -> bytes:
    """JPEG bytes of an RGB image made ``rows`` rows at a time by ``render`` (``rows``: see :func:`strip_rows`).

    Strips are rendered in order on this thread and encoded on ``threads`` others (default: one per core),
    so only ``threads + 1`` strip buffers are ever held."""
    threads = _threads(threads)
    buffers: list[np.ndarray] = []
    jobs: list[Future[bytes]] = []
    with ThreadPoolExecutor(threads) as pool:
        for k, (first, end) in enumerate(_strips(height, rows)):
            if k > threads:
                jobs[k - threads - 1].result()  # that strip's buffer is free again
            if len(buffers) <= threads:
                buffers.append(np.empty((rows, width, 3), dtype=np.uint8))
            strip = buffers[k % (threads + 1)][: end - first]
            render(first, end, strip)
            jobs.append(pool.submit(_encode, strip, quality))
            if step:
                step(end / height)
        parts = [job.result() for job in jobs]
    return join(parts, height, _interval(width, rows))


def _threads(threads: int | None) -> int:
    return max(1, threads or os.cpu_count() or 1)


def _encode(strip: np.ndarray, quality: int) -> bytes:
    colorspace = "RGB" if strip.shape[2] == 3 else "RGBX"
    data: bytes = simplejpeg.encode_jpeg(strip, quality=quality, colorspace=colorspace, colorsubsampling=SUBSAMPLING)
    return data


def _interval(width: int, rows: int) -> int:
    """MCUs in a strip of ``rows`` rows."""
    return -(-width // MCU_ROWS) * (rows // MCU_ROWS)


def _strips(height: int, rows: int) -> Iterator[tuple[int, int]]:
    for first in range(0, height, rows):
        yield first, min(height, first + rows)


def join(parts: list[bytes], height: int, interval: int) -> bytes:
    """One JPEG from strips encoded alike, each but the last ``interval`` MCUs, for an image ``height`` high."""
    if len(parts) == 1:
        return parts[0]
    first, sos, _ = _split(parts[0])
    header = bytearray(first)
    struct.pack_into(">H", header, _sof_height_at(header), height)
    out = [bytes(header), bytes((0xFF, DRI, 0, 4)), struct.pack(">H", interval), sos]
    for k, part in enumerate(parts):
        if k:
            out.append(bytes((0xFF, RST0 + (k - 1) % 8)))
        out.append(_split(part)[2])
    out.append(bytes((0xFF, EOI)))
    return b"".join(out)


def _split(data: bytes) -> tuple[bytes, bytes, bytes]:
    """A one-scan JPEG as (segments before SOS, the SOS segment, entropy-coded data without EOI)."""
    at = 2
    while True:
        if data[at] != 0xFF:
            raise ValueError(f"not a JPEG segment at byte {at}")
        marker, length = data[at + 1], struct.unpack_from(">H", data, at + 2)[0]
        if marker == SOS:
            return data[:at], data[at : at + 2 + length], data[at + 2 + length : -2]
        at += 2 + length


def _sof_height_at(header: bytearray) -> int:
    at = 2
    while header[at + 1] != SOF0:
        at += 2 + struct.unpack_from(">H", header, at + 2)[0]
    return at + 5  # after the marker, the length and the precision byte
