"""Estimate an n-gram language model (interpolated modified Kneser-Ney) and write it as ARPA.

Usage::

    python -m espnet_ext.bin.ngram_train --order 3 --out exp/ngram/3gram.arpa [--vocab tokens.txt] TEXT...

``TEXT``: one sentence per line, tokens separated by spaces, no utterance ids (``-``: standard
input); ``<s>`` and ``</s>`` are added. ``--vocab``: a token list (ESPnet's ``tokens.txt``) whose
tokens absent from the text still get unigram probability (the uniform share that ``<unk>`` gets);
ESPnet's ``<blank>`` and ``<sos/eos>`` are left out. What ``lmplz -o N --discount_fallback``
estimates, without a compiled binary: see :mod:`espnet_ext.lm.ngram`. Prints one line: sentences,
tokens, n-grams per order, time. Exits 1 with a message naming the file on bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys

from espnet_ext.core.log import setup_logging
from espnet_ext.lm.ngram import train


def get_parser() -> argparse.ArgumentParser:
    """The argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.ngram_train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("texts", nargs="+", metavar="TEXT", help="token text, one sentence per line (-: stdin)")
    parser.add_argument("--order", type=int, required=True, help="the n-gram order N (e.g. 3)")
    parser.add_argument("--out", required=True, help="the ARPA file to write (.gz: gzip-compressed)")
    parser.add_argument("--vocab", default=None, help="token list whose tokens all belong to the vocabulary")
    parser.add_argument("--log_level", default="INFO", help="logging level (default: INFO)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = get_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        summary = train(args.texts, args.order, args.out, vocab=args.vocab)
    except (ValueError, OSError) as e:
        logging.error("%s", e)
        return 1
    print(f"ngram_train: {summary.line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
