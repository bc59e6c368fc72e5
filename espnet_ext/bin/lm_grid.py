"""The table and the choice of an LM-weight grid (tune_lm_weight.sh).

    python -m espnet_ext.bin.lm_grid --dev_set dev [--metric cer] [--out table.md] [--best best.txt] \\
        LM_WEIGHT:PENALTY:DECODE_DIR ...

Reads each decoding's ``<dev_set>/score_<metric>/result.txt`` (asr.sh stage 13), prints a Markdown
table (a row per point, the best in bold) and the choice; ``--out`` writes the table, ``--best``
the chosen ``LM_WEIGHT PENALTY`` on one line, spelled as given (for the shell: the same spelling
gives asr.sh the same options, hence the same decoding). ``--metric``: default the first of
cer, wer, per that the first decoding has. See :mod:`espnet_ext.report.lm_grid`. Bad input: a
message naming the file and exit status 1.
"""

import argparse
import sys
from pathlib import Path

from espnet_ext.core.atomic import write_text
from espnet_ext.report.lm_grid import METRICS, best_point, first_metric, grid_table, parse_point, read_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.lm_grid",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("points", nargs="+", metavar="LM_WEIGHT:PENALTY:DECODE_DIR")
    parser.add_argument("--dev_set", required=True, help="the set tuned on (a test set of each decoding)")
    parser.add_argument("--metric", choices=METRICS, help="default: the first scored of cer, wer, per")
    parser.add_argument("--out", type=Path, help="write the table here")
    parser.add_argument("--best", type=Path, help="write the chosen 'LM_WEIGHT PENALTY' here")
    return parser


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    try:
        parsed = [parse_point(text) for text in args.points]
        metric = args.metric or first_metric(parsed[0][2], args.dev_set)
        points = [read_point(w, p, d, args.dev_set, metric) for w, p, d in parsed]
    except ValueError as e:
        print(f"lm_grid: {e}", file=sys.stderr)
        return 1
    table = grid_table(points, args.dev_set, metric)
    print(table, end="")
    if args.out is not None:
        write_text(args.out, table)
    if args.best is not None:
        weight, penalty, _ = args.points[points.index(best_point(points))].split(":", 2)
        write_text(args.best, f"{weight} {penalty}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
