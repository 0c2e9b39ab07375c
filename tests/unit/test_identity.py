"""Picture identity: near-duplicate groups, default avatars, and the repetition rules counted per picture."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance

import kernels
from kernels import assign_tiles, nearest_candidates
from kernels.identity import dominant_share, linked_groups
from workers.pipeline import identity
from workers.pipeline.mosaic import match
from workers.pipeline.tiles import decode_tile
from workers.protocol.options import Rules

PX = 32


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


def photo(rng: np.random.Generator, size: int = 120, palette: np.ndarray | None = None) -> Image.Image:
    """A made-up photograph: soft blobs of a few colours on a gradient, with some grain."""
    y, x = np.mgrid[0:size, 0:size] / size
    colours = palette if palette is not None else rng.integers(0, 256, (4, 3))
    img = colours[0] * (1 - y[..., None]) + colours[1] * y[..., None]
    for colour in colours[2:]:
        for _ in range(3):
            cy, cx, r = rng.random(3) * [1, 1, 0.25] + [0, 0, 0.08]
            blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))[..., None]
            img = img * (1 - blob) + colour * blob
    img = img + rng.normal(0, 4, img.shape)
    return Image.fromarray(img.clip(0, 255).astype(np.uint8), "RGB")


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def tile(data: bytes) -> np.ndarray:
    got = decode_tile(data, PX, 10**8)
    assert not isinstance(got, str)
    return got


def variants(image: Image.Image) -> list[np.ndarray]:
    """The same picture resized, recompressed, cropped by 3 % and slightly brightened, as tiles."""
    w, h = image.size
    return [tile(jpeg(image.resize((w * 6 // 10, h * 6 // 10), Image.Resampling.LANCZOS))),
            tile(jpeg(image, 50)),
            tile(jpeg(image.crop((w * 3 // 100, h * 3 // 100, w, h)))),
            tile(jpeg(ImageEnhance.Brightness(image).enhance(1.06)))]


def silhouette(ground: tuple[int, int, int] = (223, 227, 238), figure: tuple[int, int, int] = (255, 255, 255),
               px: int = PX) -> np.ndarray:
    """The usual default avatar: a head and shoulders in one flat grey on another."""
    y, x = np.mgrid[0:px, 0:px] / px
    head = (x - 0.5) ** 2 + (y - 0.38) ** 2 < 0.18**2
    body = ((x - 0.5) / 0.36) ** 2 + ((y - 1.05) / 0.38) ** 2 < 1
    out = np.empty((px, px, 3), np.uint8)
    out[:] = ground
    out[head | body] = figure
    return out


def test_near_duplicates_join_their_original(rng: np.random.Generator) -> None:
    photos = [photo(rng) for _ in range(12)]
    originals = [tile(jpeg(p)) for p in photos]
    copies = [v for p in photos for v in variants(p)]
    found = identity.identify(np.stack(originals + copies))
    groups = found.groups
    assert len(set(groups[:12].tolist())) == 12  # different photos stay apart
    np.testing.assert_array_equal(groups[12:].reshape(12, 4), np.repeat(groups[:12, None], 4, axis=1))
    assert found.merged == 48 and not found.avatars.any()


def test_alike_colours_are_not_one_picture(rng: np.random.Generator) -> None:
    # The same palette on the same ground, different layouts: similar colours, different pictures.
    palette = rng.integers(0, 256, (4, 3))
    palette[1] = palette[0]
    tiles = np.stack([tile(jpeg(photo(rng, palette=palette))) for _ in range(20)])
    found = identity.identify(tiles)
    assert len(np.unique(found.groups)) == 20


def test_flat_crops_of_one_colour_are_one_picture(rng: np.random.Generator) -> None:
    sky = np.stack([np.full((PX, PX, 3), (70, 120, 200)) + rng.normal(0, 1.5, (PX, PX, 3)) for _ in range(6)])
    other = np.full((2, PX, PX, 3), (200, 120, 70))
    found = identity.identify(np.concatenate([sky, other]).clip(0, 255).astype(np.uint8))
    assert found.groups.tolist() == [0] * 6 + [1, 1] and not found.avatars.any()


def flat(colours: np.ndarray, rng: np.random.Generator, noise: float = 1.0) -> np.ndarray:
    """Flat crops, one per RGB colour, with a little grain."""
    tiles = colours[:, None, None, :] + rng.normal(0, noise, (len(colours), PX, PX, 3))
    return tiles.clip(0, 255).astype(np.uint8)


def test_a_run_of_close_flat_colours_is_one_picture(rng: np.random.Generator) -> None:
    # Night sky crops from dark to lighter navy (about 20 L* in all), in no order: a viewer sees one flat blue,
    # as the bench does; each joins through its neighbours, not only those close to the first.
    run = np.linspace([4, 6, 28], [40, 52, 98], 40)[rng.permutation(40)]
    found = identity.identify(np.concatenate([flat(run, rng), flat(np.array([[200, 120, 70]] * 2), rng)]))
    assert found.groups.tolist() == [0] * 40 + [1, 1]
    mean = identity.signatures(flat(run, rng))[2]
    assert np.ptp(mean[:, 0]) > 2 * identity.MEAN_L  # wider than any one tile's own reach


def test_dark_crops_of_close_colour_are_one_picture(rng: np.random.Generator) -> None:
    # Dark blues a viewer tells apart by their lightness, hardly by their chroma: CIELAB says 4-5 apart, the
    # compressed chroma under NEAR_DE. A dark red of the same lightness stays apart.
    tiles = flat(np.array([[6, 10, 30], [7, 13, 38], [10, 20, 60], [12, 24, 70], [60, 8, 8]]), rng, 0.5)
    assert identity.identify(tiles).groups.tolist() == [0, 0, 1, 1, 2]
    # Two flat greys 6 L* apart, with nothing in between: two tones, not one picture (a textured photo and its
    # brightened copy may differ by that much; a flat crop has no pattern to tell it is the same picture).
    assert identity.identify(flat(np.array([[100] * 3, [115] * 3]), rng, 0.5)).groups.tolist() == [0, 1]


def test_a_gradient_of_flat_colours_is_not_one_picture(rng: np.random.Generator) -> None:
    # Grey from black to white in steps a viewer cannot see: linked all along, but a group stops at its span.
    grey = np.repeat(np.linspace(0, 255, 200)[:, None], 3, axis=1)
    for order in (np.arange(200), rng.permutation(200)):
        tiles = flat(grey[order], rng)
        groups = identity.identify(tiles).groups
        mean = identity.signatures(tiles)[2]
        assert len(set(groups.tolist())) >= 4
        for g in set(groups.tolist()):
            assert np.ptp(mean[groups == g, 0]) <= identity.EXTENT_L


def test_default_avatars_are_found(rng: np.random.Generator) -> None:
    photos = [tile(jpeg(photo(rng))) for _ in range(10)]
    same = photo(rng)
    copies = [tile(jpeg(same, 70 + i)) for i in range(20)]  # one picture under 20 names
    drawn = [silhouette(), silhouette((190, 190, 190), (120, 120, 120)), silhouette((60, 60, 70), (140, 140, 140))]
    found = identity.identify(np.stack(photos + copies + drawn))
    assert found.avatars.tolist() == [False] * 10 + [True] * 23
    assert len(set(found.groups[10:30].tolist())) == 1
    kept = identity.usable(found, 33, keep_avatars=False)
    assert kept.keep is not None and kept.keep.tolist() == list(range(10)) and kept.avatars_skipped == 23
    assert kept.pictures == 10 and kept.groups.tolist() == list(range(10))
    everything = identity.usable(found, 33, keep_avatars=True)
    assert everything.keep is None and everything.avatars_skipped == 0 and everything.pictures == 14
    assert everything.merged == 20 - 1  # the copies; the three placeholders differ in their greys


def test_only_avatars_are_kept_rather_than_nothing() -> None:
    found = identity.identify(np.stack([silhouette()] * 3))
    assert found.avatars.all()
    assert identity.usable(found, 3, keep_avatars=False).keep is None


def test_identity_is_deterministic(rng: np.random.Generator) -> None:
    tiles = np.stack([tile(jpeg(photo(rng))) for _ in range(8)] * 3)
    a, b = identity.identify(tiles), identity.identify(tiles.copy())
    np.testing.assert_array_equal(a.groups, b.groups)
    np.testing.assert_array_equal(a.avatars, b.avatars)
    assert a.groups.tolist() == list(range(8)) * 3  # numbered by each group's first tile


Limits = tuple[float, float, float, float, float, float, float]


def ref_linked_groups(near: np.ndarray, pattern: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                      textured: np.ndarray, limits: Limits, rounds: tuple[float, ...]) -> list[int]:
    """Plain union-find over all earlier tiles: per round, each tile joins the groups of the tiles linked to it,
    in the order of their first tile, where the joined box of mean colours fits."""
    max_near, max_rms, max_l, max_ab, max_ratio, extent_l, extent_ab = limits
    n, blocks = len(near), near.shape[1] // 3
    parent = list(range(n))
    low, high = mean.astype(np.float64).copy(), mean.astype(np.float64).copy()

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    def linked(i: int, q: int, f: float) -> bool:
        if ((near[i].astype(np.float64) - near[q]) ** 2).sum() <= (f * max_near) ** 2 * blocks:
            return True
        return bool(textured[i] and textured[q] and abs(mean[i, 0] - mean[q, 0]) <= f * max_l
                    and np.abs(mean[i, 1:] - mean[q, 1:]).max() <= f * max_ab
                    and max(scale[i] / scale[q], scale[q] / scale[i]) <= 1 + f * (max_ratio - 1)
                    and ((pattern[i].astype(np.float64) - pattern[q]) ** 2).sum()
                    <= (f * max_rms) ** 2 * pattern.shape[1])

    for f in rounds:
        for i in range(n):
            for r in sorted({find(q) for q in range(i) if linked(i, q, f)}):
                a, b = find(i), find(r)
                lo, hi = np.minimum(low[a], low[b]), np.maximum(high[a], high[b])
                if a != b and hi[0] - lo[0] <= extent_l and (hi[1:] - lo[1:]).max() <= extent_ab:
                    keep, gone = min(a, b), max(a, b)
                    parent[gone], low[keep], high[keep] = keep, lo, hi
    roots = [find(i) for i in range(n)]
    first = sorted(set(roots))
    return [first.index(r) for r in roots]


Inputs = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def linked_inputs(rng: np.random.Generator, n: int, blocks: int) -> Inputs:
    """Tiles in clusters: near signatures and patterns around a few centres, mean colours in runs."""
    centres = rng.normal(0, 1, (max(1, n // 6), blocks * 3)).astype(np.float32) * 4
    which = rng.integers(0, len(centres), n)
    near = centres[which] + rng.normal(0, 0.8, (n, blocks * 3))
    near[:, 0::3] += np.linspace(0, 60, n)[rng.permutation(n), None]  # lightness and a* in runs: extents bite
    near[:, 1::3] += np.linspace(-12, 12, n)[rng.permutation(n), None]
    near = near.astype(np.float32)
    mean = near.reshape(n, blocks, 3).mean(axis=1).astype(np.float32)
    pattern = ((centres[which][:, 0::3] + rng.normal(0, 0.3, (n, blocks))) / 4).astype(np.float32)
    scale = (rng.random(n) * 20 + 4).astype(np.float32)
    return near, pattern, mean, scale, rng.random(n) < 0.7


@pytest.mark.parametrize(("n", "blocks", "limits", "rounds"), [
    (300, 16, (2.5, 0.8, 10.0, 8.0, 1.5, 25.0, 20.0), (0.25, 0.5, 0.75, 1.0)),
    (97, 5, (4.0, 1.5, 30.0, 20.0, 3.0, 12.0, 9.0), (1.0,)),
    (1, 3, (1.0, 0.1, 1.0, 1.0, 1.0, 0.0, 0.0), (0.5, 1.0)),
    (120, 4, (5.0, 0.0, 0.5, 0.5, 1.0, 1000.0, 1000.0), (1.0, 0.5))])
def test_linked_groups_match_reference(rng: np.random.Generator, n: int, blocks: int, limits: Limits,
                                       rounds: tuple[float, ...]) -> None:
    inputs = linked_inputs(rng, n, blocks)
    got, count = linked_groups(*inputs, limits, rounds)
    assert got.dtype == np.int32 and got.shape == (n,) and count == int(got.max()) + 1
    want = ref_linked_groups(*inputs, limits, rounds)
    assert got.tolist() == want
    if n > 50:
        assert 1 < count < n * 0.9  # the links and the extents both bite on these inputs


def test_linked_groups_join_the_closest_first() -> None:
    # Two dense runs of flat colour (12-16 and 38-42 L*, too wide apart for one group) and a sparse bridge
    # between them, met first. In one pass the runs' tiles take turns to join the bridge's group until it is full,
    # each run split in two; in rounds of growing limits each run is whole before the bridge links anything.
    bridge = np.arange(18.0, 37.0, 3.0)
    runs = np.stack([np.arange(16.0, 11.9, -0.5), np.arange(38.0, 42.1, 0.5)], axis=1).ravel()  # A, B in turns
    light = np.concatenate([bridge, runs]).astype(np.float32)
    near = np.zeros((len(light), 3), np.float32)
    near[:, 0] = light
    pattern, scale, textured = np.zeros((len(light), 1), np.float32), np.ones(len(light), np.float32), \
        np.zeros(len(light), bool)
    limits = (identity.NEAR_DE, 0.3, 8.0, 6.0, 1.5, identity.EXTENT_L, identity.EXTENT_AB)
    for rounds, whole in ((identity.ROUNDS, True), ((1.0,), False)):
        groups, _ = linked_groups(near, pattern, near.copy(), scale, textured, limits, rounds)
        a, b = groups[len(bridge) :: 2], groups[len(bridge) + 1 :: 2]
        assert (len(set(a.tolist())) == 1 and len(set(b.tolist())) == 1 and a[0] != b[0]) == whole
        assert groups.tolist() == ref_linked_groups(near, pattern, near, scale, textured, limits, rounds)


def test_linked_groups_rejects_bad_input(rng: np.random.Generator) -> None:
    near, pattern, mean, scale, textured = linked_inputs(rng, 3, 4)
    limits = (3.5, 0.3, 8.0, 6.0, 1.5, 25.0, 20.0)
    with pytest.raises(ValueError):
        linked_groups(near, pattern.astype(np.float64), mean, scale, textured, limits)
    with pytest.raises(ValueError, match="shapes"):
        linked_groups(near, pattern, mean[:2], scale, textured, limits)
    with pytest.raises(ValueError, match="textured"):
        linked_groups(near, pattern, mean, scale, textured.astype(np.int8), limits)
    with pytest.raises(ValueError, match="limits"):
        linked_groups(near, pattern, mean, scale, textured, (3.5, 0.3, 0.0, 6.0, 1.5, 25.0, 20.0))
    with pytest.raises(ValueError, match="rounds"):
        linked_groups(near, pattern, mean, scale, textured, limits, (0.5, 1.5))
    with pytest.raises(ValueError, match="positive"):
        linked_groups(near, pattern, mean, np.zeros(3, np.float32), textured, limits)
    empty, count = linked_groups(near[:0], pattern[:0], mean[:0], scale[:0], textured[:0], limits)
    assert empty.shape == (0,) and count == 0


@pytest.mark.parametrize(("levels", "top"), [(8, 1), (8, 2), (4, 3), (1, 1)])
def test_dominant_share_matches_reference(rng: np.random.Generator, levels: int, top: int) -> None:
    tiles = rng.integers(0, 256, (7, 9, 11, 3), dtype=np.uint8)
    tiles[:3] //= 64  # few colours
    tiles[3] = 17
    got = dominant_share(tiles, levels, top)
    binned = (tiles.astype(np.int64) * levels) // 256
    codes = (binned[..., 0] * levels + binned[..., 1]) * levels + binned[..., 2]
    ref = [np.sort(np.bincount(c.ravel(), minlength=levels**3))[::-1][:top].sum() / c.size for c in codes]
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert got[3] == 1.0


def test_rules_count_pictures_on_the_output(rng: np.random.Generator) -> None:
    # 20 pictures, 3 files each: on a flat target every cell wants the same few; cap and distance hold per picture.
    base = rng.integers(0, 256, (20, 4, 4, 3))
    base[:, :2] //= 4  # a dark top half: pictures, not flat colours (those the distance rule leaves alone)
    tiles = np.repeat(base, 3, axis=0)
    tiles = (tiles + rng.integers(-1, 2, tiles.shape)).clip(0, 255).astype(np.uint8)
    groups = np.repeat(np.arange(20, dtype=np.int32), 3)
    usable = identity.Usable(keep=None, groups=groups, pictures=20, merged=40, avatars_skipped=0)
    small = np.full((10 * 4, 12 * 4, 3), 128, dtype=np.uint8)
    rules = Rules(k=2, lightness_weight=3.0, blend=0.0, min_distance=1, max_uses=7, penalty=0.0, candidates=8,
                  seed=1)
    assignment = match(small, tiles, 10, 12, rules, usable=usable)
    picture = groups[assignment]
    assert np.bincount(picture.ravel()).max() <= 7
    for r, c in np.ndindex(picture.shape):
        near = picture[max(0, r - 1) : r + 2, max(0, c - 1) : c + 2]
        assert np.count_nonzero(near == picture[r, c]) == 1
    per_file = match(small, tiles, 10, 12, rules)  # counted per file, copies of one picture sit side by side
    assert np.bincount(groups[per_file.ravel()]).max() > 7


def test_avatars_left_out_of_the_match(rng: np.random.Generator) -> None:
    tiles = np.stack([tile(jpeg(photo(rng))) for _ in range(30)] + [silhouette()])
    found = identity.identify(tiles)
    small = np.repeat(np.repeat(tiles[-1:, ::4, ::4], 6, axis=0).reshape(48, 8, 3), 6, axis=1)  # the avatar itself
    rules = Rules(k=2, lightness_weight=3.0, blend=0.0, min_distance=0, max_uses=0, penalty=0.0, candidates=8,
                  seed=1)
    rows, cols = 6, 6
    small = np.ascontiguousarray(small[: rows * 8, : cols * 8])
    without = match(small, tiles, rows, cols, rules, usable=identity.usable(found, len(tiles), False))
    with_them = match(small, tiles, rows, cols, rules, usable=identity.usable(found, len(tiles), True))
    assert 30 not in without and 30 in with_them


def test_assign_kernel_groups_direct(rng: np.random.Generator) -> None:
    # Two files of one picture and a third picture: at cap 2 per picture, four cells take both pictures twice.
    cells = np.zeros((4, 3), np.float32)
    tiles = np.array([[0, 0, 0], [0.1, 0, 0], [5, 5, 5]], np.float32)
    idx, dist = nearest_candidates(cells, tiles, 3)
    got = assign_tiles(idx, dist, cells, tiles, (1, 4), np.arange(4), 0, 2, groups=np.array([0, 0, 1], np.int32))
    assert got.ravel().tolist() == [0, 0, 2, 2]


def test_a_jobs_details_count_pictures_not_files(rng: np.random.Generator, tmp_path: object) -> None:
    """Ten photos, one of them also under four more names (resized, recompressed…): the job's details say
    14 files made 10 pictures, and no picture is used more than the cap allows for one."""
    import config
    from tests.helpers.images import MemorySource
    from workers.pipeline.mosaic import build_mosaic
    from workers.protocol.options import Options
    from workers.protocol.package import JobPackage

    photos = [photo(rng) for _ in range(10)]
    files = {f"tile{i}.jpg": jpeg(image) for i, image in enumerate(photos)}
    w, h = photos[0].size
    copies = [jpeg(photos[0].resize((w * 6 // 10, h * 6 // 10))), jpeg(photos[0], 50),
              jpeg(photos[0].crop((w * 3 // 100, h * 3 // 100, w, h))),
              jpeg(ImageEnhance.Brightness(photos[0]).enhance(1.06))]
    files.update({f"tile{10 + i}.jpg": data for i, data in enumerate(copies)})
    files["target.png"] = jpeg(photo(rng, 160))
    settings = config.load(env={"TESSERA_PATHS_ROOT": str(tmp_path), "TESSERA_MOSAIC_DECODE_PROCESSES": "1"})
    options = Options(cols=6, rows=4, tile_px=8, seed=1, max_uses=3)  # 24 cells: room for 30 uses of 10 pictures
    package = JobPackage.create("target.png", [f"tile{i}.jpg" for i in range(14)], options, job_id="job")
    details = build_mosaic(package, MemorySource(files), settings, fmt="png").details
    assert details["pictures_merged"] == 4 and details["identity_groups"] == 10
    assert details["avatars_skipped"] == 0 and details["max_reuse_picture"] <= 3


def test_flat_colours_are_not_spaced_by_the_distance_rule(rng: np.random.Generator) -> None:
    """A flat crop has nothing to recognise: the distance rule leaves its group alone; a photo's group is spaced."""
    flat = np.full((2, PX, PX, 3), (30, 40, 120), np.uint8)
    palette = np.array([[10, 10, 10], [240, 240, 240], [200, 30, 30]])  # dark to light: a picture's contrast
    tiles = np.concatenate([flat, np.stack([tile(jpeg(photo(rng, palette=palette))) for _ in range(3)])])
    features = kernels.tile_features(tiles, 4) * np.tile(np.array([3.0, 1.0, 1.0], np.float32), 16)
    groups = np.array([0, 0, 1, 2, 3], np.int32)
    assert identity.spaced(features, 3.0, groups).tolist() == [False, True, True, True]


def test_count_by_file_makes_each_file_its_own_picture(rng: np.random.Generator) -> None:
    """mosaic.count_by_file: near-duplicates stay apart in the groups the rules count (metapixel's counting);
    default avatars are still left out."""
    photos = [photo(rng) for _ in range(6)]
    tiles = np.stack([*(tile(jpeg(image)) for image in photos), tile(jpeg(photos[0], 50)), silhouette(),
                      silhouette()])
    found = identity.identify(tiles)
    grouped = identity.usable(found, len(tiles), False)
    assert grouped.pictures == 6 and grouped.merged == 1
    by_file = identity.usable(found, len(tiles), False, by_file=True)
    assert by_file.pictures == 7 and by_file.merged == 0 and by_file.groups.tolist() == list(range(7))
    assert by_file.keep is not None and grouped.keep is not None
    assert by_file.keep.tolist() == grouped.keep.tolist() == list(range(7))


def test_space_flat_spaces_flat_pictures_too(rng: np.random.Generator) -> None:
    """mosaic.space_flat: on a flat target matching one flat tile best, the distance rule keeps that tile out of
    its own neighbourhood (metapixel's rule: every tile); without it the flat tile may touch itself."""
    flat = np.full((1, 4, 4, 3), 128, np.uint8)
    others = rng.integers(0, 256, (24, 4, 4, 3)).astype(np.uint8)
    others[:, :2] //= 4  # pictures with contrast: spaced either way
    tiles = np.concatenate([flat, others])
    small = np.full((8 * 4, 8 * 4, 3), 128, dtype=np.uint8)
    rules = Rules(k=2, lightness_weight=3.0, blend=0.0, min_distance=1, max_uses=0, penalty=0.0, candidates=8,
                  seed=1)
    exempt = match(small, tiles, 8, 8, rules)
    assert np.count_nonzero(exempt == 0) > 16  # the flat tile wherever it is nearest: side by side
    spaced = match(small, tiles, 8, 8, dataclasses.replace(rules, space_flat=True))
    for r, c in np.ndindex(spaced.shape):
        near = spaced[max(0, r - 1) : r + 2, max(0, c - 1) : c + 2]
        assert np.count_nonzero(near == spaced[r, c]) == 1


def test_use_all_uses_every_picture_on_a_job(rng: np.random.Generator, tmp_path: object) -> None:
    """Option use_all: with 24 cells and 12 pictures (two of them also under another name), every picture is
    placed at least once (the job's details count them), and the distance rule still holds per picture; without
    it, a target of few colours leaves pictures out."""
    import config
    from tests.helpers.images import MemorySource
    from workers.pipeline.mosaic import build_mosaic
    from workers.protocol.options import Options, parse_options
    from workers.protocol.package import JobPackage

    photos = [photo(rng) for _ in range(12)]
    files = {f"tile{i}.jpg": jpeg(image) for i, image in enumerate(photos)}
    files.update({"tile12.jpg": jpeg(photos[0], 50), "tile13.jpg": jpeg(photos[1], 50)})
    files["target.png"] = jpeg(photo(rng, 160, palette=np.array([[20, 20, 20], [40, 40, 40], [30, 30, 30]])))
    settings = config.load(env={"TESSERA_PATHS_ROOT": str(tmp_path), "TESSERA_MOSAIC_DECODE_PROCESSES": "1"})
    raw = {"grid": "6x4", "tile_px": "8", "seed": "1", "min_distance": "1", "use_all": "on"}
    options = parse_options(raw, "6x4", 8)
    assert options.use_all and parse_options({**raw, "use_all": ""}, "6x4", 8) == Options(
        cols=6, rows=4, tile_px=8, seed=1, min_distance=1)
    tiles = [f"tile{i}.jpg" for i in range(14)]
    package = JobPackage.create("target.png", tiles, options, job_id="job")
    assert JobPackage.decode(package.encode()).options.use_all  # the option travels in the package
    done = build_mosaic(package, MemorySource(files), settings, fmt="png", deepzoom=True)
    assert done.details["identity_groups"] == 12 and done.details["pictures_used"] == 12
    plain = JobPackage.create("target.png", tiles, Options(cols=6, rows=4, tile_px=8, seed=1, min_distance=1),
                              job_id="job2")
    assert build_mosaic(plain, MemorySource(files), settings, fmt="png").details["pictures_used"] < 12
