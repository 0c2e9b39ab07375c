"""Capped exponential backoff with jitter."""

from __future__ import annotations

import random

import pytest

from workers.protocol.backoff import backoff


class Fixed(random.Random):
    """A Random whose random() always returns the same value."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(("attempt", "expected"), [(0, 0.5), (1, 1.0), (2, 2.0), (5, 16.0), (6, 30.0), (60, 30.0)])
def test_grows_twofold_then_caps(attempt: int, expected: float) -> None:
    assert backoff(attempt, rng=Fixed(1.0)) == pytest.approx(expected)


def test_jitter_bounds_are_half_and_full() -> None:
    assert backoff(3, base=1.0, cap=100.0, rng=Fixed(0.0)) == pytest.approx(4.0)
    assert backoff(3, base=1.0, cap=100.0, rng=Fixed(0.5)) == pytest.approx(6.0)


def test_custom_base_and_cap() -> None:
    assert backoff(4, base=0.1, cap=1.0, rng=Fixed(1.0)) == pytest.approx(1.0)
    assert backoff(2, base=0.1, cap=1.0, rng=Fixed(1.0)) == pytest.approx(0.4)


def test_seeded_jitter_within_bounds_and_reproducible() -> None:
    first = [backoff(a, rng=random.Random(42)) for a in range(12)]
    again = [backoff(a, rng=random.Random(42)) for a in range(12)]
    assert first == again
    rng = random.Random(42)
    values = []
    for attempt in range(200):
        delay = min(30.0, 0.5 * 2 ** (attempt % 12))
        value = backoff(attempt % 12, rng=rng)
        assert 0.5 * delay <= value <= delay
        values.append(value / delay)
    assert len(set(values)) > 100  # really jittered, not a constant factor


def test_huge_attempt_does_not_overflow() -> None:
    assert backoff(10**6, rng=random.Random(42)) <= 30.0


def test_default_rng_within_bounds() -> None:
    for _ in range(50):
        assert 0.25 <= backoff(0) <= 0.5


def test_without_jitter_the_delay_is_exact_and_a_negative_attempt_is_the_first() -> None:
    assert [backoff(a, base=1.0, cap=10.0, jitter=False) for a in (-3, 0, 1, 3, 4, 99)] == [1.0, 1.0, 2.0, 8.0, 10.0,
                                                                                            10.0]
