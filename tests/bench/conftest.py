"""Shared by the benchmark tests: a printed ratio against the printed (rounded) figures it comes from."""

import pytest


def _check_ratio(ratio: float, numerator: float, denominator: float, half_unit: float,
                 ratio_half_unit: float = 0.0005) -> None:
    """``ratio`` (printed to ``2 * ratio_half_unit``) is numerator / denominator of the unrounded
    figures, each printed to ``2 * half_unit``: it lies within the bounds the rounding allows."""
    assert denominator > half_unit, (numerator, denominator)
    low = (numerator - half_unit) / (denominator + half_unit) - ratio_half_unit
    high = (numerator + half_unit) / (denominator - half_unit) + ratio_half_unit
    assert low <= ratio <= high, f"ratio {ratio} outside [{low:.4f}, {high:.4f}] of {numerator} / {denominator}"


@pytest.fixture
def check_ratio():
    return _check_ratio
