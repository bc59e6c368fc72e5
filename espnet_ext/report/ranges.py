"""Whether an experiment's error rates fall inside the ranges seen before (e.g. ``make demo``'s
figures against the range its README states, measured over seeds and machines).

A figure outside the range is not an error: training on another CPU or torch version rounds
differently, and a tiny recipe is sensitive to it. The line says so, with what to report.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from espnet_ext.report.seeds import error_rate


def parse_range(text: str) -> tuple[str, float, float]:
    """``"dev=22:38"`` -> ``("dev", 22.0, 38.0)``; ValueError saying what was expected."""
    name, sep, bounds = text.partition("=")
    low, colon, high = bounds.partition(":")
    try:
        if not (sep and colon and name):
            raise ValueError
        lo, hi = float(low), float(high)
    except ValueError:
        raise ValueError(f"expected SET=LOW:HIGH (percent), e.g. dev=22:38; found {text!r}") from None
    if lo > hi:
        raise ValueError(f"{text!r}: the low end {lo} is above the high end {hi}")
    return name, lo, hi


def range_lines(
    exp: Path, ranges: Mapping[str, tuple[float, float]], metric: str = "cer", decode_glob: str = "decode_*"
) -> tuple[list[str], bool]:
    """A line per test set saying whether ``exp``'s error rate is inside its range, and whether
    all are."""
    lines, inside_all = [], True
    for test_set, (lo, hi) in ranges.items():
        value = error_rate(Path(exp), test_set, metric, decode_glob)
        inside = lo <= value <= hi
        inside_all &= inside
        where = "inside" if inside else "OUTSIDE"
        lines.append(f"{test_set} {metric.upper()} {value:.1f} % is {where} the range seen before, {lo:g}-{hi:g} %")
    return lines, inside_all
