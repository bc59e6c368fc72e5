"""Error rates of several training arms (e.g. pre-trained and random initialisation), each run
with several seeds: per test set the mean and sample standard deviation over seeds, and the
ratio of the arms' means.

Three seeds are too few to test the arms' means against each other. What can be tested is
each seed on its own: under the table, per test set and seed, each other arm against the first
on that seed's test utterances (MAPSSWE, :mod:`espnet_ext.scoring.significance`): the
difference in points and the two-sided p, ``*`` below 0.05. Seed ``k`` is the ``k``-th
experiment of each arm, so the arms must have as many.

Reads ``<exp>/<decode>/<test_set>/score_<metric>/result.txt`` (stage 13 of asr.sh) of every
experiment dir given; ``<decode>`` is the one decode dir matching ``decode_glob``
(ValueError when there are none or several). Used by ``egs2/mini/pretraining_gain.sh``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from espnet_ext.scoring import significance
from espnet_ext.scoring.result_txt import read_summary


class ArmStats(NamedTuple):
    """One arm on one test set: its error rate (%) per seed, their mean and standard deviation."""

    values: list[float]
    mean: float
    sd: float  # sample standard deviation (n - 1); 0.0 for a single seed

    def cell(self) -> str:
        """``mean ± sd (value per seed, ...)``, one decimal: a table cell."""
        return f"{self.mean:.1f} ± {self.sd:.1f} ({', '.join(f'{v:.1f}' for v in self.values)})"


def result_txt(exp: Path, test_set: str, metric: str, decode_glob: str) -> Path:
    """The ``result.txt`` of ``test_set`` in the one decode dir of ``exp`` matching ``decode_glob``."""
    found = sorted(Path(exp).glob(f"{decode_glob}/{test_set}/score_{metric}/result.txt"))
    if len(found) != 1:
        raise ValueError(
            f"{exp}: expected one {decode_glob}/{test_set}/score_{metric}/result.txt, found {len(found)}"
            + (f": {', '.join(str(p) for p in found)}" if found else " (run stages 12-13)")
        )
    return found[0]


def error_rate(exp: Path, test_set: str, metric: str, decode_glob: str = "decode_*") -> float:
    """The error rate (%) of ``exp`` on ``test_set``: ``Err`` of the Sum/Avg row of its result.txt."""
    return read_summary(result_txt(exp, test_set, metric, decode_glob)).errors


def arm_stats(exps: Sequence[Path], test_set: str, metric: str, decode_glob: str = "decode_*") -> ArmStats:
    """Error rates of ``exps`` on ``test_set`` (:func:`error_rate`), with mean and sd."""
    values = [error_rate(e, test_set, metric, decode_glob) for e in exps]
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return ArmStats(values, statistics.fmean(values), sd)


def table(
    arms: Mapping[str, Sequence[Path]], test_sets: Sequence[str], metric: str, decode_glob: str = "decode_*"
) -> str:
    """A Markdown table: a row per test set, per arm ``mean ± sd`` and the values per seed, then
    the ratio of each other arm's mean to the first arm's."""
    names = list(arms)
    stats: dict[str, dict[str, ArmStats]] = {
        name: {t: arm_stats(arms[name], t, metric, decode_glob) for t in test_sets} for name in names
    }
    head = ["test set"] + [f"{n}: {metric.upper()} % mean ± sd (per seed)" for n in names]
    head += [f"{n} / {names[0]}" for n in names[1:]]
    lines = ["|" + "|".join(head) + "|", "|" + "---|" * len(head)]
    for t in test_sets:
        cells = [t]
        for n in names:
            cells.append(stats[n][t].cell())
        base = stats[names[0]][t].mean
        cells += [f"{stats[n][t].mean / base:.2f}" if base else "n/a" for n in names[1:]]
        lines.append("|" + "|".join(cells) + "|")
    if len(names) > 1:
        lines += [""] + seed_tests(arms, test_sets, metric, decode_glob)
    return "\n".join(lines) + "\n"


def seed_cell(base: Path, other: Path, test_set: str, metric: str, decode_glob: str = "decode_*") -> str:
    """``other`` against ``base`` on ``test_set``: the difference of error rates in points, MAPSSWE's
    two-sided p (the sign test where every segment differs alike), ``*`` when below 0.05.
    ValueError naming both score dirs when their utterances or references differ."""
    dirs = [result_txt(e, test_set, metric, decode_glob).parent for e in (base, other)]
    a, b = (significance.read_score_dir(d) for d in dirs)
    m = significance.mapsswe_utterances(*significance.paired(a, b))
    diff = 100.0 * (b.errors - a.errors) / a.ref_words if a.ref_words else 0.0  # same references
    p = m.reported_p
    text = "p<0.001" if p < 0.001 else f"p={p:.3f}" if p < 0.1 else f"p={p:.2f}"
    return f"{diff:+.1f}, {text}" + (" sign test" if m.no_variance else "") + (" *" if m.significant() else "")


def seed_tests(
    arms: Mapping[str, Sequence[Path]], test_sets: Sequence[str], metric: str, decode_glob: str = "decode_*"
) -> list[str]:
    """The per-seed tests under the table (see the module docstring), as Markdown lines."""
    names = list(arms)
    counts = [len(arms[n]) for n in names]
    if len(set(counts)) > 1:
        return [
            f"Per seed: not tested (the arms have {', '.join(map(str, counts))} seeds; seed k pairs the k-th "
            "experiments of the arms)."
        ]
    m = metric.upper()
    lines = [
        f"Per seed, each arm against {names[0]} on that seed's test utterances: the difference in {m} points "
        f'and MAPSSWE\'s two-sided p (* p < 0.05; "sign test": every segment differs by the same count, '
        "MAPSSWE has no variance and the exact sign test over the segments gives p). Three seeds are too few "
        "to test the arms' means against each other; these say whether each seed's two runs differ.",
        "",
        "|test set|arm|" + "|".join(f"seed {k + 1}" for k in range(counts[0])) + "|",
        "|---|---|" + "---|" * counts[0],
    ]
    problems = []
    for t in test_sets:
        for n in names[1:]:
            cells = []
            for k, (base, other) in enumerate(zip(arms[names[0]], arms[n])):
                try:
                    cells.append(seed_cell(base, other, t, metric, decode_glob))
                except ValueError as error:
                    cells.append("n/a")
                    problems.append(f"{t}, {n}, seed {k + 1}: {error}")
            lines.append(f"|{t}|{n} vs {names[0]}|" + "|".join(cells) + "|")
    return lines + (["", "n/a (not compared): " + "; ".join(problems)] if problems else [])
