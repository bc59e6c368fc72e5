"""The open-vocabulary study's report (``egs2/synth/study.sh``): what pre-training buys at each
labeled-data size.

Input, a manifest TSV with the header ``arm subset seed updates exp``: one fine-tuning
experiment a line; ``arm`` is ``random`` (random initialisation, ``updates`` 0) or
``pretrained`` (from the pre-training checkpoint of ``updates`` updates). Each experiment's
error rate per test set is read from its one ``<decode_glob>/<test_set>/score_<metric>/result.txt``
(:func:`espnet_ext.report.seeds.error_rate`; ``decode_*`` unless another glob is given, e.g.
``decode_*_valid.loss.ave_5best`` for the models averaged over the epochs of lowest valid loss).

Output (:func:`markdown`, :func:`plot_png`):

* per labeled subset and test set, the random and the pre-trained arm (the last checkpoint of
  each seed) as mean ± sd over seeds, and the ratio of their means;
* the error rate against pre-training updates on the subsets that have several checkpoints
  (0 updates: random initialisation), mean over seeds: a table and a plot.
"""

from __future__ import annotations

import csv
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from espnet_ext.report import PathLike, figure_png, pyplot, seeds

COLUMNS = ("arm", "subset", "seed", "updates", "exp")
ARMS = ("random", "pretrained")


class Run(NamedTuple):
    """One fine-tuning experiment of the manifest."""

    arm: str
    subset: str
    seed: int
    updates: int
    exp: Path


def read_manifest(path: PathLike) -> list[Run]:
    """The manifest's runs; relative ``exp`` paths are taken relative to the manifest's directory.
    ValueError naming the file and line for a wrong header, arm or number."""
    path = Path(path)
    runs = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if tuple(header or ()) != COLUMNS:
            raise ValueError(f"{path}: expected the header {' '.join(COLUMNS)!r}, got {header!r}")
        for line, row in enumerate(reader, start=2):
            if len(row) != len(COLUMNS) or row[0] not in ARMS:
                raise ValueError(f"{path}:{line}: expected {len(COLUMNS)} fields, arm one of {ARMS}: {row!r}")
            try:
                seed, updates = int(row[2]), int(row[3])
            except ValueError:
                raise ValueError(f"{path}:{line}: seed and updates must be integers: {row!r}") from None
            exp = Path(row[4])
            runs.append(Run(row[0], row[1], seed, updates, exp if exp.is_absolute() else path.parent / exp))
    if not runs:
        raise ValueError(f"{path}: no runs")
    return runs


DECODE_GLOB = "decode_*"


def error_rate(run: Run, test_set: str, metric: str, decode_glob: str = DECODE_GLOB) -> float:
    """The run's error rate (%) on ``test_set``: the ``Sum/Avg`` row of its scored result."""
    return seeds.error_rate(run.exp, test_set, metric, decode_glob)


def arm_stats(runs: Sequence[Run], test_set: str, metric: str, decode_glob: str = DECODE_GLOB) -> seeds.ArmStats:
    """The runs' error rates on ``test_set`` with their mean and sd (:func:`espnet_ext.report.seeds.arm_stats`)."""
    return seeds.arm_stats([r.exp for r in runs], test_set, metric, decode_glob)


def _subsets(runs: Sequence[Run]) -> list[str]:
    return list(dict.fromkeys(r.subset for r in runs))


def arm_runs(runs: Sequence[Run], subset: str) -> dict[str, list[Run]]:
    """Per arm, one run per seed: the random ones, and per seed the pre-trained run from its
    latest checkpoint (the most updates)."""
    random = sorted((r for r in runs if r.subset == subset and r.arm == "random"), key=lambda r: r.seed)
    latest: dict[int, Run] = {}
    for r in runs:
        if (
            r.subset == subset
            and r.arm == "pretrained"
            and (r.seed not in latest or r.updates > latest[r.seed].updates)
        ):
            latest[r.seed] = r
    return {"random": random, "pretrained": [latest[s] for s in sorted(latest)]}


def curve(
    runs: Sequence[Run], subset: str, test_set: str, metric: str, decode_glob: str = DECODE_GLOB
) -> list[tuple[int, float, int]]:
    """(updates, mean error rate over seeds, number of seeds) on ``subset``, 0 updates being random
    initialisation; in order of updates."""
    by_updates: dict[int, list[float]] = defaultdict(list)
    for r in runs:
        if r.subset == subset:
            by_updates[0 if r.arm == "random" else r.updates].append(error_rate(r, test_set, metric, decode_glob))
    return [(n, statistics.fmean(v), len(v)) for n, v in sorted(by_updates.items())]


def curve_subsets(runs: Sequence[Run]) -> list[str]:
    """The subsets fine-tuned from more than one checkpoint."""
    return [s for s in _subsets(runs) if len({r.updates for r in runs if r.subset == s and r.arm == "pretrained"}) > 1]


def markdown(
    runs: Sequence[Run],
    test_sets: Sequence[str],
    metric: str = "cer",
    note: str | None = None,
    decode_glob: str = DECODE_GLOB,
) -> str:
    """The report as Markdown: the arms table, then the checkpoint curve's table."""
    m = metric.upper()
    lines = ["# Pre-training on unlabeled speech, CTC fine-tuning on a few minutes of labeled speech", ""]
    if note:
        lines += [note, ""]
    lines += [
        f"## {m} (%) by labeled subset: random initialisation against pre-trained (last checkpoint)",
        "",
        "|subset|test set|random: mean ± sd (per seed)|pre-trained: mean ± sd (per seed)|pre-trained / random|",
        "|---|---|---|---|---|",
    ]
    for subset in _subsets(runs):
        arms = arm_runs(runs, subset)
        if not arms["random"] or not arms["pretrained"]:
            continue
        updates = sorted({r.updates for r in arms["pretrained"]})
        for t in test_sets:
            stats = {a: arm_stats(arms[a], t, metric, decode_glob) for a in ARMS}
            base = stats["random"].mean
            ratio = f"{stats['pretrained'].mean / base:.2f}" if base else "n/a"
            lines.append(
                f"|{subset}|{t}|{stats['random'].cell()}|{stats['pretrained'].cell()} "
                f"[{', '.join(map(str, updates))} updates]|{ratio}|"
            )
    for subset in curve_subsets(runs):
        lines += [
            "",
            f"## {m} (%) on {subset} against pre-training updates (0: random initialisation; mean over seeds)",
            "",
            "|updates|" + "|".join(test_sets) + "|seeds|",
            "|---:|" + "---:|" * len(test_sets) + "---:|",
        ]
        curves = [curve(runs, subset, t, metric, decode_glob) for t in test_sets]
        for k, (n, _, row_seeds) in enumerate(curves[0]):
            lines.append(f"|{n}|" + "|".join(f"{c[k][1]:.1f}" for c in curves) + f"|{row_seeds}|")
    return "\n".join(lines) + "\n"


def plot_png(
    runs: Sequence[Run], test_sets: Sequence[str], metric: str = "cer", decode_glob: str = DECODE_GLOB
) -> bytes:
    """Left: the error rate against pre-training updates (a line per test set, per subset with a
    curve); right: pre-trained / random per subset and test set."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles = ("-", "--", ":")
    for j, subset in enumerate(curve_subsets(runs)):
        for k, t in enumerate(test_sets):
            points = curve(runs, subset, t, metric, decode_glob)
            left.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="o",
                color=colors[k % len(colors)],
                linestyle=styles[j % len(styles)],
                label=f"{t} ({subset})",
            )
    left.set_xlabel("pre-training updates (0: random initialisation)")
    left.set_ylabel(f"{metric.upper()} (%)")
    left.set_title(f"{metric.upper()} after CTC fine-tuning from each checkpoint", fontsize=10)
    left.grid(True, alpha=0.3)
    if left.lines:
        left.legend(fontsize=8)
    subsets = [s for s in _subsets(runs) if all(arm_runs(runs, s).values())]
    width = 0.8 / max(len(test_sets), 1)
    for k, t in enumerate(test_sets):
        ratios = []
        for s in subsets:
            arms = arm_runs(runs, s)
            base = arm_stats(arms["random"], t, metric, decode_glob).mean
            pre = arm_stats(arms["pretrained"], t, metric, decode_glob).mean
            ratios.append(pre / base if base else 0)
        right.bar(
            [i + (k - (len(test_sets) - 1) / 2) * width for i in range(len(subsets))],
            ratios,
            width,
            color=colors[k % len(colors)],
            label=t,
        )
    right.axhline(1.0, color="black", linewidth=1)
    right.set_xticks(range(len(subsets)), subsets)
    right.set_ylabel(f"{metric.upper()} pre-trained / random init")
    right.set_title("what pre-training buys (below 1: it helps)", fontsize=10)
    right.grid(True, axis="y", alpha=0.3)
    if subsets:
        right.legend(fontsize=8)
    fig.tight_layout()
    return figure_png(fig)
