"""The common tile, fast: a plain JPEG decoded by libjpeg-turbo at reduced scale (simplejpeg).

For 10,000 small tiles Pillow's cost is mostly its JPEG header parsing in Python (about 0.1 ms a file);
simplejpeg decodes the same file, scaled down inside the DCT as Pillow's ``draft`` does, in about a third
of the time. Anything out of the ordinary (an EXIF block, which may rotate the picture; CMYK; a file
simplejpeg refuses) gets None here, and the caller takes Pillow's path, which handles every case and gives
the precise error.
"""

from __future__ import annotations

import numpy as np
import simplejpeg

SOI, SOS, EOI, APP1 = 0xD8, 0xDA, 0xD9, 0xE1
COLORSPACES = ("YCbCr", "Gray")


def decode_small(data: bytes, px: int, max_pixels: int) -> np.ndarray | None:
    """uint8 RGB (h, w, 3) as Pillow decodes it with ``draft(px, px)``, or None: take Pillow's path."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != SOI or not _plain_markers(data):
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if colorspace not in COLORSPACES or width < 1 or height < 1 or width * height > max_pixels:
            return None  # Pillow's path refuses the size with its usual message
        scale = _draft_scale(width, height, px)
        pixels: np.ndarray = simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=-(-width // scale),
                                                    min_height=-(-height // scale))
        return pixels
    except ValueError:
        return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a baseline or progressive JPEG as its frame header declares them; None when libjpeg-turbo
    cannot read the header (the caller asks Pillow)."""
    if len(data) < 4 or data[0] != 0xFF or data[1] != SOI:
        return None
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    return int(width), int(height)


def _draft_scale(width: int, height: int, px: int) -> int:
    """Pillow's ``draft`` reduction (1, 2, 4 or 8), so both paths give the same pixels (libjpeg-turbo would
    also take 3/8, 5/8…)."""
    most = min(width // px, height // px)
    return next(s for s in (8, 4, 2, 1) if most >= s or s == 1)


def _plain_markers(data: bytes) -> bool:
    """True when the segments before the image data are well formed and none is an EXIF block."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return False
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (SOS, EOI):
            return True
        length = (data[i + 2] << 8) | data[i + 3]
        if length < 2:
            return False
        if marker == APP1 and data[i + 4 : i + 10] == b"Exif\x00\x00":
            return False
        i += 2 + length
    return False
