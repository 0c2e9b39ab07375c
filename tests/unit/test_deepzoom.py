"""The zoomable view: DZI pyramid geometry, tiles that reassemble the image, thumbnail, and the tile map's labels."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import config
from config import Settings
from tests.helpers.images import MemorySource
from web.submit import upload_name
from workers.pipeline import deepzoom as dz
from workers.pipeline.mosaic import build_mosaic
from workers.protocol.errors import BadPackage
from workers.protocol.options import Options
from workers.protocol.package import JobPackage


def smooth_image(width: int, height: int) -> np.ndarray:
    """Gradients JPEG keeps almost exactly, with a different value at every position."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([255 * x / width, 255 * y / height, 128 + 100 * np.sin(x / 37 + y / 23)], -1).astype(np.uint8)


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize(("size", "top"), [((1, 1), 0), ((2, 1), 1), ((4096, 4096), 12), ((4097, 10), 13),
                                           ((600, 300), 10), ((254, 255), 8)])
def test_top_level_is_ceil_log2_of_the_longest_side(size: tuple[int, int], top: int) -> None:
    assert dz.top_level(*size) == top
    assert dz.level_size(*size, top) == size and dz.level_size(*size, 0) == (1, 1)


def test_pyramid_levels_tiles_and_thumbnail() -> None:
    width, height = 600, 300
    array = smooth_image(width, height)
    files = dz.pyramid(Image.fromarray(array), quality=95)
    top = dz.top_level(width, height)
    dzi = files[dz.DZI].decode()
    assert 'TileSize="254"' in dzi and 'Overlap="1"' in dzi and 'Format="jpg"' in dzi
    assert f'Width="{width}" Height="{height}"' in dzi
    levels = {int(m[1]) for name in files if (m := re.fullmatch(r"image_files/(\d+)/\d+_\d+\.jpg", name))}
    assert levels == set(range(top + 1))
    for level in range(top + 1):
        lw, lh = -(-width // 2 ** (top - level)), -(-height // 2 ** (top - level))
        cols, rows = -(-lw // 254), -(-lh // 254)
        names = {n for n in files if n.startswith(f"image_files/{level}/")}
        assert names == {f"image_files/{level}/{c}_{r}.jpg" for c in range(cols) for r in range(rows)}
        for c in range(cols):
            for r in range(rows):
                x0, y0 = max(0, c * 254 - 1), max(0, r * 254 - 1)
                x1, y1 = min(lw, (c + 1) * 254 + 1), min(lh, (r + 1) * 254 + 1)
                shape = decoded(files[f"image_files/{level}/{c}_{r}.jpg"]).shape
                assert shape == (y1 - y0, x1 - x0, 3), (level, c, r)
    assert decoded(files["image_files/0/0_0.jpg"]).shape == (1, 1, 3)
    # the top level's tiles, overlap dropped, are the image again (up to JPEG loss)
    whole = np.zeros((height, width, 3), np.int16)
    for c in range(-(-width // 254)):
        for r in range(-(-height // 254)):
            tile = decoded(files[f"image_files/{top}/{c}_{r}.jpg"])
            ox, oy = (1 if c else 0), (1 if r else 0)
            part = tile[oy : oy + 254, ox : ox + 254]
            whole[r * 254 : r * 254 + part.shape[0], c * 254 : c * 254 + part.shape[1]] = part
    assert np.abs(whole - array).mean() < 2
    assert Image.open(io.BytesIO(files[dz.THUMB])).size == (320, 160)


def test_level_below_is_the_halved_level_above() -> None:
    array = smooth_image(300, 200)
    files = dz.pyramid(Image.fromarray(array), quality=95)
    top = dz.top_level(300, 200)
    below = decoded(files[f"image_files/{top - 1}/0_0.jpg"])
    expected = np.asarray(Image.fromarray(array).reduce(2), dtype=np.int16)
    assert below.shape == expected.shape == (100, 150, 3)
    assert np.abs(below - expected).mean() < 2


def test_small_image_thumbnail_is_not_enlarged_and_rgbx_input_works() -> None:
    rgbx = np.zeros((90, 200, 4), np.uint8)
    rgbx[..., :3] = smooth_image(200, 90)
    image = Image.frombuffer("RGBX", (200, 90), rgbx, "raw", "RGBX", 0, 1)
    files = dz.pyramid(image, quality=90)
    assert Image.open(io.BytesIO(files[dz.THUMB])).size == (200, 90)
    assert np.abs(decoded(files["image_files/8/0_0.jpg"]) - rgbx[..., :3]).mean() < 3


def test_tile_labels_prefer_names_and_cut_long_ones() -> None:
    assert dz.tile_labels(["http://a/x.png", "u2"], []) == ["http://a/x.png", "u2"]
    assert dz.tile_labels(["http://a/x.png", "u2"], ["", "holiday.jpg"]) == ["http://a/x.png", "holiday.jpg"]
    assert dz.tile_labels(["x" * 300], [""]) == ["x" * dz.MAX_LABEL]


# -- the tile map through the real pipeline: skipped and duplicate tiles shift the prepared indices -------------

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 40)}
CELLS = [["red", "green", "blue", "yellow"], ["yellow", "blue", "green", "red"]]


def png(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array, "RGB").save(out, "PNG")
    return out.getvalue()


def solid(colour: str, px: int = 8) -> np.ndarray:
    return np.full((px, px, 3), COLOURS[colour], np.uint8)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return config.load(env={"TESSERA_PATHS_ROOT": str(tmp_path), "TESSERA_MOSAIC_DECODE_PROCESSES": "1"})


@pytest.fixture
def job() -> tuple[JobPackage, MemorySource]:
    target = np.concatenate([np.concatenate([solid(c) for c in row], axis=1) for row in CELLS], axis=0)
    red = png(solid("red"))
    files = {"target.png": png(target), "http://h/red.png": red, "http://h/green.png": png(solid("green")),
             "http://h/red-again.png": red, "http://h/blue.png": png(solid("blue")),
             "http://h/yellow.png": png(solid("yellow"))}
    refs = ["http://h/red.png", "http://h/missing.png", "http://h/green.png", "http://h/red-again.png",
            "http://h/blue.png", "http://h/yellow.png"]
    names = ["Red.PNG", "", "green (1).png", "red copy.png", "", "yellow.png"]
    options = Options(cols=4, rows=2, tile_px=8, seed=1, blend=0.0, min_distance=0, max_uses=0)
    return JobPackage.create("target.png", refs, options, job_id="j" * 22, tile_names=names), MemorySource(files)


def test_tile_map_labels_follow_skipped_and_duplicate_tiles(job: tuple[JobPackage, MemorySource],
                                                            settings: Settings) -> None:
    package, source = job
    stages: list[str] = []
    result = build_mosaic(package, source, settings, lambda stage, f: stages.append(stage), deepzoom=True)
    assert result.deepzoom is not None
    assert result.details["tiles_skipped"] == 1 and result.details["duplicate_tiles"] == 1
    tile_map = json.loads(result.deepzoom.files[dz.TILE_MAP])
    assert {k: tile_map[k] for k in ("cols", "rows", "tile_px", "width", "height")} == \
        {"cols": 4, "rows": 2, "tile_px": 8, "width": 32, "height": 16}
    expected = {"red": "Red.PNG", "green": "green (1).png", "blue": "http://h/blue.png", "yellow": "yellow.png"}
    assert [tile_map["labels"][i] for i in tile_map["cells"]] == [expected[c] for row in CELLS for c in row]
    assert sorted(tile_map["labels"]) == sorted(expected.values())  # each used picture once
    assert set(result.details["timings"]) >= {"render_encode", "deepzoom"}
    assert "making the zoomable view" in stages
    files = result.deepzoom.files
    assert {dz.DZI, dz.THUMB, dz.TILE_MAP, "image_files/0/0_0.jpg", "image_files/5/0_0.jpg"} <= set(files)
    assert Image.open(io.BytesIO(files[dz.THUMB])).size == (32, 16)
    # the zoomable view and the image come from the same render
    top = decoded(files["image_files/5/0_0.jpg"])
    assert np.abs(top - decoded(result.data)).mean() < 3


def test_no_zoomable_view_unless_asked_and_enabled(job: tuple[JobPackage, MemorySource], settings: Settings) -> None:
    package, source = job
    plain = build_mosaic(package, source, settings)
    assert plain.deepzoom is None and "deepzoom" not in plain.details["timings"]
    off = dataclasses.replace(settings, results=dataclasses.replace(settings.results, deepzoom=False))
    assert build_mosaic(package, source, off, deepzoom=True).deepzoom is None
    assert build_mosaic(package, source, settings, fmt="png", deepzoom=True).deepzoom is None
    zoomed = build_mosaic(package, source, settings, deepzoom=True)
    assert zoomed.data == plain.data  # asking for the view does not change the image


# -- tile names in the job package, filled by the web from the upload file names --------------------------------

def test_package_tile_names_round_trip_and_old_packages_still_decode() -> None:
    options = Options(cols=4, rows=0, tile_px=8, seed=0)
    named = JobPackage.create("t", ["a", "b"], options, job_id="n" * 22, tile_names=["", "b.png"])
    assert JobPackage.decode(named.encode()).tile_names == ("", "b.png")
    plain = JobPackage.create("t", ["a", "b"], options, job_id="n" * 22)
    assert "tile_names" not in json.loads(plain.encode()) and JobPackage.decode(plain.encode()).tile_names == ()


@pytest.mark.parametrize("names", [["only one"], "a,b", [1, "b"], ["a", "x" * 201], {"a": 1}])
def test_bad_tile_names_make_a_bad_package(names: object) -> None:
    data = json.loads(JobPackage.create("t", ["a", "b"], Options(cols=4, rows=0, tile_px=8, seed=0)).encode())
    data["tile_names"] = names
    with pytest.raises(BadPackage, match="tile_names"):
        JobPackage.decode(json.dumps(data))


@pytest.mark.parametrize(("raw", "name"), [("holiday.jpg", "holiday.jpg"), ("C:\\Users\\me\\cat.png", "cat.png"),
                                           ("../../etc/passwd", "passwd"), ("a/b\x00\x1b[31m.png", "b[31m.png"),
                                           ("", "tile 7"), ("dir/", "tile 7"), ("x" * 300, "x" * 200)])
def test_upload_names_keep_only_the_base_name(raw: str, name: str) -> None:
    assert upload_name(raw, 7) == name
