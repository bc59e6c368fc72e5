"""Classification scoring: accuracy, macro-F1, per-class figures and the confusion matrix.

Definitions (all in %): accuracy = correct / reference utterances. A reference utterance
without a prediction (e.g. its audio was excluded in stage 2; an empty prediction counts
the same) is wrong, listed in ``metrics.json`` and shown in a ``(none)`` column. Per class
``c``: precision = TP / predicted as ``c``, recall = TP / references of ``c``, F1 their
harmonic mean (0 when both are 0; a ratio with a zero denominator is 0). Macro-F1 is the
unweighted mean of F1 over the classes that occur in the references or the predictions
(scikit-learn's ``f1_score(average="macro")`` with its default labels). A prediction for an
utterance not in the reference, or a label that is not a class, is an error.

A scored set's directory holds ``metrics.json`` (counts, accuracy, macro-F1, per-class
precision/recall/F1/support, the confusion matrix and the utterances without a prediction) and
``confusion.md`` (rows: reference, columns: prediction), both written by :func:`write_metrics`;
:func:`collect_results` gathers every scored set of an experiment into ``RESULTS.md``. The plot
of the confusion matrix is :func:`espnet_ext.report.classification.plot_confusion`. The command
line is ``python -m espnet_ext.bin.cls_score``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from espnet_ext.core.atomic import write_text
from espnet_ext.data.kaldi_files import read_map
from espnet_ext.data.labels import read_label_list
from espnet_ext.scoring.results_md import environment_lines

NONE_COLUMN = "(none)"
SCORE_DIR = "scoring"


class Scores(NamedTuple):
    """A scored set. ``confusion[i, j]``: references of class i predicted as class j; the
    last column counts references without a prediction."""

    classes: list[str]
    confusion: np.ndarray  # (C, C + 1) integer counts
    missing: list[str]  # utterances without a prediction

    @property
    def total(self) -> int:
        return int(self.confusion.sum())

    @property
    def correct(self) -> int:
        return int(np.trace(self.confusion[:, :-1]))

    @property
    def accuracy(self) -> float:
        """Correct / references, in %."""
        return 100.0 * self.correct / self.total if self.total else 0.0

    def per_class(self) -> dict[str, np.ndarray]:
        """``precision``, ``recall``, ``f1`` (in %) and ``support`` (references) per class."""
        tp = np.diag(self.confusion[:, :-1]).astype(float)
        predicted = self.confusion[:, :-1].sum(axis=0).astype(float)
        support = self.confusion.sum(axis=1).astype(float)
        precision = ratio(tp, predicted)
        recall = ratio(tp, support)
        f1 = ratio(2 * precision * recall, precision + recall)
        return dict(precision=100 * precision, recall=100 * recall, f1=100 * f1, support=support.astype(int))

    @property
    def macro_f1(self) -> float:
        """Mean F1 (in %) over the classes in the references or the predictions."""
        present = (self.confusion.sum(axis=1) + self.confusion[:, :-1].sum(axis=0)) > 0
        return float(self.per_class()["f1"][present].mean()) if present.any() else 0.0

    def table(self) -> tuple[np.ndarray, list[str]]:
        """The confusion matrix as shown, and its columns: the ``(none)`` column only when an
        utterance has no prediction."""
        if self.missing:
            return self.confusion, self.classes + [NONE_COLUMN]
        return self.confusion[:, :-1], list(self.classes)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` elementwise, 0 where ``den`` is 0."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def score(refs: dict[str, str], hyps: dict[str, str], classes: Sequence[str]) -> Scores:
    """Count ``hyps`` against ``refs`` (``uttid -> label``).

    Raises:
        ValueError: a hypothesis without reference, or a label that is not a class.
    """
    index = {c: i for i, c in enumerate(classes)}
    extra = sorted(set(hyps) - set(refs))
    if extra:
        raise ValueError(f"{len(extra)} prediction(s) for utterances not in the reference, e.g. {extra[0]}")
    confusion = np.zeros((len(classes), len(classes) + 1), dtype=np.int64)
    missing = []
    for uttid in sorted(refs):
        ref = refs[uttid].strip()
        if ref not in index:
            raise ValueError(f"reference of {uttid}: {ref!r} is not a class ({' '.join(classes)})")
        hyp = hyps.get(uttid, "").strip()
        if not hyp:
            missing.append(uttid)
            confusion[index[ref], -1] += 1
        elif hyp not in index:
            raise ValueError(f"prediction for {uttid}: {hyp!r} is not a class ({' '.join(classes)})")
        else:
            confusion[index[ref], index[hyp]] += 1
    return Scores(list(classes), confusion, missing)


def score_files(ref: Path, hyp: Path, labels: Path) -> Scores:
    """:func:`score` of the label files ``hyp`` against ``ref`` with the classes of the label
    list ``labels``; a ValueError names both files."""
    refs = read_map(ref, allow_empty_value=True)
    hyps = read_map(hyp, allow_empty_value=True)
    try:
        return score(refs, hyps, read_label_list(labels))
    except ValueError as e:
        raise ValueError(f"{hyp} against {ref}: {e}") from None


def summary(scores: Scores, name: str) -> str:
    """One line: the set's utterances, accuracy, macro-F1 and those without a prediction."""
    note = f", {len(scores.missing)} without prediction" if scores.missing else ""
    return f"{name}: {scores.total} utterances, accuracy {scores.accuracy:.1f}%, macro-F1 {scores.macro_f1:.1f}%{note}"


def confusion_markdown(scores: Scores) -> str:
    """Rows: reference class; columns: predicted class (and ``(none)`` when any is missing)."""
    matrix, columns = scores.table()
    lines = ["|ref \\ hyp|" + "|".join(columns) + "|", "|---" * (len(columns) + 1) + "|"]
    for name, row in zip(scores.classes, matrix):
        lines.append(f"|{name}|" + "|".join(str(int(x)) for x in row) + "|")
    return "\n".join(lines) + "\n"


def per_class_markdown(scores: Scores) -> str:
    """One row per class: precision, recall, F1 (%) and support."""
    stats = scores.per_class()
    lines = ["|class|precision|recall|F1|support|", "|---|---|---|---|---|"]
    for i, name in enumerate(scores.classes):
        lines.append(
            f"|{name}|{stats['precision'][i]:.1f}|{stats['recall'][i]:.1f}|{stats['f1'][i]:.1f}|{stats['support'][i]}|"
        )
    return "\n".join(lines) + "\n"


def metrics(scores: Scores, name: str) -> dict:
    """What ``metrics.json`` holds for the set ``name``."""
    stats = scores.per_class()
    return dict(
        set=name,
        utterances=scores.total,
        correct=scores.correct,
        accuracy=round(scores.accuracy, 2),
        macro_f1=round(scores.macro_f1, 2),
        classes=scores.classes,
        per_class={
            c: {k: (int(v[i]) if k == "support" else round(float(v[i]), 2)) for k, v in stats.items()}
            for i, c in enumerate(scores.classes)
        },
        confusion=scores.confusion.tolist(),
        confusion_columns=scores.classes + [NONE_COLUMN],
        missing=scores.missing,
    )


def write_metrics(scores: Scores, out_dir: Path, name: str) -> None:
    """``metrics.json`` and ``confusion.md`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "metrics.json", json.dumps(metrics(scores, name), indent=1) + "\n")
    write_text(out_dir / "confusion.md", confusion_markdown(scores))


def load_scores(metrics_json: Path) -> Scores:
    """A :class:`Scores` back from ``metrics.json``."""
    data = json.loads(Path(metrics_json).read_text(encoding="utf-8"))
    return Scores(data["classes"], np.array(data["confusion"], dtype=np.int64), data["missing"])


def collect_results(exp_dir: Path) -> str:
    """RESULTS.md text: per inference dir of ``exp_dir``, a summary table of its scored sets,
    then each set's confusion matrix (Markdown and the PNG) and per-class figures."""
    exp_dir = Path(exp_dir)
    found = sorted(exp_dir.glob(f"*/*/{SCORE_DIR}/metrics.json"))
    if not found:
        raise ValueError(f"{exp_dir}: expected <inference>/<set>/{SCORE_DIR}/metrics.json below it, found none")
    out = [
        "<!-- Generated by `python -m espnet_ext.bin.cls_score collect`. -->",
        "# RESULTS",
        "## Environments",
        *environment_lines(),
        "",
    ]
    for inference_dir in sorted({p.parents[2] for p in found}):
        sets = [p for p in found if p.parents[2] == inference_dir]
        out += [
            f"## {exp_dir.name}/{inference_dir.name}",
            "",
            "|dataset|Snt|Acc (%)|Macro-F1 (%)|No prediction|",
            "|---|---|---|---|---|",
        ]
        scored = [(p.parents[1].name, p, load_scores(p)) for p in sets]
        for name, _, s in scored:
            out.append(f"|{name}|{s.total}|{s.accuracy:.1f}|{s.macro_f1:.1f}|{len(s.missing)}|")
        out.append("")
        for name, path, s in scored:
            png = (path.parent / "confusion.png").relative_to(exp_dir).as_posix()
            out += [
                f"### {name}: confusion matrix (rows: reference, columns: prediction)",
                "",
                f"![{name} confusion matrix]({png})",
                "",
                confusion_markdown(s),
                f"### {name}: per class (%)",
                "",
                per_class_markdown(s),
            ]
    return "\n".join(out)
