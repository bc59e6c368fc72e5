"""Stage 4: keep utterances of a dump dir that are long enough, short enough, transcribed
and CTC-feasible.

Usage::

    python -m espnet_ext.bin.filter_data SRC DST [--fs 16000] [--min_dur 0.1] [--max_dur 20] \\
        [--token_type char|bpe|word|phn] [--bpemodel M] [--asr_config conf/train.yaml] [--nlsyms FILE]

Writes ``DST`` (a full data dir of the kept utterances) and ``DST/removed.txt``
(``uttid<TAB>reason``); see :mod:`espnet_ext.data.filter`. Without ``--asr_config`` the
CTC check is skipped (with a warning). Exits 1 with a message naming the file on bad input
or when nothing is left.
"""

from __future__ import annotations

import argparse
import logging
import sys

from espnet_ext.core.log import setup_logging
from espnet_ext.data.filter import TOKEN_TYPES, filter_data, make_tokenizer, read_nlsyms
from espnet_ext.espnet.lengths import frames_from_config


def get_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.filter_data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("src", help="dump dir written by stage 3 (utt2num_samples, text, ...)")
    parser.add_argument("dst", help="output data dir")
    parser.add_argument("--fs", type=int, default=16000, help="sample rate of the dumped audio (default: 16000)")
    parser.add_argument("--min_dur", type=float, default=0.1, help="minimum duration in seconds (default: 0.1)")
    parser.add_argument("--max_dur", type=float, default=20.0, help="maximum duration in seconds (default: 20)")
    parser.add_argument("--token_type", choices=TOKEN_TYPES, default="char", help="label unit (default: char)")
    parser.add_argument("--bpemodel", default=None, help="sentencepiece model (token_type bpe)")
    parser.add_argument("--asr_config", default=None, help="ESPnet ASR training YAML (enables the CTC check)")
    parser.add_argument("--nlsyms", default=None, help="file of non-linguistic symbols, one per line (char)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        tokenizer = make_tokenizer(args.token_type, args.bpemodel, read_nlsyms(args.nlsyms))
        frames_fn = frames_from_config(args.asr_config) if args.asr_config else None
        filter_data(
            args.src,
            args.dst,
            fs=args.fs,
            min_dur=args.min_dur,
            max_dur=args.max_dur,
            tokenizer=tokenizer,
            frames_fn=frames_fn,
        )
    except (ValueError, FileNotFoundError) as e:
        logging.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
