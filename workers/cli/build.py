"""`tessera build`: make a mosaic locally, without the queue."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from config import LimitSettings, Settings
from workers.cli import friends as cli_friends
from workers.cli.progressbar import ProgressBar
from workers.cli.startup import prepare_kernels
from workers.pipeline import tileset
from workers.pipeline.tiletypes import FETCH_THREADS
from workers.protocol.errors import JobRejected, TesseraError
from workers.protocol.files import write_atomic
from workers.protocol.options import DEFAULT, Options, check_job, parse_grid
from workers.protocol.package import JobPackage

if TYPE_CHECKING:
    from workers.inputs.fetch import Fetcher

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".avif", ".heic", ".heif")
OUTPUT_FORMATS = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}
LOCAL_SIDE = 1024
"""Cells per side allowed locally: the service's limits protect shared workers, not your own machine."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="the photo to rebuild")
    parser.add_argument("--tiles", default=None, help="a folder of tile images, or a text file of image URLs")
    cli_friends.add_arguments(parser)  # --friends NETWORK:HANDLE: their profile pictures as tiles (with --tiles too)
    parser.add_argument("-o", "--output", required=True, help="where to write the mosaic (.jpg or .png)")
    parser.add_argument("--grid", default=None, help="COLSxROWS, or one number of columns")
    parser.add_argument("--tile-px", type=int, default=None)
    parser.add_argument("--blend", type=float, default=None, help="colour correction toward the cell, 0-100 %%")
    parser.add_argument("--min-distance", type=int, default=None, help="cells between two uses of one tile")
    parser.add_argument("--max-uses", type=int, default=None, help="at most this many uses of one tile")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-avatars", action="store_true",
                        help="use default avatars too (a blank silhouette, one picture under many names)")
    parser.add_argument("--use-all", action="store_true",
                        help="use every picture at least once where the grid has room (cells >= pictures)")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", default=None, help="tile cache folder")
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write the tile cache")
    parser.add_argument("--no-refine", action="store_true",
                        help="keep the greedy tile assignment (mosaic.refine off), e.g. to compare")
    parser.add_argument("--space-flat", action="store_true",
                        help="the distance rule spaces out flat pictures too, as metapixel's does (mosaic.space_flat)")
    parser.add_argument("--count-by-file", action="store_true",
                        help="the cap and distance rule count files, as metapixel's do, not pictures "
                             "(mosaic.count_by_file)")


class LocalSource:
    """Image bytes from local paths; http(s) URLs go through the usual fetcher and its policy."""

    def __init__(self, fetcher: Fetcher | None, refs: list[str]) -> None:
        self.fetcher = fetcher
        """None when ``refs`` are all files (the fetcher's imports cost a file-only build 0.02 s)."""
        urls = any(_is_url(ref) for ref in refs)
        self.concurrency = FETCH_THREADS if urls else 1
        """Local reads are fastest from one thread; URLs want many."""
        self.child_reader = None if urls else read_file
        """Only files: the decoding processes read (and hash) them themselves."""

    def stamp(self, ref: str) -> tuple[int, ...] | int | None:
        """Changes when the bytes behind ``ref`` may have: a file's size, mtime, ctime and inode (as git's index
        tells a changed file), a URL's fetch-cache stamp."""
        if _is_url(ref):
            return self._fetcher().stamp(ref)
        try:
            info = os.stat(ref)
        except OSError:
            return None
        return info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino

    def get(self, ref: str) -> bytes:
        return self._fetcher().get(ref) if _is_url(ref) else read_file(ref)

    def _fetcher(self) -> Fetcher:
        if self.fetcher is None:
            raise JobRejected("a URL among references said to be files")  # not reached from run()
        return self.fetcher


def _fetcher(settings: Settings) -> Fetcher:
    from workers.inputs.fetch import Fetcher  # noqa: PLC0415

    return Fetcher(settings.fetch)


def read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise JobRejected(f"cannot read {path}: {exc.strerror}") from exc


def _is_url(ref: str) -> bool:
    return ref.startswith(("http://", "https://"))


def tile_refs(tiles: str) -> list[str]:
    """Image files of a folder (sorted), or the lines of a text file of URLs."""
    path = Path(tiles)
    if path.is_dir():
        with os.scandir(path) as entries:  # scandir knows the file type without a stat per file
            return sorted(e.path for e in entries if e.name.lower().endswith(IMAGE_SUFFIXES) and e.is_file())
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise JobRejected(f"--tiles {tiles}: not a folder nor a readable text file of URLs ({exc})") from exc
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def local_settings(settings: Settings, args: argparse.Namespace) -> Settings:
    """Settings for a local build: roomier grid limits, and the tile cache the flags ask for."""
    limits: LimitSettings = settings.limits
    limits = dataclasses.replace(limits, max_tiles=max(limits.max_tiles, 10**6),
                                 max_cells_per_side=max(limits.max_cells_per_side, LOCAL_SIDE),
                                 max_cells=max(limits.max_cells, LOCAL_SIDE**2),
                                 max_output_pixels=max(limits.max_output_pixels, 2**31))
    mosaic = dataclasses.replace(settings.mosaic, tile_memo_mb=0)  # one build per process: nothing to reuse
    if getattr(args, "no_refine", False):
        mosaic = dataclasses.replace(mosaic, refine=False)
    if getattr(args, "space_flat", False):
        mosaic = dataclasses.replace(mosaic, space_flat=True)
    if getattr(args, "count_by_file", False):
        mosaic = dataclasses.replace(mosaic, count_by_file=True)
    if args.no_cache:
        mosaic = dataclasses.replace(mosaic, tile_cache="")
    elif args.cache:
        mosaic = dataclasses.replace(mosaic, tile_cache=str(Path(args.cache).resolve()))
    return dataclasses.replace(settings, limits=limits, mosaic=mosaic)


def _options(args: argparse.Namespace, settings: Settings) -> Options:
    cols, rows = parse_grid(args.grid or settings.jobs.default_grid)
    options = Options(cols=cols, rows=rows, tile_px=args.tile_px or settings.jobs.default_tile_px, seed=args.seed,
                      blend=DEFAULT if args.blend is None else float(args.blend),
                      min_distance=DEFAULT if args.min_distance is None else args.min_distance,
                      max_uses=DEFAULT if args.max_uses is None else args.max_uses,
                      keep_avatars=bool(getattr(args, "keep_avatars", False)),
                      use_all=bool(getattr(args, "use_all", False)))
    check_job(options, settings.limits)
    return options


def run(args: argparse.Namespace, settings: Settings) -> int:
    started = time.perf_counter()
    output = Path(args.output)
    fmt = OUTPUT_FORMATS.get(output.suffix.lower())
    if fmt is None:
        print(f"tessera build: -o {output}: the name must end in .jpg, .jpeg or .png", file=sys.stderr)
        return 1
    settings = local_settings(settings, args)
    bar = ProgressBar()
    try:
        refs = tile_refs(args.tiles) if args.tiles else []
        wanted = cli_friends.request(args)
        if wanted is None and not args.tiles:
            raise JobRejected("give the tiles: --tiles FOLDER_OR_URL_FILE, or --friends NETWORK:HANDLE")
        package = JobPackage.create(args.target, refs, _options(args, settings),
                                    friends=wanted.as_json() if wanted else None)
        gathered = None if wanted is None else cli_friends.gather(package, settings, bar)
        package = package if gathered is None else gathered.package
        refs = list(package.tiles)
        source = LocalSource(_fetcher(settings) if any(map(_is_url, [args.target, *refs])) else None,
                             [args.target, *refs])
        tiles = tileset.start(package, source, settings)  # local files start decoding in other processes now
        # Numba loads meanwhile (the decoding processes were forked without it). No kernels.warm_up() here: each
        # kernel loads from Numba's cache when first called, so only those this build uses are loaded.
        prepare_kernels()
        from workers.pipeline.mosaic import build_mosaic  # noqa: PLC0415

        result = build_mosaic(package, source, settings, bar, fmt=fmt, tiles=tiles)
        _write(output, result.data)
    except TesseraError as exc:
        bar.close()
        print(f"tessera build: {exc.reason}", file=sys.stderr)
        return 1
    bar("done", 1.0)
    bar.close()
    d = result.details
    print(f"wrote {output} ({d['width']}x{d['height']}, {d['grid']} cells, {d['tiles_used']} tiles, "
          f"{d['distinct_tiles']} distinct, max reuse {d['max_reuse']}, blend {d['blend']:g} %, "
          f"tile fidelity ΔE {d['tile_fidelity_de']:.2f}) "
          f"in {time.perf_counter() - started:.2f} s")
    if gathered is not None:
        print(cli_friends.summary(gathered))
    if "identity_groups" in d:
        print(f"pictures: {d['identity_groups']} ({d['pictures_merged']} near-duplicates merged, "
              f"{d['avatars_skipped']} default avatars skipped), max reuse of one picture {d['max_reuse_picture']}")
    return 0


def _write(path: Path, data: bytes) -> None:
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise JobRejected(f"cannot write {path}: {exc.strerror}") from exc
