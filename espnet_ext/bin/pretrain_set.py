"""The pre-training set of a data dir (ssl1 stage 2): other sets' sentences left out, consecutive
utterances of a speaker concatenated, a random share held out for validation.

Usage (what ``egs2/TEMPLATE/ssl1/ssl.sh`` stage 2 runs; Mandarin-Wav2Vec2's AISHELL-2 set-up)::

    python -m espnet_ext.bin.pretrain_set data/ssl_train data/ssl_train_pt \\
        --exclude_texts_of data/dev data/test --concat 6 --audio_dir dump/concat/ssl_train \\
        --valid_dir data/ssl_train_pt_valid --valid_percent 1 --seed 0

What each option does, what is left out and listed in ``excluded.txt``, the ids and files
written: :mod:`espnet_ext.data.pretrain_set`. Exit status 1, with the error logged, on bad input.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from espnet_ext.core.log import setup_logging
from espnet_ext.data.pretrain_set import CONCAT_AUDIO, prepare_pretrain_set

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """The command-line parser (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.pretrain_set",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src", type=Path, help="the source data dir (wav.scp, utt2spk; text to compare transcripts)")
    p.add_argument("train_dir", type=Path, help="data dir to write: the pre-training set (less the held-out share)")
    p.add_argument(
        "--exclude_texts_of",
        nargs="+",
        type=Path,
        default=[],
        metavar="DIR",
        help="data dirs whose transcripts (white space ignored) are left out of the set",
    )
    joined = p.add_mutually_exclusive_group()
    joined.add_argument(
        "--concat", type=int, default=0, metavar="N", help="join N consecutive utterances of a speaker (0: off)"
    )
    joined.add_argument(
        "--concat_seconds", type=float, default=0.0, metavar="S", help="join as many as fit in S seconds (0: off)"
    )
    p.add_argument(
        "--concat_audio",
        choices=CONCAT_AUDIO,
        default="files",
        help="the joined audio: written once as WAV files in --audio_dir, or sox commands in wav.scp",
    )
    p.add_argument("--audio_dir", type=Path, help="where the joined WAV files go (--concat_audio files)")
    p.add_argument("--valid_dir", type=Path, help="data dir to write: the held-out share (with --valid_percent)")
    p.add_argument(
        "--valid_percent", type=float, default=0.0, metavar="P", help="share of utterances held out, %% (0: off)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the held-out draw")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        prepare_pretrain_set(
            args.src,
            args.train_dir,
            args.valid_dir,
            args.exclude_texts_of,
            args.concat,
            args.concat_seconds,
            args.concat_audio,
            args.audio_dir,
            args.valid_percent,
            args.seed,
        )
    except (ValueError, OSError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
