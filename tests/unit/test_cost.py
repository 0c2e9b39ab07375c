"""The job cost model (workers/protocol/cost.py) and the backlog's pure sum (workers/protocol/backlog.py)."""

from __future__ import annotations

import dataclasses

import pytest

from workers.protocol import backlog, cost, status
from workers.protocol.options import Options
from workers.protocol.package import JobPackage

TILES = [f"http://e.test/{i}.png" for i in range(200)]


def job(cols: int = 32, rows: int = 32, tile_px: int = 32, tiles: int = 200, **options: object) -> JobPackage:
    opts = Options(cols, rows, tile_px, 0, **options)  # type: ignore[arg-type]
    return JobPackage.create("http://e.test/t.png", TILES[:tiles], opts)


def test_work_grows_with_what_a_build_does() -> None:
    base = cost.work_units(job())
    assert cost.work_units(job(cols=64, rows=64)) - cost.JOB > 2 * (base - cost.JOB)  # cells (4 times as many)
    assert cost.work_units(job(tile_px=64)) > base  # output pixels
    assert cost.work_units(job(tiles=20)) < base  # fewer tiles to fetch and search
    # fetching and decoding a tile took about 0.1 ms on the fit machine (bench/cost.py): at least half that
    assert cost.work_units(job(cols=1, rows=1, tiles=200)) - cost.work_units(job(cols=1, rows=1, tiles=0)) > 200 * 5e-5
    assert cost.work_units(job(min_distance=8)) > cost.work_units(job(min_distance=0))  # the distance window


def test_rows_from_the_aspect_ratio_are_guessed() -> None:
    assert cost.work_units(job(cols=40, rows=0)) == pytest.approx(cost.work_units(job(cols=40, rows=30)))


def test_noop_is_no_work() -> None:
    assert cost.work_units(job(noop=True)) == 0.0


def test_a_friends_job_counts_the_pictures_it_asks_for() -> None:
    asked = dataclasses.replace(job(tiles=0), friends={"network": "github", "handle": "a", "max": 200})
    assert cost.work_units(asked) == pytest.approx(cost.work_units(job(tiles=200)))
    unnamed = dataclasses.replace(job(tiles=0), friends={"network": "github", "handle": "a", "max": "many"})
    assert cost.work_units(unnamed) > cost.work_units(asked)  # the default 2000


def test_the_status_hash_holds_the_work() -> None:
    p = job()
    assert status.initial_fields(p, p.encode())[cost.FIELD] == pytest.approx(cost.work_units(p), abs=1e-4)


def test_seconds_use_the_learned_rate_or_the_prior() -> None:
    assert cost.seconds(10.0, 0.5) == 5.0
    assert cost.seconds(10.0, None) == cost.seconds(10.0, 0.0) == 10.0 * cost.PRIOR_SECONDS_PER_UNIT


@pytest.mark.parametrize("row, left", [
    (("queued", "4", None), 4.0),
    (("running", "4", "0.25"), 3.0),
    (("running", "4", "7"), 0.0),  # progress past 1: nothing left, never negative
    (("queued", None, None), backlog.UNKNOWN_WORK),  # queued before the field existed
    (("queued", "lots", "nan"), backlog.UNKNOWN_WORK),  # a hand-edited hash: no crash
    (("running", "4", "inf"), 4.0),
    (("running", "4", "-1"), 4.0),  # never more than the whole job
    (("done", "4", "1"), None), (("canceled", "4", None), None), (("failed", "4", None), None),
    ((None, None, None), None),  # the hash is gone (deleted, expired, lost)
])
def test_remaining(row: tuple[str | None, ...], left: float | None) -> None:
    assert backlog.remaining(row) == left


def test_summed_scales_a_sample_to_the_set() -> None:
    rows = [("queued", "2", None), ("done", "9", "1")]
    assert backlog.summed(rows, 2, 0.5) == backlog.Backlog(seconds=1.0, work=2.0, jobs=1, per_unit=0.5)
    sample = backlog.summed(rows, 20, None)
    assert sample.sampled and sample.work == 20.0 and sample.jobs == 10
    assert sample.seconds == 20.0 * cost.PRIOR_SECONDS_PER_UNIT
