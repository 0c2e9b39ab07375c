"""A job's predicted cost, in work units, from its package alone (pure): what the autoscaler sums over the backlog.

Computed once, at submission (status.initial_fields stores it as the job's ``work`` field), so nobody parses
packages to size the backlog. Seconds per unit are learned from recent builds: the completion note moves a moving
average of build_seconds / work (lua/note.lua, stats.RECENT_PER_WORK); before any build, PRIOR_SECONDS_PER_UNIT.

The formula follows where a build's time goes (workers/pipeline/mosaic.py); its constants are a least-squares fit
(relative error) to four runs of bench/cost.py's table on a shared 2-core machine, whose run-to-run noise was up to
3x on one row, so they are rounded and only the proportions matter: the learned seconds per unit scale them.
- per tile: fetch/decode and resize to tile_px, features (TILE, TILE_PIXEL);
- per cell: matching, the assignment and its refinement (CELL; the distance rule's window adds DISTANCE per window
  cell; the library's size showed no effect on this part in the fit);
- per output pixel: rendering, the JPEG and the deep-zoom pyramid (PIXEL);
- a fixed part per job (JOB).
One unit is about one second on the machine the constants were fitted on, so the prior is 1.0.
"""

from __future__ import annotations

from workers.protocol.options import DEFAULT, MAX_DISTANCE, fitting_distance
from workers.protocol.package import JobPackage

JOB = 0.15
TILE = 1.0e-4
TILE_PIXEL = 1.5e-8
CELL = 5.0e-6
DISTANCE = 1.2e-7
PIXEL = 1.8e-8
DEFAULT_DISTANCE = 1
"""The distance rule of a job that leaves it to the worker (config/defaults.yaml mosaic.min_distance)."""
FIELD = "work"
"""The status-hash field holding a job's work units (status.initial_fields); read by lua/note.lua too."""
PRIOR_SECONDS_PER_UNIT = 1.0
"""Seconds per unit before any job has finished (the fit machine's figure)."""
NOOP = 0.0
"""A noop job (queue measurements) builds nothing."""
FRIENDS_DEFAULT = 2000
"""Tiles of a friends job whose request names no ``max`` (workers/inputs/friends/handles.py's default)."""
ASPECT = 0.75
"""Rows per column when the rows follow the target's aspect ratio (unknown until the target is decoded)."""


def work_units(package: JobPackage) -> float:
    """The job's predicted cost in work units (pure; never raises on a package that decoded)."""
    opts = package.options
    if opts.noop:
        return NOOP
    tiles = _tile_count(package)
    rows = opts.rows or max(1, round(opts.cols * ASPECT))
    cells = opts.cols * rows
    distance = opts.min_distance if opts.min_distance != DEFAULT else min(DEFAULT_DISTANCE, fitting_distance(tiles))
    window = (2 * min(max(distance, 0), MAX_DISTANCE) + 1) ** 2 if distance > 0 else 0
    px2 = opts.tile_px * opts.tile_px
    per_cell = CELL + DISTANCE * window + PIXEL * px2
    return JOB + tiles * (TILE + TILE_PIXEL * px2) + cells * per_cell


def _tile_count(package: JobPackage) -> int:
    if package.tiles or package.friends is None:
        return len(package.tiles)
    wanted = package.friends.get("max", FRIENDS_DEFAULT)
    return wanted if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted > 0 else FRIENDS_DEFAULT


def seconds(work: float, per_unit: float | None) -> float:
    """Predicted seconds of ``work`` units at the learned ``per_unit`` (None before any build: the prior)."""
    return work * (per_unit if per_unit is not None and per_unit > 0 else PRIOR_SECONDS_PER_UNIT)
