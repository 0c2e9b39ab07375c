"""Generated images (photo-like targets, textured tiles), their resemblance, and image bytes by name."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from workers.protocol.errors import JobRejected


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(array.astype(np.uint8), "RGB").save(out, fmt)
    return out.getvalue()


def make_target(width: int = 240, height: int = 160, seed: int = 1) -> np.ndarray:
    """A photo-like target: smooth colour gradients with a few bright discs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([255 * x / width, 255 * y / height, 255 * (1 - x / width) * (y / height)], axis=-1)
    for _ in range(4):
        cx, cy, radius = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(10, 40)
        image[(x - cx) ** 2 + (y - cy) ** 2 < radius**2] = rng.uniform(0, 255, 3)
    return image.astype(np.uint8)


def make_tiles(count: int = 64, px: int = 24, seed: int = 2) -> list[np.ndarray]:
    """Tiles of distinct colours with a little texture, so a good match is possible."""
    rng = np.random.default_rng(seed)
    tiles = []
    for _ in range(count):
        base = rng.uniform(0, 255, 3)
        noise = rng.normal(0, 12, (px, px, 3))
        tiles.append(np.clip(base + noise, 0, 255).astype(np.uint8))
    return tiles


def cell_means(image: np.ndarray, cols: int, rows: int) -> np.ndarray:
    """Mean colour per cell of a grid laid over the image (float, rows×cols×3)."""
    small = Image.fromarray(image).resize((cols, rows), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64)


def resemblance(mosaic: np.ndarray, target: np.ndarray, tiles: list[np.ndarray], cols: int, rows: int,
                seed: int = 3) -> tuple[float, float]:
    """(mean per-cell colour error of the mosaic, same for a random tile arrangement)."""
    want = cell_means(target, cols, rows)
    got = cell_means(mosaic, cols, rows)
    rng = np.random.default_rng(seed)
    tile_means = np.array([t.reshape(-1, 3).mean(axis=0) for t in tiles])
    random_cells = tile_means[rng.integers(0, len(tiles), size=(rows, cols))]
    error = float(np.linalg.norm(got - want, axis=-1).mean())
    random_error = float(np.linalg.norm(random_cells - want, axis=-1).mean())
    return error, random_error


class MemorySource:
    """Image bytes by name, as a fetcher would give them (a Source for build_mosaic without files)."""

    concurrency = 1

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def get(self, ref: str) -> bytes:
        if ref not in self.files:
            raise JobRejected(f"no such file {ref}")
        return self.files[ref]
