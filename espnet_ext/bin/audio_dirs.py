"""Untranscribed audio for pre-training: a data dir (``wav.scp``, ``utt2spk``, ``spk2utt``) from
directory trees of audio files, optionally with held-out speakers as a validation set.

Usage (what ``egs2/TEMPLATE/ssl1/data_from_asr1.sh`` runs for each extra directory)::

    python -m espnet_ext.bin.audio_dirs /data/my_audio /data/more --out data/extra \\
        --prefix extra [--valid_out data/extra_dev --valid_fraction 0.01 --seed 0]

Utterance and speaker ids, skipped files and the held-out share: :mod:`espnet_ext.data.audio_dirs`.
Exit status 1, with the error logged, on bad input.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from espnet_ext.core.log import setup_logging
from espnet_ext.data.audio_dirs import DEFAULT_EXTENSIONS, write_audio_dirs

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """The command-line parser (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.audio_dirs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("roots", nargs="+", type=Path, help="directory trees of audio files")
    p.add_argument("--out", type=Path, required=True, help="data dir to write (wav.scp, utt2spk, spk2utt)")
    p.add_argument("--prefix", default="", help="utterance/speaker id prefix")
    p.add_argument("--extensions", default=",".join(DEFAULT_EXTENSIONS), help="comma-separated, case-insensitive")
    p.add_argument(
        "--speaker_level",
        type=int,
        default=0,
        help="directory depth below a root naming the speaker (0: first level; -1: per file)",
    )
    p.add_argument("--valid_out", type=Path, help="also hold out speakers into this data dir")
    p.add_argument("--valid_fraction", type=float, default=0.01, help="share of speakers held out")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        counts = write_audio_dirs(
            args.roots,
            args.out,
            args.prefix,
            args.extensions.split(","),
            args.speaker_level,
            args.valid_out,
            args.valid_fraction,
            args.seed,
        )
    except (ValueError, OSError) as e:
        logger.error("%s", e)
        return 1
    (out, n), *held_out = counts.items()
    if held_out:
        logger.info("%s: %d utterances; %s: %d (held-out speakers)", out, n, *held_out[0])
    else:
        logger.info("%s: %d utterances", out, n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
