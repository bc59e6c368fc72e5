"""Average the last N epoch checkpoints of an ESPnet experiment.

python -m espnet_ext.bin.average exp/<tag> --last 10 [--out exp/<tag>/last10.ave.pth]
python -m espnet_ext.bin.average --inputs a.pth b.pth --out avg.pth
python -m espnet_ext.bin.average --best_name conf/train_asr.yaml   # prints valid.loss.ave.pth, ...
"""

import argparse
import logging
import sys
from pathlib import Path

from espnet_ext.core.log import setup_logging
from espnet_ext.espnet.averaging import average_last, best_average_name, save_average


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exp_dir", nargs="?", type=Path, help="directory with {epoch}epoch.pth files")
    parser.add_argument("--last", type=int, help="average the last N epochs")
    parser.add_argument("--inputs", nargs="+", type=Path, help="average these checkpoint files")
    parser.add_argument("--out", type=Path, help="output (default: <exp_dir>/last<N>.ave.pth)")
    parser.add_argument(
        "--best_name",
        type=Path,
        metavar="CONFIG",
        help="print the name of the best-N average ESPnet writes for this training "
        "config (its best_model_criterion) and exit",
    )
    return parser


def main(argv=None) -> int:
    setup_logging(force=False)
    args = get_parser().parse_args(argv)
    if args.best_name is not None:
        import yaml

        try:
            with open(args.best_name, encoding="utf-8") as f:
                config = yaml.safe_load(f) or {}
        except OSError as e:
            logging.error("--best_name: cannot read %s: %s", args.best_name, e)
            return 1
        print(best_average_name(config))
        return 0
    try:
        if args.inputs:
            if args.out is None:
                raise ValueError("--inputs needs --out")
            out = save_average(args.inputs, args.out)
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
