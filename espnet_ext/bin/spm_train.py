"""Train a sentencepiece model: ``python -m espnet_ext.bin.spm_train --input=F --vocab_size=N ...``.

The options are sentencepiece's own ``spm_train`` options (``--key=value``); ESPnet's wheel has
no ``spm_train`` entry point, so stage 5 of asr.sh calls this instead.
"""

from __future__ import annotations

import sys


def parse_options(argv: list[str]) -> dict:
    """``["--a=1", "--b=x"]`` -> ``{"a": "1", "b": "x"}``; anything else is an error naming it."""
    options = {}
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            raise SystemExit(f"spm_train: expected --key=value options; found {arg!r}")
        key, value = arg[2:].split("=", 1)
        options[key] = value
    return options


def main(argv: list[str] | None = None) -> int:
    import sentencepiece as spm

    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    spm.SentencePieceTrainer.train(**parse_options(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
