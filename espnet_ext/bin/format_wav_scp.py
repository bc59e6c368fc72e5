"""Stage 3: dump a data dir's audio as 16-bit PCM at one sample rate.

Usage::

    python -m espnet_ext.bin.format_wav_scp SRC_DATA DST_DUMP_DIR --fs 16000 --nj N \\
        [--audio_format flac|wav] [--expected_fs 8000,16000]

Writes ``DST_DUMP_DIR/{data/,wav.scp,utt2num_samples,text,utt2spk,spk2utt,feats_type,
audio_format,excluded.txt}``, one audio file per utterance (cut out of the recordings when
``SRC_DATA`` has a ``segments`` file); see :mod:`espnet_ext.data.format`. Exits 1 (with a
message naming the file) on an invalid data dir or when every utterance is excluded.
"""

from __future__ import annotations

import argparse
import logging
import sys

from espnet_ext.core.log import setup_logging


def _rates(text: str) -> list[int]:
    try:
        rates = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated sample rates, e.g. 8000,16000") from None
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive sample rates, e.g. 8000,16000")
    return rates


def get_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.format_wav_scp",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("src", help="source data dir (wav.scp, utt2spk, spk2utt, text; segments optional)")
    parser.add_argument("dst", help="output dump dir")
    parser.add_argument("--fs", type=int, default=16000, help="output sample rate in Hz (default: 16000)")
    parser.add_argument("--nj", type=int, default=1, help="number of parallel worker processes (default: 1)")
    parser.add_argument("--audio_format", choices=["flac", "wav"], default="flac", help="(default: flac)")
    parser.add_argument(
        "--expected_fs",
        type=_rates,
        default=None,
        help="comma-separated source sample rates to accept; others are excluded",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = get_parser().parse_args(argv)
    setup_logging()
    from espnet_ext.data.format import format_wav_scp

    try:
        format_wav_scp(
            args.src, args.dst, fs=args.fs, nj=args.nj, audio_format=args.audio_format, expected_fs=args.expected_fs
        )
    except (ValueError, FileNotFoundError) as e:
        logging.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
