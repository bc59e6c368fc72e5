"""The LM-weight grid of ``tune_lm_weight.sh``: the dev error rate of each decoding, the best
point, and the table of them.

Each point of the grid is a decoding of the dev set with one ``lm_weight`` and ``penalty`` (the
length bonus), scored by asr.sh stage 13 into ``<decode dir>/<dev set>/score_<metric>/result.txt``.
The best point has the lowest error rate; among equal ones the smallest LM weight, then the
smallest penalty (the least fusion that does as well).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from espnet_ext.report import PathLike
from espnet_ext.scoring.result_txt import read_summary

#: the metrics asr.sh scores, in the order it lists them by default (the first one found is tuned)
METRICS = ("cer", "wer", "per")


class GridPoint(NamedTuple):
    """One decoding of the grid: its weights, directory and dev error rate (%)."""

    lm_weight: float
    penalty: float
    decode_dir: Path
    error: float


def parse_point(text: str) -> tuple[float, float, Path]:
    """``"LM_WEIGHT:PENALTY:DECODE_DIR"`` (the command line's form) as its three parts."""
    parts = text.split(":", 2)
    try:
        if len(parts) != 3:
            raise ValueError
        return float(parts[0]), float(parts[1]), Path(parts[2])
    except ValueError:
        raise ValueError(f"a grid point: expected LM_WEIGHT:PENALTY:DECODE_DIR, got {text!r}") from None


def score_file(decode_dir: PathLike, dev_set: str, metric: str) -> Path:
    """Where stage 13 writes the ``metric`` scores of ``dev_set`` in ``decode_dir``."""
    return Path(decode_dir) / dev_set / f"score_{metric}" / "result.txt"


def first_metric(decode_dir: PathLike, dev_set: str) -> str:
    """The first of :data:`METRICS` that ``decode_dir`` has scores of for ``dev_set``."""
    for metric in METRICS:
        if score_file(decode_dir, dev_set, metric).is_file():
            return metric
    raise ValueError(f"{Path(decode_dir) / dev_set}: no score_cer, score_wer or score_per (stage 13 writes them)")


def read_point(lm_weight: float, penalty: float, decode_dir: PathLike, dev_set: str, metric: str) -> GridPoint:
    """The grid point of ``decode_dir``: its ``dev_set`` error rate for ``metric``."""
    path = score_file(decode_dir, dev_set, metric)
    if not path.is_file():
        raise ValueError(f"{path}: no such file (decode and score {dev_set} first: asr.sh stages 12-13)")
    return GridPoint(lm_weight, penalty, Path(decode_dir), read_summary(path).errors)


def best_point(points: Sequence[GridPoint]) -> GridPoint:
    """The lowest error rate; ties go to the smaller LM weight, then the smaller penalty."""
    if not points:
        raise ValueError("an empty grid has no best point")
    return min(points, key=lambda p: (p.error, p.lm_weight, abs(p.penalty)))


def grid_table(points: Sequence[GridPoint], dev_set: str, metric: str) -> str:
    """A Markdown table, a row per point in the given order, the best one in bold, then a line
    naming the choice."""
    best = best_point(points)
    lines = [
        f"| lm_weight | penalty | {dev_set} {metric.upper()} (%) | decoding |",
        "|---:|---:|---:|---|",
    ]
    for point in points:
        cells = [f"{point.lm_weight:g}", f"{point.penalty:g}", f"{point.error:.1f}"]
        if point is best:
            cells = [f"**{c}**" for c in cells]
        lines.append(f"| {' | '.join(cells)} | {point.decode_dir.name} |")
    lines += [
        "",
        f"best: lm_weight {best.lm_weight:g}, penalty {best.penalty:g} ({dev_set} {metric.upper()} {best.error:.1f} %)",
    ]
    return "\n".join(lines) + "\n"
