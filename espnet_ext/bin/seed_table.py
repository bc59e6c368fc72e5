"""Mean ± sd over seeds of each arm's error rate, per test set (espnet_ext.report.seeds)::

    python -m espnet_ext.bin.seed_table --arm random exp/a exp/b exp/c \\
        --arm pre-trained exp/d exp/e exp/f --test_sets dev test [--metric cer] \\
        [--decode_glob 'decode_ctc_greedy_*'] [--out RESULTS_seeds.md]

Prints the Markdown table (and writes it to ``--out``). Exit status 1 when a result is missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from espnet_ext.core.atomic import write_text
from espnet_ext.report import seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.seed_table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--arm",
        nargs="+",
        action="append",
        required=True,
        metavar=("NAME", "EXP"),
        help="an arm's name, then its experiment dirs (one per seed)",
    )
    parser.add_argument("--test_sets", nargs="+", required=True)
    parser.add_argument("--metric", default="cer", choices=("cer", "wer", "per"))
    parser.add_argument("--decode_glob", default="decode_*", help="the decode dir to read in each exp")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args(argv)
    if any(len(arm) < 2 for arm in args.arm):
        parser.error("--arm needs a name and at least one experiment dir")
    arms = {arm[0]: [Path(p) for p in arm[1:]] for arm in args.arm}
    try:
        text = seeds.table(arms, args.test_sets, args.metric, args.decode_glob)
    except (ValueError, OSError) as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    print(text, end="")
    if args.out:
        write_text(args.out, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
