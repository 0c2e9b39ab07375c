"""Tessera compute kernels: pure array-in, array-out functions.

Kernels import only numpy and numba and do no I/O. Each public function checks its
arguments, allocates the output and calls a private Numba-compiled loop.
"""

from __future__ import annotations

import numpy as np

from .color import srgb_to_lab
from .features import block_means, cell_features, tile_features
from .match import nearest_tiles
from .render import render

__all__ = ["srgb_to_lab", "block_means", "tile_features", "cell_features", "nearest_tiles", "render", "warm_up"]


def warm_up() -> None:
    """Call every kernel once on tiny arrays so compilation (or cache loading) happens now."""
    tiles = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    target = np.zeros((8, 8, 3), dtype=np.uint8)
    tile_feats = tile_features(tiles, 2)
    cell_feats = cell_features(target, 2, 2, 2)
    block_means(srgb_to_lab(target), 2, 2)
    assignment = nearest_tiles(cell_feats, tile_feats).reshape(2, 2)
    render(tiles, assignment)
