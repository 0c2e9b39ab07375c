"""Build one mosaic: fetch → decode → match → render → encode. No Redis here."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

import kernels
from config import Settings
from workers.inputs.images import decode
from workers.pipeline import deepzoom as dz
from workers.pipeline import identity, tileset
from workers.pipeline.output import FORMATS, encode, jpeg_bytes, render_canvas, rgbx_image
from workers.pipeline.tileset import PREPARED, Progress
from workers.pipeline.tiletypes import PreparedTiles, Source, TileFeatures
from workers.protocol.options import Rules, check_job
from workers.protocol.package import JobPackage

# Where each stage ends on the overall progress scale.
MATCHED, RENDERED = 0.7, 0.97
ZOOM_FROM = 0.88
"""Where rendering ends and the zoomable view begins, when one is made."""
BOUND_DIMS = 4
"""Principal features that bound a tile's distance before the rest is summed (fastest of 0/4/8/16 on W2)."""
MIN_CANDIDATES = 8
"""Fewest candidates per cell under any rule. At min_distance 1, our default, the rule asks for 9 (see
candidate_count): on W2 matching took 0.19 s with 9 against 0.22 s with 12, and the assignment is the same."""
PARTS_CHUNK = 1024
"""Tiles converted to float at once for their part means."""


@dataclass
class BuildResult:
    data: bytes
    ext: str
    details: dict[str, Any] = field(default_factory=dict)
    deepzoom: dz.DeepZoom | None = None
    """The ``<id>.dz/`` folder's files, when asked for."""


class Timings:
    """Wall seconds per stage, for the job's details."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 4)


def _no_progress(stage: str, fraction: float) -> None:
    pass


def build_mosaic(package: JobPackage, fetcher: Source, settings: Settings, report: Progress = _no_progress,
                 fmt: str = "jpeg", deepzoom: bool = False, tiles: tileset.StartedSet | None = None,
                 labels: Sequence[dz.Label] | None = None) -> BuildResult:
    """Build the mosaic of ``package``; ``fmt`` is "jpeg" or "png".

    With ``deepzoom`` (and results.deepzoom on, and JPEG) the result also holds the zoomable view.
    ``tiles``: the package's tiles as already started with :func:`tileset.start` (else started here).
    ``labels``: one map.json label per package tile (a friend's, pipeline/friends.py), else names and URLs."""
    limits, opts, timings = settings.limits, package.options, Timings()
    report("fetching the photo", 0.01)
    with timings.stage("target"):
        target = decode(fetcher.get(package.target), limits.max_image_pixels)
        check_job(opts, limits, tiles=len(package.tiles), size=(target.width, target.height))
        cols, rows = opts.grid_for(target.width, target.height)
    started = tiles or tileset.start(package, fetcher, settings)
    with timings.stage("tiles"):
        prepared = started.finish(report)
        identified = prepared.identity is not None
        if not identified:  # computed once per tile set, then kept with it (saved below)
            prepared = dataclasses.replace(prepared, identity=identity.identify(prepared.tiles))
    report("matching cells to tiles", PREPARED)
    usable = identity.usable(prepared.identity, len(prepared.tiles), opts.keep_avatars or settings.mosaic.keep_avatars,
                             settings.mosaic.count_by_file)
    rules = package.options.rules(settings.mosaic, prepared.tiles.shape[1], usable.pictures, rows * cols)
    with timings.stage("match"):
        sample = sample_px(target.width, target.height, cols, rows, settings.mosaic.sample_px, rules.k)
        small = np.asarray(target.resize((cols * sample, rows * sample), Image.Resampling.BOX), dtype=np.uint8)
        del target
        features = prepared.features_for(rules.k, rules.lightness_weight)
        if features is None:  # computed once per tile set and rules, then kept with the set
            features = tile_features(prepared.tiles, rules)
            prepared = dataclasses.replace(prepared, features=(*prepared.features, features))
            started.save(prepared)  # the set's memo and record, now with its features: the next build starts from them
        elif not identified:
            started.save(prepared)  # now with its identity
        assignment = match(small, prepared.tiles, rows, cols, rules, features, usable)
        offsets, fidelity = _offsets(small, prepared.tiles, assignment, rules.blend, settings.mosaic.blend_grid)
    report(f"matched {rows * cols} cells; rendering", MATCHED)
    if deepzoom and settings.results.deepzoom and fmt == "jpeg":
        data, zoom = _render_with_zoom(package, prepared, assignment, offsets, settings, timings, report, labels)
    else:
        zoom = None
        with timings.stage("render_encode"):
            data = encode(fmt, prepared.tiles, assignment, offsets, settings.mosaic.jpeg_quality,
                          settings.mosaic.png_compress_level,
                          lambda done: report("rendering", MATCHED + (RENDERED - MATCHED) * done))
    report("rendered; storing", RENDERED)
    return BuildResult(data=data, ext=FORMATS[fmt], deepzoom=zoom,
                       details=_details(prepared, assignment, rules, timings, data, fidelity, usable))


def _render_with_zoom(package: JobPackage, prepared: PreparedTiles, assignment: np.ndarray,
                      offsets: np.ndarray | None, settings: Settings, timings: Timings,
                      report: Progress, labels: Sequence[dz.Label] | None = None) -> tuple[bytes, dz.DeepZoom]:
    """The JPEG and the zoomable view from one rendered canvas (never rendered twice)."""
    quality = settings.mosaic.jpeg_quality
    with timings.stage("render_encode"):
        canvas = render_canvas(prepared.tiles, assignment, offsets,
                               lambda done: report("rendering", MATCHED + (ZOOM_FROM - MATCHED) * done))
        data = jpeg_bytes(canvas, quality, prepared.tiles.shape[1])
    report("making the zoomable view", ZOOM_FROM)
    with timings.stage("deepzoom"):
        labels = labels if labels is not None else dz.tile_labels(package.tiles, package.tile_names)
        zoom = dz.make(rgbx_image(canvas), assignment, [labels[i] for i in prepared.sources.tolist()], quality,
                       lambda done: report("making the zoomable view", ZOOM_FROM + (RENDERED - ZOOM_FROM) * done))
    return data, zoom


def sample_px(width: int, height: int, cols: int, rows: int, most: int, k: int) -> int:
    """Target pixels per cell side to match on: ``most``, or fewer where the target has fewer of its own.

    Sampling a target enlarged past its resolution adds work (Lab conversion, block means), not information:
    a 512 px target on 128 cells has 4 pixels a cell, and at 4 the features are the same as at 8. Whole
    blocks of ``k`` (the feature grid) either way."""
    own = math.ceil(max(width / cols, height / rows))
    return max(k, min(most, k * math.ceil(own / k)))


def match(small: np.ndarray, tiles: np.ndarray, rows: int, cols: int, rules: Rules,
          features: TileFeatures | None = None, usable: identity.Usable | None = None) -> np.ndarray:
    """Tile index per cell, (rows, cols); ``small`` is the target at ``rows*s`` x ``cols*s`` pixels.

    ``features``: the tiles' :func:`tile_features` under ``rules``, when computed before. ``usable``: the tiles
    matched on and the picture groups the rules count (identity.usable; None: every tile, each its own)."""
    if features is None:
        features = tile_features(tiles, rules)
    values, keep = features.values, None if usable is None else usable.keep
    if keep is not None:  # default avatars left out: matched on the rest, indices mapped back at the end
        values = np.ascontiguousarray(values[keep])
    groups = np.arange(len(values), dtype=np.int32) if usable is None else usable.groups  # identity (issue 14.3)
    cell_feats = kernels.to_frame(kernels.cell_features(small, rows, cols, rules.k) * _weights(rules), features.frame)
    # A few candidates per cell; the rare cell whose candidates are all blocked gets an exact (pruned) full scan.
    count = 1 if not (rules.min_distance or rules.max_uses or rules.penalty) else candidate_count(rules)
    cand_idx, cand_d = kernels.nearest_candidates(cell_feats, values, count)
    order = visiting_order(cand_d[:, 0], rules.seed)
    spaced = None
    if rules.min_distance and not rules.space_flat:  # flat colours: nothing to recognise (pipeline/identity.py)
        frame_mean, rotation = features.frame
        spaced = identity.spaced(values @ rotation.T + frame_mean, rules.lightness_weight, groups)
    assignment = kernels.assign_tiles(cand_idx, cand_d, cell_feats, values, (rows, cols), order,
                                      rules.min_distance, rules.max_uses, rules.penalty, BOUND_DIMS, groups, spaced)
    if rules.refine and (rules.min_distance or rules.max_uses):  # else the greedy is exact: each cell its nearest
        assignment = kernels.refine_assignment(assignment, cand_idx, cand_d, cell_feats, values, groups,
                                               rules.min_distance, rules.max_uses, spaced=spaced)
    if rules.use_all:  # last: the refinement may leave a picture unused again
        assignment = kernels.cover_groups(assignment, cell_feats, values, groups)
    return assignment if keep is None else keep[assignment].astype(np.int32)


def candidate_count(rules: Rules) -> int:
    """Candidates kept per cell: a distance rule of d cells can block the tiles of (2d+1)^2 - 1 neighbours, so
    a short rule needs fewer (each cell's search is cheaper; the assignment is the same, exact either way)."""
    return min(rules.candidates, max(MIN_CANDIDATES, (2 * rules.min_distance + 1) ** 2))


def tile_features(tiles: np.ndarray, rules: Rules) -> TileFeatures:
    """The tiles' weighted features in their principal frame: the same distances in the tiles' principal axes,
    so the first few features bound the rest and the exact searches skip most tiles after a few features."""
    feats = kernels.tile_features(tiles, rules.k) * _weights(rules)
    mean, rotation = kernels.principal_frame(feats)
    return TileFeatures(k=rules.k, lightness_weight=rules.lightness_weight, mean=mean, rotation=rotation,
                        values=kernels.to_frame(feats, (mean, rotation)))


def _weights(rules: Rules) -> np.ndarray:
    weights = np.ones(3 * rules.k * rules.k, dtype=np.float32)
    weights[0::3] = rules.lightness_weight  # features are (L, a, b) per block
    return weights


def visiting_order(best: np.ndarray, seed: int) -> np.ndarray:
    """Cells with the closest best match first (they lose most when a neighbour takes their tile);
    equal ones in a seeded random order, so no side of the picture is favoured."""
    tie_break = np.random.default_rng(seed).permutation(best.size)
    return np.lexsort((tie_break, best))


def _offsets(small: np.ndarray, tiles: np.ndarray, assignment: np.ndarray, blend: float,
             grid: int) -> tuple[np.ndarray | None, float]:
    """The colour-correction field: each ``grid`` x ``grid`` part of a tile moved ``blend`` of the way to its
    part of the cell (grid 1: one shift per cell); and the tile fidelity, how far that moved the tiles (mean
    ΔE2000 of their parts, kernels.tile_fidelity)."""
    if blend <= 0:
        return None, 0.0
    rows, cols = assignment.shape
    g = max(1, min(grid, tiles.shape[1], small.shape[0] // rows, small.shape[1] // cols))
    cell_rgb = _parts(kernels.block_means(small, rows * g, cols * g), rows, cols, g)
    used = np.unique(assignment)
    tile_rgb = np.zeros((tiles.shape[0], g, g, 3), dtype=np.float32)
    for start in range(0, used.size, PARTS_CHUNK):  # bounded copies of the tiles
        chunk = used[start : start + PARTS_CHUNK]
        column = tiles[chunk].reshape(-1, tiles.shape[2], 3)  # the tiles stacked vertically
        tile_rgb[chunk] = _parts(kernels.block_means(column, chunk.size * g, g), chunk.size, 1, g)[:, 0]
    offsets = kernels.blend_offsets(cell_rgb, tile_rgb, assignment, blend)
    return offsets, kernels.tile_fidelity(tile_rgb, offsets, assignment)


def _parts(means: np.ndarray, rows: int, cols: int, g: int) -> np.ndarray:
    """(rows*g, cols*g, 3) block means as (rows, cols, g, g, 3): each cell's g x g parts."""
    return np.ascontiguousarray(means.reshape(rows, g, cols, g, 3).transpose(0, 2, 1, 3, 4))


def _details(prepared: PreparedTiles, assignment: np.ndarray, rules: Rules, timings: Timings,
             data: bytes, fidelity: float = 0.0, usable: identity.Usable | None = None) -> dict[str, Any]:
    uses = np.bincount(assignment.ravel())
    rows, cols = assignment.shape
    px = prepared.tiles.shape[1]
    details: dict[str, Any] = {
        "grid": f"{cols}x{rows}", "width": cols * px, "height": rows * px, "bytes": len(data),
        "tiles_used": len(prepared.tiles), "tiles_skipped": len(prepared.skipped),
        "duplicate_tiles": prepared.duplicates, "cache_hits": prepared.cache_hits, "decoded": prepared.decoded,
        "distinct_tiles": int(np.count_nonzero(uses)), "max_reuse": int(uses.max()),
        "blend": round(rules.blend * 100, 2), "tile_fidelity_de": round(fidelity, 2),
        "min_distance": rules.min_distance, "max_uses": rules.max_uses,
        "features_k": rules.k, "timings": timings.seconds,
    }
    if usable is not None:  # repetition by picture: near-duplicates one group (pipeline/identity.py)
        details.update(_identity_details(prepared, assignment, usable))
    if prepared.skipped:
        details["skipped_reasons"] = prepared.skipped[:5]
    return details


def _identity_details(prepared: PreparedTiles, assignment: np.ndarray, usable: identity.Usable) -> dict[str, Any]:
    """Pictures (identity groups) matched on, tiles merged into another's group, avatars left out, and the
    most uses of one picture."""
    found = prepared.identity
    groups = found.groups if found is not None else np.arange(len(prepared.tiles), dtype=np.int32)
    per_picture = np.bincount(groups[assignment.ravel()])
    details: dict[str, Any] = {"identity_groups": usable.pictures, "pictures_used": int(np.count_nonzero(per_picture)),
                               "pictures_merged": usable.merged,
                               "avatars_skipped": usable.avatars_skipped, "max_reuse_picture": int(per_picture.max())}
    if usable.avatars_skipped:
        details["avatars_reason"] = "default avatars (a drawn silhouette, or one picture under many names) left out; " \
                                    "keep_avatars uses them"
    return details
