"""Is optimal assignment worth it? Greedy, greedy + refine (ours) and scipy's linear_sum_assignment, same use cap.

    .venv/bin/python bench/optimal.py --data /tmp/bench-data [--cap 5] [--cells 64] [--min-distance 0]

W1 tiles (1,000) on every target: each tile may be used at most --cap times, no blend; with --min-distance,
no tile twice within that many cells too. The dense optimum ignores the distance rule: under it, the optimum
of the cap alone is a lower bound (the share is then of that bound's reduction, a floor of the true share);
"old" is the greedy + chains and swaps alone (kernels.refine.AUCTION off), "refined" adds the auction's start.
The optimal solver minimises the total feature distance exactly; it needs a cells x (tiles*cap) cost
matrix, so it only fits small libraries. The refined one (kernels.refine_assignment: under a cap alone,
an auction whose arcs widen past each cell's nearest tiles as prices rise, then chains) starts from the
greedy. Prints time (median of --repeats; refined: greedy's plus the refinement), quality (as bench/mosaic.py
measures it), the summed distance and the share of the optimal's reduction of it that each method reaches.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.optimize import linear_sum_assignment
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

import kernels
from kernels import refine
from workers.pipeline.tiles import decode_tile

PX, K, LIGHTNESS, SAMPLES = 32, 4, 3.0, 4


def score(mosaic: np.ndarray, target: Image.Image, cells: int) -> tuple[float, float]:
    side = cells * SAMPLES
    a = np.asarray(Image.fromarray(mosaic).resize((side, side), Image.Resampling.BOX))
    b = np.asarray(target.resize((side, side), Image.Resampling.BOX))
    return (float(structural_similarity(a, b, channel_axis=-1, data_range=255)),
            float(deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).mean()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench-data"))
    parser.add_argument("--cap", type=int, default=5)
    parser.add_argument("--cells", type=int, default=64)
    parser.add_argument("--min-distance", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of greedy and refined (medians)")
    args = parser.parse_args()
    kernels.warm_up()
    tiles = np.stack([t for t in (decode_tile(p.read_bytes(), PX, 10**8)
                                  for p in sorted((args.data / "tiles-1000").glob("*.jpg"))) if not isinstance(t, str)])
    n, cells = len(tiles), args.cells
    weights = np.ones(3 * K * K, np.float32)
    weights[0::3] = LIGHTNESS
    tile_feats = kernels.tile_features(tiles, K) * weights
    radius, ident = args.min_distance, np.arange(n, dtype=np.int32)
    print(f"{n} tiles, {cells}x{cells} cells, cap {args.cap} uses per tile, min distance {radius}\n")
    print("| target | method | seconds | SSIM | ΔE2000 | total distance | share of optimal's reduction |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for path in sorted((args.data / "targets").glob("*.png")):
        target = Image.open(path).convert("RGB")
        small = np.asarray(target.resize((cells * 8, cells * 8), Image.Resampling.BOX))
        cell_feats = kernels.cell_features(small, cells, cells, K) * weights
        times: dict[str, list[float]] = {"greedy": [], "refined": [], "old": []}
        for _ in range(args.repeats):  # medians: the first call of a size also pays for page faults
            started = time.perf_counter()
            idx, dist = kernels.nearest_candidates(cell_feats, tile_feats, 32)
            order = np.lexsort((np.random.default_rng(0).permutation(cells * cells), dist[:, 0]))
            greedy = kernels.assign_tiles(idx, dist, cell_feats, tile_feats, (cells, cells), order, radius, args.cap)
            times["greedy"].append(time.perf_counter() - started)
            refined = kernels.refine_assignment(greedy, idx, dist, cell_feats, tile_feats, ident, radius, args.cap)
            times["refined"].append(time.perf_counter() - started)
            refine.AUCTION = False
            started = time.perf_counter()
            old = kernels.refine_assignment(greedy, idx, dist, cell_feats, tile_feats, ident, radius, args.cap)
            times["old"].append(times["greedy"][-1] + time.perf_counter() - started)
            refine.AUCTION = True
        greedy_s, refined_s, old_s = (statistics.median(times[k]) for k in ("greedy", "refined", "old"))
        started = time.perf_counter()
        cost = ((cell_feats[:, None, :] - tile_feats[None, :, :]) ** 2).mean(axis=-1)
        rows, cols = linear_sum_assignment(np.repeat(cost, args.cap, axis=1))
        optimal = np.empty(cells * cells, np.int64)
        optimal[rows] = cols // args.cap
        optimal_s = time.perf_counter() - started
        totals = {name: float(cost[np.arange(cells * cells), a.ravel()].sum())
                  for name, a in (("greedy", greedy), ("optimal", optimal))}
        runs = (("greedy", greedy.ravel(), greedy_s), ("old", old.ravel(), old_s),
                ("refined", refined.ravel(), refined_s),
                ("optimal" if radius == 0 else "optimal, cap alone (bound)", optimal, optimal_s))
        for name, assignment, seconds in runs:
            ssim, delta_e = score(kernels.render(tiles, assignment.reshape(cells, cells)), target, cells)
            total = cost[np.arange(cells * cells), assignment].sum()
            share = (totals["greedy"] - total) / max(1e-9, totals["greedy"] - totals["optimal"])
            print(f"| {path.stem} | {name} | {seconds:.3f} | {ssim:.3f} | {delta_e:.2f} | {total:.0f} | {share:.0%} |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
