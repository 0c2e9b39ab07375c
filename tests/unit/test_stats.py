"""The build-time histogram, the stats counters, the jobs chart and the admin password check (pure)."""

from __future__ import annotations

import base64
import math

import pytest

from web.admin import authorized
from web.chart import jobs_chart
from workers.protocol import stats


@pytest.mark.parametrize(("seconds", "field"), [
    (0.0, "build_le:0.5"), (0.5, "build_le:0.5"), (0.51, "build_le:1.0"), (2.5, "build_le:2.5"),
    (599.9, "build_le:600.0"), (600.0, "build_le:600.0"), (600.1, "build_le:+Inf"), (math.inf, "build_le:+Inf"),
])
def test_a_build_falls_into_the_smallest_bucket_that_holds_it(seconds: float, field: str) -> None:
    assert stats.bucket_field(seconds) == field


def test_counters_make_the_buckets_cumulative_and_end_at_inf() -> None:
    raw = {"submitted": "7", "done": "4", "failed": "2", "build_le:0.5": "1", "build_le:5.0": "2",
           "build_le:+Inf": "1", "build_seconds_sum": "712.25", "build_seconds_count": "4"}
    counters = stats.counters_from(raw)
    assert (counters.submitted, counters.done, counters.failed) == (7, 4, 2)
    buckets = dict(counters.buckets)
    assert list(buckets) == [stats.le_label(b) for b in stats.BUILD_BUCKETS] + ["+Inf"]
    assert (buckets["0.5"], buckets["2.5"], buckets["5.0"], buckets["600.0"], buckets["+Inf"]) == (1, 1, 3, 3, 4)
    assert buckets["+Inf"] == counters.build_count
    assert counters.build_sum == 712.25


def test_no_stats_yet_reads_as_zeros() -> None:
    counters = stats.counters_from({})
    assert counters.done == counters.build_count == 0 and all(count == 0 for _, count in counters.buckets)


def test_the_chart_is_one_stacked_bar_per_busy_minute_without_style_attributes() -> None:
    rows = [(29_000_000 + i, i % 3, 1 if i == 59 else 0) for i in range(60)]
    svg = jobs_chart(rows)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('class="bar-done"') == sum(1 for _, done, _ in rows if done)
    assert svg.count('class="bar-failed"') == 1
    assert "style=" not in svg and "<script" not in svg
    assert "2 done, 1 failed" in svg and "max 3/min" in svg


def test_an_empty_hour_still_draws_an_axis() -> None:
    assert 'class="axis"' in jobs_chart([(1, 0, 0)] * 60) and "rect" not in jobs_chart([(1, 0, 0)] * 60)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(("header", "ok"), [
    (basic("admin", "s3cret"), True), (basic("admin", "s3cre"), False), (basic("root", "s3cret"), False),
    (basic("admin", "s3cret:x"), False), ("", False), ("Basic !!!", False), ("Bearer s3cret", False),
    (basic("admin", ""), False),
])
def test_admin_credentials(header: str, ok: bool) -> None:
    assert authorized(header, "s3cret") is ok
