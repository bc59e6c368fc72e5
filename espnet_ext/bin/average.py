"""Average the last N epoch checkpoints of an ESPnet experiment.

    python -m espnet_ext.bin.average exp/<tag> --last 10 [--out exp/<tag>/last10.ave.pth]
    python -m espnet_ext.bin.average --inputs a.pth b.pth --out avg.pth
"""

import argparse
import logging
import sys
from pathlib import Path

from espnet_ext.espnet.averaging import average_last, average_state_dicts
from espnet_ext.core.log import setup_logging


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir", nargs="?", type=Path, help="directory with {epoch}epoch.pth files")
    parser.add_argument("--last", type=int, help="average the last N epochs")
    parser.add_argument("--inputs", nargs="+", type=Path, help="average these checkpoint files")
    parser.add_argument("--out", type=Path, help="output (default: <exp_dir>/last<N>.ave.pth)")
    return parser


def main(argv=None) -> int:
    setup_logging(force=False)
    args = get_parser().parse_args(argv)
    import torch

    try:
        if args.inputs:
            if args.out is None:
                raise ValueError("--inputs needs --out")
            torch.save(average_state_dicts(args.inputs), args.out)
            out = args.out
        elif args.exp_dir is not None and args.last:
            out = average_last(args.exp_dir, args.last, args.out)
        else:
            raise ValueError("give an exp_dir with --last N, or --inputs ... --out")
    except ValueError as e:
        logging.error("%s", e)
        return 1
    logging.info("Wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
