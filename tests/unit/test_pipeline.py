"""The build pipeline end to end in process: determinism, repetition rule, cache, formats, details, the CLI."""

from __future__ import annotations

import argparse
import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import config
from config import Settings
from tests.helpers.images import MemorySource
from workers.cli import build
from workers.cli.progressbar import render_line
from workers.pipeline import jpegstrips
from workers.pipeline.mosaic import build_mosaic, candidate_count, match, visiting_order
from workers.protocol.errors import JobRejected
from workers.protocol.options import Options, Rules
from workers.protocol.package import JobPackage

TILES = 150


def jpeg(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array, "RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:96, 0:128]
    target = np.stack([x * 2, y * 2, 255 - x], axis=-1).clip(0, 255).astype(np.uint8)
    out = {"target.jpg": jpeg(target)}
    for i in range(TILES):
        colour = rng.integers(0, 256, 3)
        tile = (rng.integers(-30, 30, (20, 24, 3)) + colour).clip(0, 255).astype(np.uint8)
        out[f"tile{i}.jpg"] = jpeg(tile)
    return out


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return config.load(env={"TESSERA_PATHS_ROOT": str(tmp_path), "TESSERA_MOSAIC_DECODE_PROCESSES": "1"})


def package(**options: object) -> JobPackage:
    opts = Options(**{"cols": 16, "rows": 12, "tile_px": 8, "seed": 3, **options})  # type: ignore[arg-type]
    return JobPackage.create("target.jpg", [f"tile{i}.jpg" for i in range(TILES)], opts, job_id="job")


def test_build_is_deterministic_and_reports_details(files: dict[str, bytes], settings: Settings) -> None:
    stages: list[tuple[str, float]] = []
    first = build_mosaic(package(), MemorySource(files), settings, lambda s, f: stages.append((s, f)))
    second = build_mosaic(package(), MemorySource(files), settings)
    assert first.data == second.data and first.ext == "jpg"
    image = Image.open(io.BytesIO(first.data))
    assert image.size == (128, 96)
    d = first.details
    assert d["tiles_used"] == TILES and d["tiles_skipped"] == 0 and d["blend"] == settings.mosaic.blend
    assert d["min_distance"] == min(1, settings.mosaic.min_distance) and 1 <= d["max_reuse"] <= 192
    assert set(d["timings"]) == {"target", "tiles", "match", "render_encode"}
    assert any(s.startswith("preparing tiles") for s, _ in stages)
    assert [f for _, f in stages] == sorted(f for _, f in stages)


def test_second_build_takes_tiles_from_the_cache(files: dict[str, bytes], settings: Settings) -> None:
    cold = build_mosaic(package(), MemorySource(files), settings)
    warm = build_mosaic(package(), MemorySource(files), settings)
    assert cold.details["decoded"] == TILES and warm.details["cache_hits"] == TILES and warm.details["decoded"] == 0
    assert cold.data == warm.data


def test_without_cache_nothing_is_written(files: dict[str, bytes], settings: Settings, tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, mosaic=dataclasses.replace(settings.mosaic, tile_cache=""))
    build_mosaic(package(), MemorySource(files), settings)
    assert not (tmp_path / "var").exists()


def test_jpeg_in_strips_is_the_one_piece_image_and_the_zoomable_view_keeps_its_bytes(
        files: dict[str, bytes], settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = build_mosaic(package(), MemorySource(files), settings).data
    monkeypatch.setattr(jpegstrips, "STRIP_PIXELS", 128 * 16)  # 16-row strips: 6 of them, joined
    strips = build_mosaic(package(), MemorySource(files), settings)
    assert strips.data != whole and b"\xff\xdd" in strips.data  # a restart interval was declared
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(strips.data))),
                                  np.asarray(Image.open(io.BytesIO(whole))))
    assert build_mosaic(package(), MemorySource(files), settings, deepzoom=True).data == strips.data


def test_visiting_order_best_first_seeded_ties() -> None:
    best = np.array([3.0, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 2.0], dtype=np.float32)
    a, b = visiting_order(best, 1), visiting_order(best, 2)
    for order in (a, b):
        assert sorted(order.tolist()) == list(range(8)) and order[0] == 4 and order[-2:].tolist() == [7, 0]
    assert a.tolist() != b.tolist() and a.tolist() == visiting_order(best, 1).tolist()


def test_png_output_matches_jpeg_geometry_and_is_exact(files: dict[str, bytes], settings: Settings) -> None:
    png = build_mosaic(package(blend=40.0), MemorySource(files), settings, fmt="png")
    jpg = build_mosaic(package(blend=40.0), MemorySource(files), settings)
    a = np.asarray(Image.open(io.BytesIO(png.data)).convert("RGB"), dtype=int)
    b = np.asarray(Image.open(io.BytesIO(jpg.data)).convert("RGB"), dtype=int)
    assert png.ext == "png" and a.shape == b.shape == (96, 128, 3)
    assert np.abs(a - b).mean() < 6  # the same mosaic, up to JPEG loss
    assert png.details["blend"] == 40


def test_blend_brings_the_mosaic_closer_to_the_target(files: dict[str, bytes], settings: Settings) -> None:
    target = np.asarray(Image.open(io.BytesIO(files["target.jpg"])).resize((16, 12), Image.Resampling.BOX), int)

    def error(blend: float) -> float:
        data = build_mosaic(package(blend=blend), MemorySource(files), settings, fmt="png").data
        small = np.asarray(Image.open(io.BytesIO(data)).resize((16, 12), Image.Resampling.BOX), dtype=int)
        return float(np.abs(small - target).mean())

    assert error(100.0) < error(50.0) < error(0.0)


@pytest.mark.parametrize("min_distance", [1, 3])
def test_min_distance_holds_on_the_output(files: dict[str, bytes], min_distance: int) -> None:
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 256, (60, 4, 4, 3), dtype=np.uint8)
    tiles[:, :2] //= 4  # a dark top half: pictures (a flat colour may repeat side by side: pipeline/identity.py)
    small = np.full((20 * 4, 30 * 4, 3), 128, dtype=np.uint8)  # flat: every cell wants the same tile
    rules = Rules(k=2, lightness_weight=3.0, blend=0.0, min_distance=min_distance, max_uses=0, penalty=0.0,
                  candidates=8, seed=1)
    assignment = match(small, tiles, 20, 30, rules)
    d = min_distance
    for r, c in np.ndindex(assignment.shape):
        near = assignment[max(0, r - d) : r + d + 1, max(0, c - d) : c + d + 1]
        assert np.count_nonzero(near == assignment[r, c]) == 1


@pytest.mark.parametrize(("min_distance", "max_uses"), [(2, 0), (1, 4), (0, 4)])  # 50 tiles x 4 uses >= 180 cells
def test_few_candidates_give_the_same_assignment(min_distance: int, max_uses: int) -> None:
    # Cells whose few candidates are all blocked fall back to the full scan: the greedy result is the one that
    # candidates covering the whole library give. (The greedy's: the refinement works on the candidates given.)
    rng = np.random.default_rng(3)
    tiles = rng.integers(0, 256, (50, 4, 4, 3), dtype=np.uint8)
    small = np.repeat(np.repeat(rng.integers(0, 256, (12, 15, 3), dtype=np.uint8), 4, 0), 4, 1)
    small[:24] = 120  # a flat band, where neighbours want the same tiles
    rules = Rules(k=2, lightness_weight=3.0, blend=0.0, min_distance=min_distance, max_uses=max_uses, penalty=0.0,
                  candidates=2, seed=5, refine=False)
    few = match(small, tiles, 12, 15, rules)
    np.testing.assert_array_equal(few, match(small, tiles, 12, 15, dataclasses.replace(rules, candidates=50)))
    if max_uses:
        assert np.bincount(few.ravel()).max() <= max_uses


def test_unusable_and_duplicate_tiles_are_counted(files: dict[str, bytes], settings: Settings) -> None:
    source = MemorySource({**files, "bad.jpg": b"not an image", "dup.jpg": files["tile0.jpg"]})
    job = dataclasses.replace(package(), tiles=(*package().tiles, "bad.jpg", "dup.jpg", "missing.jpg"))
    details = build_mosaic(job, source, settings).details
    assert details["tiles_used"] == TILES and details["tiles_skipped"] == 2 and details["duplicate_tiles"] == 1


def test_no_usable_tiles_rejects_the_job(files: dict[str, bytes], settings: Settings) -> None:
    job = dataclasses.replace(package(), tiles=("missing.jpg",))
    with pytest.raises(JobRejected, match="only 0 of 1 tiles"):
        build_mosaic(job, MemorySource(files), settings)


def test_decoding_in_processes_gives_the_same_tiles(files: dict[str, bytes], settings: Settings,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workers.pipeline.tiles.MIN_FOR_PROCESSES", 2)
    one = build_mosaic(package(), MemorySource(files), settings)
    many = dataclasses.replace(settings, mosaic=dataclasses.replace(settings.mosaic, decode_processes=2,
                                                                    tile_cache=""))
    assert build_mosaic(package(), MemorySource(files), many).data == one.data


def test_overlapping_batches_give_the_same_tiles_and_fill_the_cache(files: dict[str, bytes], settings: Settings,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    one = build_mosaic(package(), MemorySource(files), settings)
    monkeypatch.setattr("workers.pipeline.tiles.MIN_FOR_PROCESSES", 2)
    monkeypatch.setattr("workers.pipeline.tiles.BATCH", 16)  # ten groups, decoding while the next ones come
    monkeypatch.setattr("workers.pipeline.tiles.PACK_SECONDS", 3600.0)  # packs by count only, whatever the pace
    many = dataclasses.replace(settings, mosaic=dataclasses.replace(settings.mosaic, decode_processes=2,
                                                                    tile_cache="batches"))
    first = build_mosaic(package(), MemorySource(files), many)
    assert len(list(Path(settings.paths.root, "batches").rglob("*.keys"))) == 1  # fewer than PACK_TILES: one pack
    again = build_mosaic(package(), MemorySource(files), many)
    assert first.data == one.data == again.data
    assert again.details["decoded"] == 0 and again.details["cache_hits"] == first.details["decoded"]


@pytest.mark.parametrize(("min_distance", "candidates", "count"), [(0, 24, 8), (1, 24, 9), (2, 24, 24), (5, 24, 24),
                                                                 (5, 40, 40), (1, 6, 6)])
def test_candidate_count_follows_the_distance_rule(min_distance: int, candidates: int, count: int) -> None:
    rules = Rules(k=2, lightness_weight=3.0, blend=0.0, min_distance=min_distance, max_uses=10, penalty=0.0,
                  candidates=candidates, seed=0)
    assert candidate_count(rules) == count


def cli_args(tmp_path: Path, files: dict[str, bytes], output: str, *extra: str) -> argparse.Namespace:
    tiles = tmp_path / "tiles"
    tiles.mkdir(exist_ok=True)
    for name, data in files.items():
        (tmp_path / name if name == "target.jpg" else tiles / name).write_bytes(data)
    (tiles / "notes.txt").write_text("not a tile")
    parser = argparse.ArgumentParser()
    build.add_arguments(parser)
    return parser.parse_args([str(tmp_path / "target.jpg"), "--tiles", str(tiles), "-o", str(tmp_path / output),
                              "--grid", "16x12", "--tile-px", "8", *extra])


def test_cli_build_writes_the_mosaic(files: dict[str, bytes], settings: Settings, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    args = cli_args(tmp_path, files, "out.png", "--blend", "20", "--min-distance", "2", "--max-uses", "9",
                    "--cache", str(tmp_path / "cache"))
    assert build.run(args, settings) == 0
    with Image.open(tmp_path / "out.png") as image:  # closed: an open file left to the collector warns
        assert image.size == (128, 96)
    assert f"{TILES} tiles" in capsys.readouterr().out
    assert list((tmp_path / "cache").glob("v1-8px/*.keys"))


def test_cli_no_cache_and_bad_output_name(files: dict[str, bytes], settings: Settings, tmp_path: Path) -> None:
    assert build.run(cli_args(tmp_path, files, "out.jpg", "--no-cache"), settings) == 0
    assert not (tmp_path / "var").exists() and (tmp_path / "out.jpg").stat().st_size > 0
    assert build.run(cli_args(tmp_path, files, "out.tiff"), settings) == 1


def test_cli_reads_a_list_of_urls(tmp_path: Path) -> None:
    listing = tmp_path / "tiles.txt"
    listing.write_text("# friends\nhttps://example.test/a.jpg\n\n  https://example.test/b.png  \n")
    assert build.tile_refs(str(listing)) == ["https://example.test/a.jpg", "https://example.test/b.png"]


def test_cli_tiles_folder_takes_every_format_we_decode(tmp_path: Path) -> None:
    names = ["a.JPG", "b.png", "c.avif", "d.heic", "e.heif", "f.webp", "notes.txt", "g.tiff"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    listed = [Path(ref).name for ref in build.tile_refs(str(tmp_path))]
    assert listed == ["a.JPG", "b.png", "c.avif", "d.heic", "e.heif", "f.webp"]


def test_progress_line_fits() -> None:
    line = render_line("preparing tiles 5/10", 0.5, 60)
    assert line.startswith("[##########..........]  50% preparing") and len(line) == 59
    assert render_line("x", 2.0, 30).startswith("[##########] 100%")
