"""`tessera build`: make a mosaic locally, without the queue (placeholder until the engine lands)."""

from __future__ import annotations

import argparse

from config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="the photo to rebuild")
    parser.add_argument("--tiles", required=True, help="a folder of tile images, or a text file of image URLs")
    parser.add_argument("-o", "--output", required=True, help="where to write the mosaic (.jpg or .png)")
    parser.add_argument("--grid", default=None, help="COLSxROWS, or one number of columns")
    parser.add_argument("--tile-px", type=int, default=None)
    parser.add_argument("--blend", type=float, default=None, help="colour correction toward the cell, 0-100 %%")
    parser.add_argument("--min-distance", type=int, default=None, help="cells between two uses of one tile")
    parser.add_argument("--max-uses", type=int, default=None, help="at most this many uses of one tile")
    parser.add_argument("--seed", type=int, default=0)
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", default=None, help="tile cache folder")
    cache.add_argument("--no-cache", action="store_true", help="neither read nor write the tile cache")


def run(args: argparse.Namespace, settings: Settings) -> int:
    raise NotImplementedError("tessera build comes with the mosaic engine")
