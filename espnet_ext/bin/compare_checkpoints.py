"""Compare error rates across pre-training checkpoints (the Python half of compare_checkpoints.sh).

List the checkpoints to fine-tune from, in table order, with their update counts::

    python -m espnet_ext.bin.compare_checkpoints describe --out exp/compare_<cfg>/checkpoints.tsv \\
        [--tag_prefix <cfg>] 'exp/ssl_x/checkpoints/*updates.pth' /models/wav2vec_small.pt ...

Tabulate and plot the scores of the finished fine-tuning experiments ``exp/asr_<tag>``::

    python -m espnet_ext.bin.compare_checkpoints table exp/compare_<cfg>/checkpoints.tsv \\
        [--expdir exp] [--md RESULTS_checkpoints.md] [--png RESULTS_checkpoints.png] \\
        [--metric cer|wer|per] [--decode_tag decode_...] [--asr_config conf/tuning/<cfg>.yaml]

Update counts come from ``<N>updates.pth`` names or from the checkpoints; own checkpoints are
ordered by update count, foreign ones (fairseq, Hugging Face) follow, marked. See
:mod:`espnet_ext.report.checkpoints` for the formats. The outputs are rewritten only when
their content changes. Exit status: 0 on success, 1 on bad input (the message names the file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from espnet_ext.core.log import setup_logging
from espnet_ext.report import checkpoints as report
from espnet_ext.report import write_if_changed


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.compare_checkpoints",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    describe = commands.add_parser("describe", help="list checkpoints (globs expanded) with their update counts")
    describe.add_argument("checkpoints", nargs="+", help="checkpoint files, globs, or Hugging Face directories")
    describe.add_argument("--out", type=Path, required=True, help="the manifest TSV to write")
    describe.add_argument("--tag_prefix", default="", help="prefix of every experiment tag, e.g. the config name")
    table = commands.add_parser("table", help="write the Markdown table and the PNG plot")
    table.add_argument("manifest", type=Path, help="the TSV written by describe")
    table.add_argument("--expdir", type=Path, default=Path("exp"), help="where exp/asr_<tag> are [exp]")
    table.add_argument("--md", type=Path, default=Path("RESULTS_checkpoints.md"), help="[RESULTS_checkpoints.md]")
    table.add_argument("--png", type=Path, default=Path("RESULTS_checkpoints.png"), help="[RESULTS_checkpoints.png]")
    table.add_argument(
        "--metric",
        choices=("cer", "wer", "per"),
        help="the metric of the best row and the plot (default: per, else cer, else wer)",
    )
    table.add_argument("--decode_tag", help="decode dir to read (default: each experiment's newest)")
    table.add_argument("--asr_config", help="the fine-tuning config, named in the table")
    return parser


def run_describe(args: argparse.Namespace) -> None:
    """Write the manifest and log a line per checkpoint."""
    checkpoints = report.describe(args.checkpoints, args.tag_prefix)
    report.write_manifest(checkpoints, args.out)
    for c in checkpoints:
        updates = "unknown updates" if c.updates is None else f"{c.updates} updates"
        logging.info("%s: %s (%s, %s) %s", c.name, updates, c.origin, c.source_format, c.path)
    logging.info("%d checkpoint(s) in %s", len(checkpoints), args.out)


def run_table(args: argparse.Namespace) -> None:
    """Write the table and the plot of the finished experiments."""
    rows = report.collect_rows(report.read_manifest(args.manifest), args.expdir, args.decode_tag)
    if not any(row.scores for row in rows):
        raise ValueError(
            f"{args.manifest}: none of its {len(rows)} checkpoint(s) has finished experiment "
            f"{args.expdir}/asr_<tag> with {report.DONE_MARKER} and scores"
        )
    plot_name = args.png.name if args.png.parent.resolve() == args.md.parent.resolve() else str(args.png)
    text = report.format_table(rows, args.metric, args.asr_config, plot_name)
    for path, data in ((args.md, text), (args.png, report.plot_png(rows, args.metric, args.asr_config))):
        logging.info("%s %s", "wrote" if write_if_changed(path, data) else "unchanged:", path)
    unfinished = [row.checkpoint.name for row in rows if row.scores is None]
    if unfinished:
        logging.warning("not finished (no numbers in the table): %s", ", ".join(unfinished))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(force=False)
    try:
        run_describe(args) if args.command == "describe" else run_table(args)
    except (ValueError, OSError) as error:
        logging.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
