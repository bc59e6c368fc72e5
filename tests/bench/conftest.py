"""Shared by the benchmark tests: a printed ratio against the printed (rounded) figures it comes
from, and the timing lines of the training-step benchmarks."""

import re

import pytest


def _check_ratio(
    ratio: float, numerator: float, denominator: float, half_unit: float, ratio_half_unit: float = 0.0005
) -> None:
    """``ratio`` (printed to ``2 * ratio_half_unit``) is numerator / denominator of the unrounded
    figures, each printed to ``2 * half_unit``: it lies within the bounds the rounding allows."""
    assert denominator > half_unit, (numerator, denominator)
    low = (numerator - half_unit) / (denominator + half_unit) - ratio_half_unit
    high = (numerator + half_unit) / (denominator - half_unit) + ratio_half_unit
    assert low <= ratio <= high, f"ratio {ratio} outside [{low:.4f}, {high:.4f}] of {numerator} / {denominator}"


@pytest.fixture
def check_ratio():
    return _check_ratio


SECONDS = r"(\d+\.\d+) s/step"
COMPILED_SUMMARY = r"first step \(compilation included\) (\d+\.\d) s; ratio compiled/ours (\d+\.\d+)"


def _step_timings(out: str, ours_label: str, reference_label: str):
    """Our and the reference's printed s/step (both > 0), their ratio line checked against them."""
    ours = re.search(re.escape(ours_label) + r"\s+" + SECONDS, out)
    reference = re.search(re.escape(reference_label) + r"\s+" + SECONDS, out)
    ratio = re.search(r"ratio ours/reference: (\d+\.\d+)", out)
    assert ours and reference and ratio, out
    ours_s, reference_s = float(ours.group(1)), float(reference.group(1))
    assert ours_s > 0 and reference_s > 0
    _check_ratio(float(ratio.group(1)), ours_s, reference_s, half_unit=0.0005)  # s/step printed to 1 ms
    return ours_s, reference_s


def _compiled_timing(out: str, compiled_pattern: str, ours_s: float):
    """The ``--compile`` row (``compiled_pattern``'s groups, then its s/step) and summary, checked
    against our s/step; None when neither is printed."""
    compiled = re.search(compiled_pattern + r"\s+" + SECONDS, out)
    summary = re.search(COMPILED_SUMMARY, out)
    assert bool(compiled) == bool(summary), out
    if compiled is None:
        return None
    _check_ratio(float(summary.group(2)), float(compiled.groups()[-1]), ours_s, half_unit=0.0005)
    return compiled


@pytest.fixture
def step_timings():
    return _step_timings


@pytest.fixture
def compiled_timing():
    return _compiled_timing
