"""Stage 2: speed-perturbed copies of a data dir.

python -m espnet_ext.bin.speed_perturb data/train data/train_sp --factors 0.9 1.0 1.1
"""

import argparse
import logging
from pathlib import Path

from espnet_ext.core.log import setup_logging
from espnet_ext.data.perturb import speed_perturb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--factors", type=float, nargs="+", required=True)
    args = parser.parse_args(argv)
    setup_logging(force=False)
    n = speed_perturb(args.src, args.dst, args.factors)
    logging.info("Wrote %s: %d utterances (factors %s)", args.dst, n, args.factors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
