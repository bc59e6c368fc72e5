"""Parameter counts of the backbone presets, the model family first.

Usage::

    python -m espnet_ext.bin.presets wav2vec2 [PRESET ...]    # total and per part (espnet_ext.wav2vec2.presets)
    python -m espnet_ext.bin.presets wav2vec1 [PRESET ...]    # backbone and prediction head (espnet_ext.wav2vec1)

Without presets, every preset of the family is printed. What is counted: the docstrings of
:mod:`espnet_ext.wav2vec2.presets` and :mod:`espnet_ext.wav2vec1.config`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from espnet_ext.wav2vec1 import config as wav2vec1_config
from espnet_ext.wav2vec1 import pretraining as wav2vec1_pretraining
from espnet_ext.wav2vec2 import presets as wav2vec2_presets


def _wav2vec2(name: str) -> str:
    return wav2vec2_presets.format_counts(name, wav2vec2_presets.parameter_count(wav2vec2_presets.preset_config(name)))


def _wav2vec1(name: str) -> str:
    backbone, head = wav2vec1_pretraining.parameter_count(wav2vec1_config.preset_config(name))
    return (
        f"{name:6s} backbone {backbone / 1e6:6.2f} M  prediction head {head / 1e6:5.2f} M  "
        f"total {(backbone + head) / 1e6:6.2f} M"
    )


#: family -> (its presets, one preset's counts as text, the help line)
FAMILIES = {
    "wav2vec2": (wav2vec2_presets.PRESETS, _wav2vec2, "wav2vec 2.0: total, backbone, pre-training heads, per part"),
    "wav2vec1": (
        wav2vec1_config.PRESETS,
        _wav2vec1,
        "wav2vec 1.0: backbone (encoder + context network) and prediction head (the K step transforms)",
    ),
}


def get_parser() -> argparse.ArgumentParser:
    """The command-line parser (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.presets",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    families = parser.add_subparsers(dest="family", metavar="FAMILY", required=True)
    for family, (presets, _, help_) in FAMILIES.items():
        sub = families.add_parser(family, help=help_, description=f"Parameter counts of the {help_}.")
        sub.add_argument("presets", nargs="*", metavar="PRESET", help=f"one of {', '.join(presets)} (default: all)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: print the counts; an unknown preset is a usage error (exit status 2)."""
    parser = get_parser()
    args = parser.parse_args(argv)
    presets, counts, _ = FAMILIES[args.family]
    names = args.presets or list(presets)
    unknown = [name for name in names if name not in presets]
    if unknown:
        parser.error(f"unknown {args.family} presets {unknown}; expected some of {', '.join(presets)}")
    for name in names:
        print(counts(name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
