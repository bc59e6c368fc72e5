"""The report of a pre-training run: one PNG page of curves and a Markdown summary.

    python -m espnet_ext.bin.ssl_report exp/ssl_<tag> [--log exp/ssl_<tag>/train.log] [--out_dir DIR]

Writes ``DIR/report.png`` (L_m, L_d, loss, perplexities, accuracy, cosine similarities,
learning rate, feature penalty, Gumbel temperature; per epoch and, where the log has them,
per ``log_interval``) and ``DIR/report.md`` (start, end and best values, the chance levels
log(K+1) and 1/(K+1), collapse warnings); DIR defaults to the experiment dir. Numbers come
from ESPnet's reporter state in ``checkpoint.pth`` and from ``train.log``; see
:mod:`espnet_ext.report.ssl`. Exit status 1 on bad input (the message names the file).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from espnet_ext.core.log import setup_logging
from espnet_ext.report import ssl as report
from espnet_ext.report import write_if_changed


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.ssl_report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("exp_dir", type=Path, help="the pre-training experiment, exp/ssl_<tag>")
    parser.add_argument("--log", type=Path, help="its training log [EXP_DIR/train.log]")
    parser.add_argument("--out_dir", type=Path, help="where report.png and report.md go [EXP_DIR]")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    setup_logging(force=False)
    out_dir = args.out_dir or args.exp_dir
    try:
        if not args.exp_dir.is_dir():
            raise ValueError(f"{args.exp_dir}: expected a pre-training experiment directory; found none")
        history = report.load_history(args.exp_dir, args.log)
        outputs = (
            (out_dir / "report.md", report.format_summary(history, "report.png")),
            (out_dir / "report.png", report.plot_png(history)),
        )
        for path, data in outputs:
            logging.info("%s %s", "wrote" if write_if_changed(path, data) else "unchanged:", path)
    except (ValueError, OSError) as error:
        logging.error("%s", error)
        return 1
    for problem in history.warnings + report.checks(history):
        logging.warning("%s", problem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
