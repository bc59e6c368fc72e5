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

Exit status: 0 on success, 1 on bad input (the message names the file). The library:
:mod:`espnet_ext.scoring.classification` (scores, tables, RESULTS.md) and
:mod:`espnet_ext.report.classification` (the image).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from espnet_ext.core.atomic import write_text
from espnet_ext.report.classification import write_scores
from espnet_ext.scoring.classification import collect_results, score_files, summary


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
    scores = score_files(args.ref, args.hyp, args.labels)
    name = args.name or args.hyp.parent.name
    write_scores(scores, args.out_dir, name)
    return f"{summary(scores, name)} ({args.out_dir}/metrics.json)"


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
    raise SystemExit(main())
