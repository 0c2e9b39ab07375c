"""Tessera compute kernels: pure array-in, array-out functions.

Kernels import only numpy and numba and do no I/O. Each public function checks its
arguments, allocates the output and calls a private Numba-compiled loop.
"""

from __future__ import annotations

import numpy as np

from . import _jit  # noqa: F401  # first: it imports Numba
from .assign import assign_tiles
from .cover import cover_groups
from .features import block_means, cell_features, tile_features
from .fidelity import tile_fidelity
from .identity import dominant_share, linked_groups
from .match import nearest_candidates, principal_frame, to_frame
from .refine import refine_assignment
from .render import blend_offsets, render

# Only what the pipeline calls: kernels used by tests alone are test references (tests/unit/kernel_refs.py).
__all__ = ["block_means", "tile_features", "cell_features", "nearest_candidates", "principal_frame", "to_frame",
           "assign_tiles", "refine_assignment", "cover_groups", "blend_offsets", "render", "tile_fidelity",
           "linked_groups", "dominant_share", "warm_up"]


def warm_up() -> None:
    """Call every kernel once on tiny arrays, with the argument types the pipeline uses, so that
    compilation (or loading from the cache) happens now and not during the first job."""
    tiles = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    target = np.zeros((8, 8, 3), dtype=np.uint8)
    tile_feats = tile_features(tiles, 2)
    cell_feats = cell_features(target, 2, 2, 2)
    block_means(target, 2, 2)  # the colour correction's part means (the same code as the features')
    frame = principal_frame(tile_feats)
    cell_feats, tile_feats = to_frame(cell_feats, frame), to_frame(tile_feats, frame)
    cand_idx, cand_d = nearest_candidates(cell_feats, tile_feats, 2)
    assignment = assign_tiles(cand_idx, cand_d, cell_feats, tile_feats, (2, 2), np.arange(4), 1, 0, 0.5)
    groups = np.arange(2, dtype=np.int32)
    refine_assignment(assignment, cand_idx, cand_d, cell_feats, tile_feats, groups, 1, 2)  # chains, blocker moves
    refine_assignment(assignment, cand_idx, cand_d, cell_feats, tile_feats, groups, 0, 2)  # the auction
    spaced = np.ones(2, dtype=np.bool_)
    assignment = assign_tiles(cand_idx, cand_d, cell_feats, tile_feats, (2, 2), np.arange(4), 1, 0, 0.5, 4, groups,
                              spaced)  # flat pictures left out of the distance rule
    refine_assignment(assignment, cand_idx, cand_d, cell_feats, tile_feats, groups, 1, 2, spaced=spaced)
    cover_groups(np.zeros((2, 2), np.int32), cell_feats, tile_feats, groups)  # use_all
    render(tiles, assignment)
    linked_groups(np.zeros((2, 6), np.float32), np.zeros((2, 4), np.float32), np.zeros((2, 3), np.float32),
                  np.ones(2, np.float32), np.ones(2, np.bool_), (3.5, 0.3, 8.0, 6.0, 1.5, 25.0, 20.0),
                  (0.5, 1.0))  # the tiles' identity groups (workers/pipeline/identity.py)
    dominant_share(tiles, 8, 2)
    canvas = np.zeros((8, 8, 4), dtype=np.uint8)  # the zoomable view's RGBX canvas: the same compiled code
    render(tiles, assignment, out=canvas)
    offsets = blend_offsets(np.zeros((2, 2, 3), np.float32), np.zeros((2, 3), np.float32), assignment, 0.5)
    render(tiles, assignment, out=canvas, offsets=offsets)
    field = blend_offsets(np.zeros((2, 2, 2, 2, 3), np.float32), np.zeros((2, 2, 2, 3), np.float32), assignment, 0.5)
    render(tiles, assignment, out=canvas, offsets=field)
    tile_fidelity(np.zeros((2, 2, 2, 3), np.float32), field, assignment)  # the job's tile_fidelity_de
    tiles.flags.writeable = False  # a worker's remembered tile sets are read-only (pipeline/tilememo.py): other types
    tile_features(tiles, 2)
    render(tiles, assignment, out=canvas)
    render(tiles, assignment, out=canvas, offsets=field)
