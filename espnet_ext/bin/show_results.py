"""The results table of every experiment of a recipe, saying which differences are real::

    python -m espnet_ext.bin.show_results EXPDIR [--out FILE] [--metric cer|wer|per|ter] [--test mapsswe|bootstrap]

Reads ``EXPDIR/asr_*/config.yaml`` and stage 13's ``EXPDIR/asr_*/<decode>/<test_set>/
score_<metric>/result.txt``; prints Markdown: per metric a table, a row per experiment and
decode dir (experiments without scores: "not scored"), the config settings that differ across
the experiments, a column per test set; per test set the best row and the rows not
significantly worse than it in bold (``--test``: MAPSSWE at p < 0.05, the default, or the 95 %
paired-bootstrap interval), with a note under each table. ``--out`` also writes it to FILE
(atomically). See :mod:`espnet_ext.report.experiments`. Exit status 1 on bad input (no
experiment dirs, an unreadable config.yaml: the message names it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from espnet_ext.report import experiments


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.show_results",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("expdir", type=Path, help="the recipe's experiment dir (holding asr_*/), e.g. exp")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    parser.add_argument("--metric", choices=("cer", "wer", "per", "ter"), help="only this metric [every one scored]")
    parser.add_argument(
        "--test",
        choices=experiments.TESTS,
        default="mapsswe",
        help="the paired test against each test set's best row [mapsswe]",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.out is not None:
            text = experiments.write_results(args.expdir, args.out, args.metric, args.test)
        else:
            text = experiments.format_results(args.expdir, args.metric, args.test)
    except (ValueError, OSError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    print(text, end="" if text.endswith("\n") else "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
