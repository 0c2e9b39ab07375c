"""Which tiles show one picture: near-duplicate groups (the same photo resized, recompressed, slightly cropped or
brightened; flat crops of one colour) and default avatars (a drawn silhouette, one picture under many names).

The repetition rules (min_distance, max_uses, the default cap) count these groups, not files: a viewer sees one
picture, however many files it came from. A tile's signatures come from its 8 x 8 CIELAB thumbnail: the
thumbnail itself with its chroma compressed as DIN99 compresses it (a viewer tells dark or strong colours
apart by less of a*, b* than pale ones), compared block by block (NEAR_DE); and the lightness pattern, less its
mean and divided by its contrast (a contrast under CONTRAST_FLOOR counts as that floor), with its mean colour,
so that a brightened or recoloured copy of a textured photo is still alike. Linked tiles join transitively
(kernels.identity.linked_groups, union-find), closest links first, as a viewer merges a run of ever so slightly
different flat crops; a group stops growing where its mean colours would span more than EXTENT_L / EXTENT_AB,
so a smooth gradient of flat colours is not one picture. Computed once per tile set and kept with it
(tiletypes.PreparedTiles.identity, tilememo).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

import kernels
from kernels.identity import dominant_share, linked_groups
from workers.pipeline.tiletypes import Identity

# Changing a limit below changes the groups: bump tiletypes.IDENTITY_VERSION, so remembered sets are grouped again.

SIDE = 8
"""Thumbnail blocks per side (fewer when the tiles are smaller)."""
CONTRAST_FLOOR = 6.0
"""Lightness contrast (standard deviation, L* units) under which a tile's pattern is not scaled up: flat tiles
are alike by colour, their noise does not make them different."""
PATTERN_RMS = 0.3
"""Most root-mean-square difference of two normalised lightness patterns (1.0 = one contrast) for one picture:
correlation 0.955 and up. Resized, recompressed, 3 %-cropped and brightened copies of the bench's photos stay
under 0.2; different photos, however alike in layout, over 0.45 (see tests/unit/test_identity.py)."""
MEAN_L, MEAN_AB = 8.0, 6.0
"""Most difference of mean lightness (L*) and of mean a*, b* for one picture."""
CONTRAST_RATIO = 1.5
"""Most ratio of the two contrasts (each at least CONTRAST_FLOOR) for one picture."""
TEXTURED = 4.0
"""Least lightness contrast (L* standard deviation) of a tile linked by its pattern: a flatter one is linked
only by its thumbnail (NEAR_DE), or a run of flat crops would step 8 L* at a time."""
NEAR_DE = 3.5
"""Most root-mean-square colour difference over the thumbnail's blocks (CIELAB, chroma compressed) of two
linked tiles: recompressed, resized and flat crops of one colour stay well under it. On the bench's 10,000
tiles, 2.0 cuts its run of 146 near-black crops (one picture to a viewer and to bench/mosaic.py) into 11 groups;
at 3.5 it is one group, and every such run of 20 files or more at most two."""
CHROMA_K = 0.045
"""DIN99's chroma compression: a chroma C counts as ln(1 + K C) / K (CIE94's S_C = 1 + K C, integrated). Without
it the run of 146 near-black crops above is 9 groups: their a*, b* wander by 14 where L* moves by 2."""
EXTENT_L, EXTENT_AB = 25.0, 20.0
"""Most span of a group's mean L*, and of its mean a* and b*: where a transitive run of flat colours stops. A
gradient from black to white is four groups or more; the bench's widest run a viewer sees as one spans 23 L*."""
ROUNDS = (0.25, 0.5, 0.75, 1.0)
"""The link limits' fractions, one pass each: the closest tiles join first, so a group that reaches its span
holds its nearest tiles, not those it happened to meet first (one pass at 1.0 splits the run of 146 in two, and
W2's Dragonfly used that one picture 230 times under the cap of 115)."""
AVATAR_COPIES = 12
"""A group with this many copies or more (files alike to its first to COPY_RMS and COPY_COLOUR, and with
DETAIL) is a default avatar: the same picture under many names. Flat crops (one colour) are never copies."""
COPY_RMS, COPY_COLOUR = 0.12, 2.0
"""Most pattern difference and mean colour difference (L*, a*, b* each) of a copy (resized or recompressed)."""
DETAIL = 4.0
"""Least lightness contrast (L* standard deviation) of a copy or drawn placeholder: a figure on a ground."""
AVATAR_SHARE = 0.9
"""A picture with this share of its pixels in its two commonest colours (8 levels per channel), of which
at least AVATAR_FIGURE in the second, and a mean chroma (a*, b*) of at most AVATAR_CHROMA, is a drawn
placeholder (a grey silhouette on a flat ground), not a photograph."""
AVATAR_FIGURE, AVATAR_CHROMA = 0.12, 10.0
FLAT_L = 4.0
"""Least lightness contrast (L* standard deviation over a tile's k x k feature blocks: what the mosaic shows of
it) of a picture the distance rule spaces out. Under it a tile is a flat colour with nothing to recognise, and
two side by side read as one flat area of the photo, as the photo's own flat areas do (W1, --blend 0
--min-distance 5: SSIM +0.026 / +0.034 / +0.041 on Dragonfly / friends / goldfish)."""
RING_FLAT, FIGURE_L = 2.0, 4.0
"""Most lightness spread (L*) of a placeholder's top, left and right edges (its flat ground), and least
difference of its figure (the middle, and the middle of the bottom edge) from the ground."""


def signatures(tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per tile: its thumbnail, chroma compressed, float32 (N, S*S*3); its normalised lightness pattern, float32
    (N, S*S); mean (L, a, b), float32 (N, 3); contrast."""
    side = max(1, min(SIDE, tiles.shape[1], tiles.shape[2]))
    lab = kernels.tile_features(tiles, side).reshape(len(tiles), side * side, 3)
    light = lab[:, :, 0]
    mean = lab.mean(axis=1)
    contrast = light.std(axis=1)
    pattern = (light - mean[:, :1]) / np.maximum(contrast, CONTRAST_FLOOR)[:, None]
    chroma = np.hypot(lab[:, :, 1], lab[:, :, 2])
    shrink = np.log1p(CHROMA_K * chroma) / (CHROMA_K * np.maximum(chroma, 1e-6))  # 1 at no chroma, less above
    near = np.concatenate([light[:, :, None], lab[:, :, 1:] * shrink[:, :, None]], axis=2).reshape(len(tiles), -1)
    return (np.ascontiguousarray(near, dtype=np.float32), np.ascontiguousarray(pattern, dtype=np.float32),
            mean.astype(np.float32), contrast.astype(np.float32))


def identify(tiles: np.ndarray) -> Identity:
    """The identity groups and default avatars of uint8 tiles (N, px, px, 3)."""
    n = len(tiles)
    if n == 0:
        return Identity(groups=np.empty(0, np.int32), avatars=np.empty(0, bool))
    near, pattern, mean, contrast = signatures(tiles)
    scale = np.maximum(contrast, np.float32(CONTRAST_FLOOR))
    limits = (NEAR_DE, PATTERN_RMS, MEAN_L, MEAN_AB, CONTRAST_RATIO, EXTENT_L, EXTENT_AB)
    groups, count = linked_groups(near, pattern, mean, scale, contrast >= TEXTURED, limits, ROUNDS)
    leaders = np.unique(groups, return_index=True)[1]  # the first tile of each group, in group order
    lead = leaders[groups]
    copy = ((np.sqrt(((pattern - pattern[lead]) ** 2).mean(axis=1)) <= COPY_RMS)
            & (np.abs(mean - mean[lead]).max(axis=1) <= COPY_COLOUR) & (contrast >= DETAIL))
    copies = np.bincount(groups[copy], minlength=count)
    drawn = _drawn(tiles, leaders, pattern, mean, contrast)
    avatar_group = (copies >= AVATAR_COPIES) | drawn
    return Identity(groups=groups, avatars=avatar_group[groups])


def _drawn(tiles: np.ndarray, leaders: np.ndarray, pattern: np.ndarray, mean: np.ndarray,
           contrast: np.ndarray) -> np.ndarray:
    """Which leaders are drawn placeholders: a grey figure in the middle of a flat ground, two colours in all."""
    side = int(round(pattern.shape[1] ** 0.5))
    light = pattern[leaders].reshape(-1, side, side) * np.maximum(contrast[leaders], CONTRAST_FLOOR)[:, None, None]
    ring = np.concatenate([light[:, 0, :], light[:, 1:, 0], light[:, 1:, -1]], axis=1)  # top, left, right edges, full
    middle = light[:, side // 4 : side - side // 4, side // 4 : side - side // 4].reshape(len(leaders), -1)
    ground = ring.mean(axis=1)
    shoulders = light[:, -1, side // 2 - 1 : side // 2 + 1].mean(axis=1)  # the figure reaches the bottom edge
    maybe = ((contrast[leaders] >= FIGURE_L / 2) & (np.hypot(mean[leaders, 1], mean[leaders, 2]) <= AVATAR_CHROMA)
             & (ring.std(axis=1) <= RING_FLAT) & (np.abs(middle.mean(axis=1) - ground) >= FIGURE_L)
             & (np.abs(shoulders - ground) >= FIGURE_L))
    drawn = np.zeros(len(leaders), dtype=bool)
    which = np.flatnonzero(maybe)
    if which.size:
        picked = tiles[leaders[which]]
        share1, share2 = dominant_share(picked, 8, 1), dominant_share(picked, 8, 2)
        drawn[which] = (share2 >= AVATAR_SHARE) & (share2 - share1 >= AVATAR_FIGURE)
    return drawn


@dataclass(frozen=True)
class Usable:
    """The tiles a build matches on and the groups the repetition rules count (see :func:`usable`)."""

    keep: np.ndarray | None
    """int64 indices of the tiles matched on, in order; None: all of them."""
    groups: np.ndarray
    """int32: the group of each tile matched on, numbered 0, 1, ... (one picture: one group)."""
    pictures: int
    """Groups among the tiles matched on: what the default cap and distance rule count."""
    merged: int
    """Tiles matched on that joined another's group."""
    avatars_skipped: int


def usable(found: Identity | None, count: int, keep_avatars: bool, by_file: bool = False) -> Usable:
    """What a build of ``count`` tiles matches on: without default avatars unless ``keep_avatars`` (or every tile
    is one), groups renumbered over what is kept. No identity, or ``by_file`` (mosaic.count_by_file): every tile
    its own group, as metapixel counts."""
    if by_file and found is not None:  # avatars still left out; near-duplicates each their own picture
        grouped = usable(found, count, keep_avatars)
        files = len(grouped.groups)
        return replace(grouped, groups=np.arange(files, dtype=np.int32), pictures=files, merged=0)
    if found is None or len(found.groups) != count:
        return Usable(keep=None, groups=np.arange(count, dtype=np.int32), pictures=count, merged=0,
                      avatars_skipped=0)
    skip = 0 if keep_avatars or found.avatars.all() else int(found.avatars.sum())
    keep = np.flatnonzero(~found.avatars) if skip else None
    kept = found.groups if keep is None else found.groups[keep]
    _, groups = np.unique(kept, return_inverse=True)  # order kept: groups are numbered by their first tile
    pictures = int(groups.max()) + 1 if len(groups) else 0
    return Usable(keep=keep, groups=groups.astype(np.int32), pictures=pictures, merged=len(kept) - pictures,
                  avatars_skipped=skip)


def spaced(features: np.ndarray, lightness_weight: float, groups: np.ndarray) -> np.ndarray:
    """Which picture groups the distance rule applies to: those with a tile of lightness contrast FLAT_L or more.

    ``features``: the tiles' weighted features (N, k*k*3) as kernels.tile_features makes them, times the
    lightness weight on L*; ``groups``: int32 (N,), numbered 0..G-1. Returns bool (G,)."""
    light = features[:, 0::3] / np.float32(max(lightness_weight, 1e-6))
    detailed = light.std(axis=1) >= FLAT_L
    out = np.zeros(int(groups.max()) + 1 if len(groups) else 0, dtype=bool)
    np.logical_or.at(out, groups, detailed)
    return out
