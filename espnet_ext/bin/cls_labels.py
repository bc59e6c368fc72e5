"""Stage 4 of the classification driver: the label list, and a check of every set's labels.

Usage::

    python -m espnet_ext.bin.cls_labels --text dump/raw/train/text --out data/token_list/labels.txt \\
        [--classes "neutral calm happy"] [--check dump/raw/dev/text --check dump/raw/test/text]

``--text`` files hold ``<uttid> <label>`` lines (a Kaldi ``text`` whose transcript is one
class label). The classes are ``--classes`` in the order given, or else the labels found in
the ``--text`` files, sorted. ``--out`` gets one class a line, then ``<unk>`` (ESPnet's
``CLSTask`` counts ``len(token_list) - 1`` classes and needs ``<unk>`` in the list).

Every line of the ``--text`` and ``--check`` files must hold exactly one label, and one of
the classes: anything else is an error naming the file, the utterance and the label (ESPnet
would map an unknown label to ``<unk>``, outside the classifier's outputs). Classes without
a training example are logged as a warning. Exit status 1 on bad input. The library:
:mod:`espnet_ext.data.labels`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from espnet_ext.core.log import setup_logging
from espnet_ext.data.labels import make_label_list

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.cls_labels",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--text", type=Path, action="append", required=True, help="training label file(s)")
    parser.add_argument("--out", type=Path, required=True, help="label list to write")
    parser.add_argument(
        "--classes", default="", help="space-separated classes in output order (default: sorted labels)"
    )
    parser.add_argument("--check", type=Path, action="append", default=[], help="other label files to check")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        make_label_list(args.text, args.out, args.classes.split(), args.check)
    except (ValueError, OSError) as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
