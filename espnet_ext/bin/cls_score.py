"""Score classification output: accuracy, macro-F1, per-class figures and a confusion matrix.

Score one test set (stage 8 of ``egs2/TEMPLATE/cls1/cls.sh``)::

    python -m espnet_ext.bin.cls_score --ref data/test/text --hyp exp/<tag>/<inference>/test/text \\
        --labels data/token_list/labels.txt --out_dir exp/<tag>/<inference>/test/scoring

``--ref`` and ``--hyp`` hold ``<uttid> <label>`` lines; ``--labels`` is the label list of
stage 4 (the classes in order, then ``<unk>``). Writes to ``OUT_DIR``:

``metrics.json``   counts, accuracy, macro-F1, per-class precision/recall/F1/support,
                   the confusion matrix and the utterances without a prediction
``confusion.md``   the confusion matrix as a Markdown table (rows: reference, columns: prediction)
``confusion.png``  the same as an image (cells coloured by the share of their row)

Definitions (all in %): accuracy = correct / reference utterances. A reference utterance
without a prediction (e.g. its audio was excluded in stage 2; an empty prediction counts
the same) is wrong, listed in ``metrics.json`` and shown in a ``(none)`` column. Per class
``c``: precision = TP / predicted as ``c``, recall = TP / references of ``c``, F1 their
harmonic mean (0 when both are 0; a ratio with a zero denominator is 0). Macro-F1 is the
unweighted mean of F1 over the classes that occur in the references or the predictions
(scikit-learn's ``f1_score(average="macro")`` with its default labels). A prediction for an
utterance not in the reference, or a label that is not a class, is an error.

Collect every scored set under an experiment into ``RESULTS.md``::

    python -m espnet_ext.bin.cls_score collect exp/<tag> [--out exp/<tag>/RESULTS.md]

Exit status: 0 on success, 1 on bad input (the message names the file).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from espnet_ext.bin.cls_labels import read_label_list
from espnet_ext.core.atomic import write_text
from espnet_ext.data.kaldi_files import read_map

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
        precision = _ratio(tp, predicted)
        recall = _ratio(tp, support)
        f1 = _ratio(2 * precision * recall, precision + recall)
        return dict(precision=100 * precision, recall=100 * recall, f1=100 * f1, support=support.astype(int))

    @property
    def macro_f1(self) -> float:
        """Mean F1 (in %) over the classes in the references or the predictions."""
        present = (self.confusion.sum(axis=1) + self.confusion[:, :-1].sum(axis=0)) > 0
        return float(self.per_class()["f1"][present].mean()) if present.any() else 0.0


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
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


def confusion_markdown(scores: Scores) -> str:
    """Rows: reference class; columns: predicted class (and ``(none)`` when any is missing)."""
    columns = scores.classes + ([NONE_COLUMN] if scores.missing else [])
    lines = ["|ref \\ hyp|" + "|".join(columns) + "|", "|---" * (len(columns) + 1) + "|"]
    for name, row in zip(scores.classes, scores.confusion):
        cells = row if scores.missing else row[:-1]
        lines.append(f"|{name}|" + "|".join(str(int(x)) for x in cells) + "|")
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


def plot_confusion(scores: Scores, path: Path, title: str) -> None:
    """The confusion matrix as a PNG (matplotlib's Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = scores.confusion if scores.missing else scores.confusion[:, :-1]
    columns = scores.classes + ([NONE_COLUMN] if scores.missing else [])
    share = _ratio(matrix.astype(float), matrix.sum(axis=1, keepdims=True).astype(float))
    size = 1.0 + 0.6 * len(columns)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(scores.classes)), scores.classes)
    ax.set_xlabel("prediction")
    ax.set_ylabel("reference")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the reference class")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_scores(scores: Scores, out_dir: Path, name: str) -> None:
    """``metrics.json``, ``confusion.md`` and ``confusion.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = scores.per_class()
    metrics = dict(
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
    write_text(out_dir / "metrics.json", json.dumps(metrics, indent=1) + "\n")
    write_text(out_dir / "confusion.md", confusion_markdown(scores))
    plot_confusion(
        scores, out_dir / "confusion.png", f"{name}: accuracy {scores.accuracy:.1f}%, macro-F1 {scores.macro_f1:.1f}%"
    )


def load_scores(metrics_json: Path) -> Scores:
    """A :class:`Scores` back from ``metrics.json``."""
    data = json.loads(Path(metrics_json).read_text(encoding="utf-8"))
    return Scores(data["classes"], np.array(data["confusion"], dtype=np.int64), data["missing"])


def collect_results(exp_dir: Path) -> str:
    """RESULTS.md text: per inference dir of ``exp_dir``, a summary table of its scored sets,
    then each set's confusion matrix (Markdown and the PNG) and per-class figures."""
    from espnet_ext.scoring.results_md import environment_lines as _environment_lines

    exp_dir = Path(exp_dir)
    found = sorted(exp_dir.glob(f"*/*/{SCORE_DIR}/metrics.json"))
    if not found:
        raise ValueError(f"{exp_dir}: expected <inference>/<set>/{SCORE_DIR}/metrics.json below it, found none")
    out = [
        "<!-- Generated by `python -m espnet_ext.bin.cls_score collect`. -->",
        "# RESULTS",
        "## Environments",
        *_environment_lines(),
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


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.cls_score",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--hyp", type=Path, help="predictions (<uttid> <label>)")
    mode.add_argument("--collect", type=Path, metavar="EXP_DIR", help="write RESULTS.md for EXP_DIR")
    parser.add_argument("--ref", type=Path, help="reference labels (<uttid> <label>)")
    parser.add_argument("--labels", type=Path, help="label list of stage 4 (classes, then <unk>)")
    parser.add_argument("--out_dir", type=Path, help="where metrics.json, confusion.{md,png} go")
    parser.add_argument("--name", help="the set's name in titles (default: the --hyp directory's name)")
    parser.add_argument("--out", type=Path, help="with --collect: output file (default: EXP_DIR/RESULTS.md)")
    return parser


def run(args: argparse.Namespace) -> str:
    """Score or collect as the arguments say; returns what to print."""
    if args.collect is not None:
        out = args.out or args.collect / "RESULTS.md"
        write_text(out, collect_results(args.collect))
        return f"wrote {out}"
    refs = read_map(args.ref, allow_empty_value=True)
    hyps = read_map(args.hyp, allow_empty_value=True)
    try:
        scores = score(refs, hyps, read_label_list(args.labels))
    except ValueError as e:
        raise ValueError(f"{args.hyp} against {args.ref}: {e}") from None
    name = args.name or args.hyp.parent.name
    write_scores(scores, args.out_dir, name)
    note = f", {len(scores.missing)} without prediction" if scores.missing else ""
    return (
        f"{name}: {scores.total} utterances, accuracy {scores.accuracy:.1f}%, "
        f"macro-F1 {scores.macro_f1:.1f}%{note} ({args.out_dir}/metrics.json)"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["collect"]:
        argv[0] = "--collect"
    args = parser.parse_args(argv)
    if args.hyp is not None:
        missing = [f"--{n}" for n in ("ref", "labels", "out_dir") if getattr(args, n) is None]
        if missing:
            parser.error(f"scoring needs {', '.join(missing)}")
    try:
        print(run(args))
    except (ValueError, OSError) as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
