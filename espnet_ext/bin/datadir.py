"""Kaldi data-dir tools: ``python -m espnet_ext.bin.datadir <command> ...``.

Commands::

    validate DIR [--no-text]
    fix DIR
    subset SRC DST (--utt-list FILE | --first N | --last N | --random N [--seed S] | --spk-list FILE)
    split DIR N [--by-speaker]
    combine DST SRC1 SRC2 ...
    filter SRC DST --exclude FILE
    from_manifest MANIFEST DST --set NAME [--no-text]

Bad input exits with status 1 and a message naming the file (and line) at fault.
See :mod:`espnet_ext.data.datadir` (validate, fix, from_manifest) and :mod:`espnet_ext.data.subsets`
(subset, split, combine, filter) for the semantics.
"""

from __future__ import annotations

import argparse
import logging
import sys

from espnet_ext.core.log import setup_logging
from espnet_ext.data import datadir, kaldi_files, subsets


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: expected a positive integer")
    return value


def get_parser() -> argparse.ArgumentParser:
    """The argument parser (one sub-command per tool)."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.datadir",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a data dir; exit 1 naming the first bad file:line")
    p.add_argument("dir")
    p.add_argument("--no-text", action="store_true", help="text is not required")

    p = sub.add_parser("fix", help="sort, dedupe, keep utterances present in every file (backup in DIR/.backup)")
    p.add_argument("dir")

    p = sub.add_parser("subset", help="copy a subset of utterances")
    p.add_argument("src")
    p.add_argument("dst")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--utt-list", help="file whose first column lists the utterances to keep")
    group.add_argument("--first", type=_positive_int, help="the first N utterances (C-locale order)")
    group.add_argument("--last", type=_positive_int, help="the last N utterances")
    group.add_argument("--random", type=_positive_int, help="N utterances drawn at random (see --seed)")
    group.add_argument("--spk-list", help="file whose first column lists the speakers to keep")
    p.add_argument("--seed", type=int, default=0, help="random seed for --random (default: 0)")

    p = sub.add_parser("split", help="write DIR/split{N}/{1..N}/ (reused when up to date)")
    p.add_argument("dir")
    p.add_argument("num", type=_positive_int)
    p.add_argument("--by-speaker", action="store_true", help="keep each speaker's utterances together")

    p = sub.add_parser("combine", help="union of data dirs (utterance ids must be unique)")
    p.add_argument("dst")
    p.add_argument("srcs", nargs="+")

    p = sub.add_parser("filter", help="copy SRC without the utterances listed in --exclude")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--exclude", required=True, help="file whose first column lists utterances to remove")

    p = sub.add_parser(
        "from_manifest",
        help="a data dir from a TSV manifest's rows of one set "
        "(header columns uttid, set, spk, path, text; tools/synth_corpus's manifest.tsv)",
    )
    p.add_argument("manifest")
    p.add_argument("dst")
    p.add_argument("--set", required=True, dest="set_name", help="the value of the set column to take")
    p.add_argument("--no-text", action="store_true", help="write no text (unlabeled audio)")
    return parser


def run(args: argparse.Namespace) -> None:
    """Execute one parsed command."""
    if args.command == "validate":
        num = datadir.validate_data_dir(args.dir, require_text=not args.no_text)
        logging.info("%s: valid data dir with %d utterance(s)", args.dir, num)
    elif args.command == "fix":
        datadir.fix_data_dir(args.dir)
    elif args.command == "subset":
        selector = dict(
            utt_list=kaldi_files.read_id_list(args.utt_list) if args.utt_list else None,
            first=args.first,
            last=args.last,
            random_n=args.random,
            seed=args.seed,
            spk_list=kaldi_files.read_id_list(args.spk_list) if args.spk_list else None,
        )
        subsets.subset_data_dir(args.src, args.dst, **selector)
    elif args.command == "split":
        subsets.split_data_dir(args.dir, args.num, by_speaker=args.by_speaker)
    elif args.command == "combine":
        subsets.combine_data_dirs(args.dst, args.srcs)
    elif args.command == "filter":
        subsets.exclude_utts(args.src, args.dst, args.exclude)
    elif args.command == "from_manifest":
        datadir.data_dir_from_manifest(args.manifest, args.dst, args.set_name, with_text=not args.no_text)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (1 on bad input)."""
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        run(args)
    except (ValueError, FileNotFoundError) as e:
        logging.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
