"""Say whether an experiment's error rates are inside the ranges seen before.

    python -m espnet_ext.bin.check_range EXP --range dev=22:38 --range test=10:34 [--metric cer]
        [--decode_glob 'decode_ctc_greedy_*'] [--seen "3 seeds on 2 machines (README)"]

Prints a line per test set and, when one is outside, what to report. Exit status 0 either way
(a figure outside the range is information, not a failure); 1 when the scores cannot be read.
"""

import argparse
import sys
from pathlib import Path

from espnet_ext.report.ranges import parse_range, range_lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp", type=Path, help="the experiment directory (exp/asr_<tag>)")
    parser.add_argument("--range", action="append", required=True, metavar="SET=LOW:HIGH", help="percent")
    parser.add_argument("--metric", default="cer", choices=("cer", "wer", "per"))
    parser.add_argument("--decode_glob", default="decode_*", help="the one decode dir to read")
    parser.add_argument("--seen", default="", help="where the ranges come from, printed with them")
    args = parser.parse_args(argv)
    try:
        ranges = {name: (lo, hi) for name, lo, hi in map(parse_range, args.range)}
        lines, inside = range_lines(args.exp, ranges, args.metric, args.decode_glob)
    except ValueError as e:
        print(f"check_range: {e}", file=sys.stderr)
        return 1
    for line in lines:
        print(line + (f" ({args.seen})" if args.seen else ""))
    if not inside:
        print(
            "Training rounds differently on other CPUs and torch versions; please report this figure with "
            f"{args.exp}/RESULTS.md (it records the CPU, the thread count and the versions)."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
