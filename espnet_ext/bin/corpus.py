"""Corpus download and preparation (stage 1, what each recipe's ``local/data.sh`` runs).

Usage, the corpus first, then that corpus's own command line::

    python -m espnet_ext.bin.corpus aishell download TARGET_DIR [--base_url URL] [--remove_archive]
    python -m espnet_ext.bin.corpus aishell prepare CORPUS_DIR OUT_DIR [--require_complete]
    python -m espnet_ext.bin.corpus aishell2 prepare CORPUS_DIR OUT_DIR [--dev_test_dir DIR]
    python -m espnet_ext.bin.corpus jsut download TARGET_DIR [--base_url URL] [--remove_archive]
    python -m espnet_ext.bin.corpus jsut prepare CORPUS_DIR OUT_DIR [--num_dev 250] [--num_eval 250] \\
        [--require_complete]
    python -m espnet_ext.bin.corpus librispeech download TARGET --parts dev-clean ... \\
        [--base_url URL] [--no_md5] [--remove_archive]
    python -m espnet_ext.bin.corpus librispeech prepare CORPUS OUT --parts dev-clean ... [--require_complete]
    python -m espnet_ext.bin.corpus librilight prepare CORPUS OUT --split 10h
    python -m espnet_ext.bin.corpus ravdess download TARGET_DIR [--url URL] [--md5 MD5] [--remove_archive]
    python -m espnet_ext.bin.corpus ravdess prepare CORPUS_DIR OUT_DIR \\
        [--train_actors 1-20] [--dev_actors 21-22] [--test_actors 23-24] [--strict]
    python -m espnet_ext.bin.corpus timit CORPUS OUT --phone_map MAP [--trans_type phn|word] \\
        [--phone_set 60|48|39] [--suffix S]
    python -m espnet_ext.bin.corpus mini CORPUS_DIR OUT_DIR [--lang en|zh|ja]

``python -m espnet_ext.bin.corpus <corpus> --help`` shows the corpus module's documentation
(:mod:`espnet_ext.data.corpora.aishell`, ..., :mod:`espnet_ext.data.mini`): what it reads and
writes, and what it leaves out. Exit status 1, with the error logged, on bad input (a ValueError
or OSError of the library: a missing or incomplete corpus, a malformed file).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from espnet_ext.core.log import setup_logging
from espnet_ext.data import mini
from espnet_ext.data.corpora import aishell, aishell2, jsut, librilight, librispeech, ravdess, timit

logger = logging.getLogger(__name__)

REQUIRE_COMPLETE_HELP = (
    "first check that the copy is complete and stop, naming what is missing, if it is not "
    "(what local/data.sh --download false runs)"
)


def _corpus(corpora, name: str, module, help_: str) -> argparse.ArgumentParser:
    """The sub-parser of corpus ``name``, described by its library ``module``'s docstring."""
    return corpora.add_parser(
        name, help=help_, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def _commands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    return parser.add_subparsers(dest="command", required=True)


def _download_prepare(
    corpora, name: str, module, archives: str, base_url: str, layout: str, splits: str
) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """``download`` / ``prepare`` of a corpus fetched as archives from a folder URL; returns their
    sub-parsers, for the corpus's own options. ``archives`` names what ``download``
    fetches, ``layout`` what ``corpus_dir`` holds and ``splits`` the data dirs ``prepare`` writes."""
    commands = _commands(_corpus(corpora, name, module, f"download and prepare {name}"))
    down = commands.add_parser("download", help=f"download {archives} into TARGET_DIR and extract")
    down.add_argument("target_dir", type=Path)
    down.add_argument("--base_url", default=base_url, help=f"folder URL holding {archives} (http(s):// or file://)")
    down.add_argument("--remove_archive", action="store_true", help="delete the archives once extracted")
    prep = commands.add_parser("prepare", help=f"write the Kaldi data dirs {splits}")
    prep.add_argument("corpus_dir", type=Path, help=f"directory holding {layout}")
    prep.add_argument("out_dir", type=Path, help="output folder, e.g. data")
    prep.add_argument("--require_complete", action="store_true", help=REQUIRE_COMPLETE_HELP)
    return down, prep


def _add_aishell(corpora) -> None:
    archives = " and ".join(aishell.ARCHIVES)
    splits = "/".join(aishell.SPLITS)
    down, prep = _download_prepare(corpora, "aishell", aishell, archives, aishell.BASE_URL, "data_aishell/", splits)
    down.set_defaults(run=lambda a: aishell.download_aishell(a.target_dir, a.base_url, a.remove_archive))
    prep.set_defaults(run=lambda a: aishell.prepare_aishell(a.corpus_dir, a.out_dir, a.require_complete))


def _add_aishell2(corpora) -> None:
    commands = _commands(_corpus(corpora, "aishell2", aishell2, "prepare AISHELL-2 (a local copy)"))
    prep = commands.add_parser("prepare", help="write data dirs train and {dev,test}_{ios,android,mic} found")
    prep.add_argument(
        "corpus_dir", type=Path, help=f"the {aishell2.ROOT_NAME} directory (holding iOS/data), or its parent"
    )
    prep.add_argument("out_dir", type=Path, help="output folder, e.g. data/aishell2")
    prep.add_argument(
        "--dev_test_dir",
        type=Path,
        help=f"the evaluation sets' {aishell2.DEV_TEST_NAME} directory (default: the one in CORPUS_DIR, if any)",
    )
    prep.set_defaults(run=lambda a: aishell2.prepare_aishell2(a.corpus_dir, a.out_dir, a.dev_test_dir))


def _add_jsut(corpora) -> None:
    splits = "/".join(jsut.SPLIT_NAMES)
    down, prep = _download_prepare(corpora, "jsut", jsut, jsut.ARCHIVE, jsut.BASE_URL, f"{jsut.ROOT_NAME}/", splits)
    prep.add_argument("--num_dev", type=int, default=jsut.NUM_DEV, help="basic5000 utterances in dev")
    prep.add_argument("--num_eval", type=int, default=jsut.NUM_EVAL, help="basic5000 utterances in eval1")
    down.set_defaults(run=lambda a: jsut.download_jsut(a.target_dir, a.base_url, a.remove_archive))
    prep.set_defaults(
        run=lambda a: jsut.prepare_jsut(a.corpus_dir, a.out_dir, a.num_dev, a.num_eval, a.require_complete)
    )


def _add_librispeech(corpora) -> None:
    commands = _commands(_corpus(corpora, "librispeech", librispeech, "download and prepare LibriSpeech parts"))
    down = commands.add_parser("download", help="fetch and extract parts into TARGET")
    down.add_argument("target", type=Path, help="directory to download into (LibriSpeech/ goes there)")
    down.add_argument("--base_url", default=librispeech.DEFAULT_BASE_URL, help="folder URL holding <part>.tar.gz")
    down.add_argument("--no_md5", action="store_true", help="do not check openslr's md5 sums")
    down.add_argument("--remove_archive", action="store_true", help="delete each archive once extracted")
    prep = commands.add_parser("prepare", help="write data dirs for parts of an extracted corpus")
    prep.add_argument("corpus", type=Path, help="directory holding LibriSpeech/ (or LibriSpeech/ itself)")
    prep.add_argument("out", type=Path, help="output directory (data dirs <out>/<part_name>/)")
    parts = librispeech.PARTS
    for p in (down, prep):
        p.add_argument(
            "--parts", nargs="+", required=True, choices=parts, metavar="PART", help=f"parts among {', '.join(parts)}"
        )
    prep.add_argument("--require_complete", action="store_true", help=REQUIRE_COMPLETE_HELP)
    down.set_defaults(
        run=lambda a: librispeech.download_librispeech(a.target, a.parts, a.base_url, not a.no_md5, a.remove_archive)
    )
    prep.set_defaults(run=lambda a: librispeech.prepare_librispeech(a.corpus, a.out, a.parts, a.require_complete))


def _add_librilight(corpora) -> None:
    commands = _commands(_corpus(corpora, "librilight", librilight, "prepare Libri-light's limited-supervision sets"))
    prep = commands.add_parser("prepare", help="write the data dir of a split of an extracted copy")
    root = librilight.ROOT_NAME
    prep.add_argument("corpus", type=Path, help=f"directory holding {root}/ (or {root}/ itself)")
    prep.add_argument("out", type=Path, help="output directory (data dir <out>/train_<split>/)")
    prep.add_argument("--split", choices=sorted(librilight.SPLITS), default="10h", help="the split (default: 10h)")
    prep.set_defaults(run=lambda a: librilight.prepare_librilight(a.corpus, a.out, a.split))


def _prepare_ravdess(args: argparse.Namespace) -> None:
    result = ravdess.prepare_ravdess(
        args.corpus_dir, args.out_dir, args.train_actors, args.dev_actors, args.test_actors, strict=args.strict
    )
    logger.info("wrote %s", ", ".join(f"{args.out_dir}/{k}: {v}" for k, v in result.counts.items()))


def _add_ravdess(corpora) -> None:
    commands = _commands(_corpus(corpora, "ravdess", ravdess, "download and prepare RAVDESS speech"))
    prep = commands.add_parser("prepare", help="write data/{train,dev,test} from an unzipped corpus")
    prep.add_argument("corpus_dir", type=Path, help="the directory holding Actor_01 ... Actor_24")
    prep.add_argument("out_dir", type=Path, help="where train/, dev/, test/ and skipped.txt go")
    for name in ravdess.SPLITS:
        default = ravdess.DEFAULT_SPLIT[name]
        prep.add_argument(
            f"--{name}_actors",
            default=default,
            help=f"actors of the {name} set, e.g. 1-20 or 21,22 (default: {default})",
        )
    prep.add_argument(
        "--strict", action="store_true", help="fail on a file that breaks the naming scheme instead of skipping it"
    )
    prep.set_defaults(run=_prepare_ravdess)
    down = commands.add_parser("download", help="download and unzip Audio_Speech_Actors_01-24.zip")
    down.add_argument("target_dir", type=Path)
    down.add_argument("--url", default=ravdess.SPEECH_ZIP_URL, help=f"(default: {ravdess.SPEECH_ZIP_URL})")
    down.add_argument("--md5", default=ravdess.SPEECH_ZIP_MD5, help="expected md5; '' to skip the check")
    down.add_argument("--remove_archive", action="store_true", help="delete the zip once unzipped")
    down.set_defaults(run=lambda a: ravdess.download_ravdess(a.target_dir, a.url, a.md5 or None, a.remove_archive))


def _add_timit(corpora) -> None:
    parser = _corpus(corpora, "timit", timit, "prepare TIMIT (a local copy of LDC93S1)")
    parser.add_argument("corpus", type=Path, help="the TIMIT directory (holding TRAIN/ and TEST/)")
    parser.add_argument("out", type=Path, help="output directory (data dirs <out>/{train,dev,test}<suffix>)")
    parser.add_argument("--phone_map", type=Path, required=True, help="phones.60-48-39.map")
    parser.add_argument("--trans_type", choices=timit.TRANS_TYPES, default="phn", help="phone or word transcripts")
    parser.add_argument("--phone_set", type=int, choices=timit.PHONE_SETS, default=39, help="phones to fold to")
    parser.add_argument("--suffix", default="", help="appended to the set names, e.g. _word")
    parser.set_defaults(
        run=lambda a: timit.prepare_timit(a.corpus, a.out, a.phone_map, a.trans_type, a.phone_set, a.suffix)
    )


def _prepare_mini(args: argparse.Namespace) -> None:
    counts = mini.prepare_mini(args.corpus_dir, args.out_dir, args.lang)
    logger.info("Wrote %s", ", ".join(f"{args.out_dir}/{k}: {v} utterances" for k, v in counts.items()))


def _add_mini(corpora) -> None:
    parser = _corpus(corpora, "mini", mini, "prepare the embedded mini corpus (egs2/mini/corpus)")
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--lang", default="en", choices=mini.LANGS)
    parser.set_defaults(run=_prepare_mini)


def get_parser() -> argparse.ArgumentParser:
    """The command-line parser: the corpus, then its commands and options (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.corpus",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    corpora = parser.add_subparsers(dest="corpus", metavar="CORPUS", required=True)
    for add in (
        _add_aishell,
        _add_aishell2,
        _add_jsut,
        _add_librispeech,
        _add_librilight,
        _add_ravdess,
        _add_timit,
        _add_mini,
    ):
        add(corpora)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1, with the error logged, on bad input)."""
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        args.run(args)
    except (ValueError, OSError) as err:
        logger.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
