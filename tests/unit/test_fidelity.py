"""Tile fidelity: CIEDE2000 against published values, the cheap figure against every pixel, the job's details."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import config
from config import Settings
from kernels import render, tile_fidelity
from kernels.fidelity import ciede2000
from tests.helpers.images import MemorySource
from tests.unit.kernel_refs import srgb_to_lab
from workers.pipeline.mosaic import build_mosaic
from workers.protocol.options import Options
from workers.protocol.package import JobPackage

# Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula", Table 1: pairs 1, 7, 13, 17, 19, 25, 34.
SHARMA = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0011), 7.2195),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (50.0, 3.1736, 0.5854), 1.0000),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


def ref_ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 in NumPy over ``(..., 3)`` arrays, written from the paper's equations."""
    l1, a1, b1 = np.moveaxis(lab1.astype(np.float64), -1, 0)
    l2, a2, b2 = np.moveaxis(lab2.astype(np.float64), -1, 0)
    c7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c7 / (c7 + 25.0**7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p, h2p = np.degrees(np.arctan2(b1, a1p)) % 360, np.degrees(np.arctan2(b2, a2p)) % 360
    zero = c1p * c2p == 0
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(zero, 0.0, dh)
    hsum = h1p + h2p
    hbar = np.where(np.abs(h1p - h2p) <= 180, hsum / 2, np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2))
    hbar = np.where(zero, hsum, hbar)
    dhh = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    lbar, cbar = (l1 + l2) / 2, (c1p + c2p) / 2
    t = (1 - 0.17 * np.cos(np.radians(hbar - 30)) + 0.24 * np.cos(np.radians(2 * hbar))
         + 0.32 * np.cos(np.radians(3 * hbar + 6)) - 0.20 * np.cos(np.radians(4 * hbar - 63)))
    rt = -np.sin(np.radians(60 * np.exp(-(((hbar - 275) / 25) ** 2)))) * 2 * np.sqrt(cbar**7 / (cbar**7 + 25.0**7))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / np.sqrt(20 + (lbar - 50) ** 2)
    sc, sh = 1 + 0.045 * cbar, 1 + 0.015 * cbar * t
    fl, fc, fh = (l2 - l1) / sl, (c2p - c1p) / sc, dhh / sh
    return np.sqrt(fl**2 + fc**2 + fh**2 + rt * fc * fh)


@pytest.mark.parametrize(("lab1", "lab2", "expected"), SHARMA)
def test_ciede2000_published_values(lab1: tuple[float, ...], lab2: tuple[float, ...], expected: float) -> None:
    assert ciede2000(*lab1, *lab2) == pytest.approx(expected, abs=1e-4)
    assert ciede2000(*lab2, *lab1) == pytest.approx(expected, abs=1e-4)  # symmetric


def test_ciede2000_matches_reference_on_random_pairs() -> None:
    rng = np.random.default_rng(42)
    low, high = [0, -110, -110], [100, 110, 110]
    lab1, lab2 = rng.uniform(low, high, (500, 3)), rng.uniform(low, high, (500, 3))
    lab2[:50] = lab1[:50] + rng.normal(0, 1, (50, 3))  # close pairs too
    lab1[50:60, 1:] = 0  # neutral colours: hue 0 by definition
    got = np.array([ciede2000(*p, *q) for p, q in zip(lab1, lab2, strict=True)])
    np.testing.assert_allclose(got, ref_ciede2000(lab1, lab2), atol=1e-9)


def test_no_shift_is_zero_and_shapes_are_checked() -> None:
    rng = np.random.default_rng(1)
    tile_rgb = rng.uniform(0, 255, (5, 2, 2, 3)).astype(np.float32)
    assignment = rng.integers(0, 5, (3, 4))
    assert tile_fidelity(tile_rgb, np.zeros((3, 4, 2, 2, 3), np.float32), assignment) == 0.0
    assert tile_fidelity(tile_rgb, np.zeros((0, 0, 2, 2, 3), np.float32), np.zeros((0, 0), np.int64)) == 0.0
    with pytest.raises(ValueError, match="shapes do not agree"):
        tile_fidelity(tile_rgb, np.zeros((3, 4, 1, 1, 3), np.float32), assignment)


def test_fidelity_is_the_mean_over_cells_and_parts_of_the_shifted_part_means() -> None:
    rng = np.random.default_rng(5)
    tile_rgb = rng.uniform(0, 255, (7, 3, 3, 3)).astype(np.float32)
    assignment = rng.integers(0, 7, (4, 5))
    offsets = rng.normal(0, 40, (4, 5, 3, 3, 3)).astype(np.float32)
    before = tile_rgb[assignment]
    after = np.clip(before + offsets, 0, 255)
    lab_before = np.array([_lab(c) for c in before.reshape(-1, 3)])
    lab_after = np.array([_lab(c) for c in after.reshape(-1, 3)])
    expected = ref_ciede2000(lab_before, lab_after).mean()
    assert tile_fidelity(tile_rgb, offsets, assignment) == pytest.approx(expected, rel=1e-4)


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB of a float sRGB colour (0-255), through the kernels' colour maths."""
    from kernels.color import lab_from_mean

    return np.array(lab_from_mean(np.float32(rgb[0]), np.float32(rgb[1]), np.float32(rgb[2])))


# ---- in the pipeline --------------------------------------------------------------------------------------------

TILES = 60


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    """A smooth target and textured tiles (a gradient each), as PNG: the pixels are exactly known."""
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:96, 0:128]
    target = np.stack([x * 2, y * 2, 255 - x], axis=-1).clip(0, 255).astype(np.uint8)
    out = {"target.png": _png(target)}
    ty, tx = np.mgrid[0:16, 0:16]
    for i in range(TILES):
        colour, slope = rng.integers(20, 236, 3), rng.uniform(-2, 2, 3)
        tile = colour + slope * (tx + ty)[..., None] + rng.integers(-8, 8, (16, 16, 3))
        out[f"tile{i}.png"] = _png(tile.clip(0, 255).astype(np.uint8))
    return out


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, "RGB").save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def settings(tmp_path: object) -> Settings:
    return config.load(env={"TESSERA_PATHS_ROOT": str(tmp_path), "TESSERA_MOSAIC_DECODE_PROCESSES": "1"})


def _build(files: dict[str, bytes], settings: Settings, blend: float) -> tuple[np.ndarray, dict[str, object]]:
    opts = Options(cols=16, rows=12, tile_px=8, seed=3, blend=blend)
    package = JobPackage.create("target.png", [f"tile{i}.png" for i in range(TILES)], opts, job_id="job")
    result = build_mosaic(package, MemorySource(files), settings, fmt="png")
    return np.asarray(Image.open(io.BytesIO(result.data)).convert("RGB")), result.details


def test_details_report_the_fidelity_and_the_blend(files: dict[str, bytes], settings: Settings) -> None:
    figures = {blend: _build(files, settings, blend)[1] for blend in (0.0, 30.0, 70.0, 100.0)}
    assert figures[0.0]["tile_fidelity_de"] == 0.0 and figures[0.0]["blend"] == 0
    moved = [figures[b]["tile_fidelity_de"] for b in (30.0, 70.0, 100.0)]
    assert 0 < moved[0] < moved[1] < moved[2]  # type: ignore[operator]
    assert figures[70.0]["blend"] == 70


@pytest.mark.parametrize("blend", [40.0, 100.0])
def test_the_figure_is_close_to_every_pixel_of_the_rendered_tiles(files: dict[str, bytes], settings: Settings,
                                                                  blend: float) -> None:
    """The cheap figure (part means) against the mean CIEDE2000 over every pixel of every placed tile, rendered
    against untouched: the same assignment (blend changes only the colours), so pixel for pixel."""
    untouched, _ = _build(files, settings, 0.0)
    rendered, details = _build(files, settings, blend)
    exact = ref_ciede2000(srgb_to_lab(untouched), srgb_to_lab(rendered)).mean()
    assert exact > 1.0
    assert details["tile_fidelity_de"] == pytest.approx(exact, rel=0.15)


def test_render_and_fidelity_agree_on_a_flat_shift() -> None:
    """A flat tile shifted flat: the rendered pixels are the shifted mean, so the two figures are equal."""
    tiles = np.full((1, 4, 4, 3), (120, 60, 200), dtype=np.uint8)
    assignment = np.zeros((1, 1), np.int64)
    offsets = np.full((1, 1, 1, 1, 3), (10.0, -20.0, 5.0), dtype=np.float32)
    picture = render(tiles, assignment, offsets=offsets)
    exact = ref_ciede2000(srgb_to_lab(tiles[0]), srgb_to_lab(picture)).mean()
    got = tile_fidelity(np.full((1, 1, 1, 3), (120, 60, 200), np.float32), offsets, assignment)
    assert got == pytest.approx(exact, rel=1e-3)
