"""The zoomable view of a finished mosaic: a Deep Zoom (DZI) pyramid, a thumbnail and a map of which picture
is in each cell, as files in memory for a result store to write under ``<id>.dz/``.

Level ``L`` of the pyramid is the image scaled by ``2**(L - top)``, rounded up, with ``top = ceil(log2(max side))``
(so level 0 is 1x1). Each level is made by halving the one above it (a 2x2 box), so the full-size image is read
once, and at most one level below it is held at a time (a quarter of its size).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

TILE_SIZE = 254
OVERLAP = 1
"""Tiles are 254 px plus a 1 px overlap on each inner edge (256 px at most), as OpenSeadragon expects by default."""
THUMB_SIDE = 320
"""Longest side of ``thumb.jpg`` (never enlarged)."""
ENCODE_THREADS = min(4, os.cpu_count() or 1)
"""Tiles encoded at once: Pillow releases the GIL while it encodes a JPEG."""
DZI = "image.dzi"
TILES = "image_files"
TILE_MAP = "map.json"
THUMB = "thumb.jpg"
MAX_LABEL = 200
"""Longest tile label kept in map.json (a name or URL)."""

Label = str | dict[str, str]
"""A picture's label in map.json: an upload's file name or a URL, or a friend's ``{name, handle, profile_url}``
(workers/pipeline/friends.py)."""
Step = Callable[[float], None]
"""Called with the fraction of the pyramid made so far."""


@dataclass
class DeepZoom:
    """The files of one ``<id>.dz/`` folder: path inside the folder (``/``-separated) → bytes."""

    files: dict[str, bytes]


def top_level(width: int, height: int) -> int:
    """``ceil(log2(max(width, height)))``, in integers."""
    return (max(width, height) - 1).bit_length()


def level_size(width: int, height: int, level: int) -> tuple[int, int]:
    """Size of pyramid level ``level`` of a ``width`` x ``height`` image."""
    scale = 1 << (top_level(width, height) - level)
    return -(-width // scale), -(-height // scale)


def tile_boxes(width: int, height: int) -> Iterator[tuple[int, int, tuple[int, int, int, int]]]:
    """(col, row, crop box) of each tile of a level of this size, overlap included."""
    for row in range(-(-height // TILE_SIZE)):
        for col in range(-(-width // TILE_SIZE)):
            x0, y0 = col * TILE_SIZE, row * TILE_SIZE
            yield col, row, (max(0, x0 - OVERLAP), max(0, y0 - OVERLAP),
                             min(width, x0 + TILE_SIZE + OVERLAP), min(height, y0 + TILE_SIZE + OVERLAP))


def dzi_xml(width: int, height: int) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" TileSize="{TILE_SIZE}" Overlap="{OVERLAP}"'
            f' Format="jpg"><Size Width="{width}" Height="{height}"/></Image>\n').encode()


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _tile(image: Image.Image, box: tuple[int, int, int, int], quality: int) -> bytes:
    return _jpeg(image.crop(box), quality)


def pyramid(image: Image.Image, quality: int, step: Step = lambda done: None) -> dict[str, bytes]:
    """``image.dzi``, every ``image_files/<level>/<col>_<row>.jpg`` and ``thumb.jpg`` of ``image`` (RGB or RGBX)."""
    width, height = image.size
    top = top_level(width, height)
    files = {DZI: dzi_xml(width, height)}
    thumb: bytes | None = None
    total, done = sum(_pixels(level_size(width, height, lv)) for lv in range(top + 1)), 0
    with ThreadPoolExecutor(ENCODE_THREADS, thread_name_prefix="deepzoom") as pool:
        level = image
        for number in range(top, -1, -1):
            pending: list[tuple[str, Future[bytes]]] = [
                (f"{TILES}/{number}/{col}_{row}.jpg", pool.submit(_tile, level, box, quality))
                for col, row, box in tile_boxes(*level.size)]
            if thumb is None and max(level.size) < 2 * THUMB_SIDE:  # the first level at most twice the thumb
                thumb = _thumbnail(level, quality)
            below = level.reduce(2) if number else None  # halved while this level's tiles encode
            files.update((name, future.result()) for name, future in pending)
            done += _pixels(level.size)
            step(done / total)
            if below is not None:
                level = below
    files[THUMB] = thumb if thumb is not None else _thumbnail(image, quality)
    return files


def _pixels(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def _thumbnail(image: Image.Image, quality: int) -> bytes:
    width, height = image.size
    scale = min(1.0, THUMB_SIDE / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return _jpeg(image if size == image.size else image.resize(size, Image.Resampling.LANCZOS), quality)


def tile_labels(refs: Sequence[str], names: Sequence[str]) -> list[Label]:
    """A label per job tile: its upload's original file name where the package has one, else its URL."""
    return [(name or ref)[:MAX_LABEL] for ref, name in zip(refs, list(names) or [""] * len(refs), strict=True)]


def tile_map(assignment: np.ndarray, labels: Sequence[Label], tile_px: int) -> bytes:
    """``map.json``: the label of the picture in each cell; ``labels`` are per prepared tile (assignment's index)."""
    rows, cols = assignment.shape
    used, cells = np.unique(assignment.ravel(), return_inverse=True)  # only the pictures in use, once each
    return json.dumps({
        "cols": cols, "rows": rows, "tile_px": tile_px, "width": cols * tile_px, "height": rows * tile_px,
        "labels": [labels[i] for i in used.tolist()], "cells": cells.ravel().tolist(),
    }, separators=(",", ":")).encode()


def make(image: Image.Image, assignment: np.ndarray, labels: Sequence[Label], quality: int,
         step: Step = lambda done: None) -> DeepZoom:
    """The whole ``<id>.dz/`` folder for the rendered mosaic ``image``."""
    files = pyramid(image, quality, step)
    files[TILE_MAP] = tile_map(assignment, labels, image.size[0] // assignment.shape[1])
    return DeepZoom(files=files)
