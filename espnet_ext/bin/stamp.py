"""The inputs of a recipe step: is the step done with them, and which directory holds its result.

    python -m espnet_ext.bin.stamp check MARKER [INPUTS]   # exit 0: MARKER records these inputs
    python -m espnet_ext.bin.stamp dir BASE --save FILE [INPUTS]

INPUTS: ``--config NAME=YAML[@KEY,KEY]`` (compared by parsed content; only those top-level keys
when given), ``--file NAME=PATH`` (by SHA-256; a directory by its files'; a missing file is an
input too), ``--option NAME=VALUE``; ``--cache FILE`` keeps file hashes.

``check`` prints one line, the reason: "already done", "not done yet" or what changed
(``config: max_epoch 15 -> 6``); when not done, the current record goes to ``MARKER.next``
(``mv MARKER.next MARKER`` marks the step done with the inputs it started with). ``dir`` prints
the directory for a result (:func:`espnet_ext.core.stamps.choose_dir`), then, when that is not
BASE, a line saying why; the record goes to FILE. See :mod:`espnet_ext.core.stamps`.
"""

import argparse
import sys
from pathlib import Path

from espnet_ext.core import stamps


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("check", "dir"))
    parser.add_argument("path", type=Path, help="check: the step's marker file; dir: the base directory")
    parser.add_argument("--save", type=Path, help="dir: write the record of the inputs here")
    parser.add_argument("--config", action="append", default=[], metavar="NAME=YAML")
    parser.add_argument("--file", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--cache", type=Path, help="JSON file of cached file hashes")
    return parser


def current_record(args: argparse.Namespace) -> dict:
    groups = {flag: stamps.parse_assignments(getattr(args, flag), f"--{flag}") for flag in ("config", "file", "option")}
    seen = set()
    for flag, names in groups.items():
        if seen & names.keys():
            raise ValueError(f"--{flag}: {sorted(seen & names.keys())} named by another input too")
        seen |= names.keys()
    cache = stamps.HashCache(args.cache)
    current = stamps.record(groups["config"], {k: Path(v) for k, v in groups["file"].items()}, groups["option"], cache)
    cache.save()
    return current


def main(argv=None) -> int:
    args = get_parser().parse_args(argv)
    try:
        current = current_record(args)
    except ValueError as e:
        print(f"stamp: {e}", file=sys.stderr)
        return 2
    if args.command == "check":
        done, reason = stamps.is_done(args.path, current)
        if not done:
            stamps.write_record(args.path.with_name(args.path.name + ".next"), current)
        print(reason)
        return 0 if done else 1
    if args.save is None:
        print("stamp dir: --save FILE is required", file=sys.stderr)
        return 2
    chosen, reason = stamps.choose_dir(args.path, current)
    stamps.write_record(args.save, current)
    print(chosen)
    if reason:
        print(reason)
    return 0


if __name__ == "__main__":
    sys.exit(main())
