"""Libri-light's limited-supervision sets (``librispeech_finetuning.tgz``): Kaldi data dirs.

What it reads, a local copy of the archive extracted (it is not downloaded here: fetch
:data:`ARCHIVE_URL`, ~0.7 GB, and extract it)::

    <corpus>/librispeech_finetuning/1h/{0..5}/{clean,other}/<reader>/<chapter>/<reader>-<chapter>-<nnnn>.flac
    <corpus>/librispeech_finetuning/1h/{0..5}/{clean,other}/<reader>/<chapter>/<reader>-<chapter>.trans.txt
    <corpus>/librispeech_finetuning/9h/{clean,other}/<reader>/<chapter>/...

(``<corpus>`` may also be ``librispeech_finetuning`` itself.) The utterances are LibriSpeech's
(train-clean-100 and train-other-500), ids and transcripts as there. The splits are nested, as
Libri-light defines them and fairseq's ``base_10h`` / ``base_1h`` / ``base_10m`` fine-tune on
them (:data:`SPLITS`): ``10min`` is ``1h/0``; ``1h`` is ``1h/0`` to ``1h/5``; ``10h`` is those
and ``9h``. A chapter may appear in several of these directories, each with a ``.trans.txt``
of its own utterances: the chapters are read directory by directory and their utterances joined.

What it writes, ``<out>/train_<split>/`` (``train_10h``, ``train_1h``, ``train_10min``), as
:mod:`espnet_ext.data.corpora.librispeech` does for a part: ``wav.scp`` (absolute ``.flac``
paths), ``text`` (upper case), ``utt2spk`` (``<reader>-<chapter>``), ``spk2utt``, and
``excluded.txt`` (a ``.flac`` without transcript line or file, a line without ``.flac``, an
empty ``.flac``). A missing split directory, a malformed transcript line and an utterance found
twice raise ValueError naming the file. The count written is logged (no published count is
checked: none was at hand to check against).

Command line (what ``egs2/librispeech/asr1/local/data.sh --train_set train_10h`` runs)::

    python -m espnet_ext.bin.corpus librilight prepare CORPUS OUT --split 10h
"""

from __future__ import annotations

import logging
from pathlib import Path

from espnet_ext.data import datadir, kaldi_files
from espnet_ext.data.corpora.librispeech import PartResult, _chapter_dirs, _chapter_utterances
from espnet_ext.data.corpora.splits import Utterance, log_written

logger = logging.getLogger(__name__)

ARCHIVE_URL = "https://dl.fbaipublicfiles.com/librilight/data/librispeech_finetuning.tgz"
ROOT_NAME = "librispeech_finetuning"
_FOLDS = tuple(f"1h/{n}" for n in range(6))
#: split -> the directories (under ``librispeech_finetuning/``) it is the union of.
SPLITS: dict[str, tuple] = {"10min": _FOLDS[:1], "1h": _FOLDS, "10h": _FOLDS + ("9h",)}
SUBSETS = ("clean", "other")


def set_name(split: str) -> str:
    """The data dir of a split: ``10h`` -> ``train_10h``."""
    return f"train_{split}"


def find_finetuning_root(corpus_dir) -> Path:
    """The ``librispeech_finetuning`` directory: ``corpus_dir/librispeech_finetuning`` or ``corpus_dir``."""
    corpus_dir = Path(corpus_dir)
    if (corpus_dir / ROOT_NAME).is_dir():
        return corpus_dir / ROOT_NAME
    if (corpus_dir / "1h").is_dir() or (corpus_dir / "9h").is_dir():
        return corpus_dir
    raise ValueError(
        f"{corpus_dir}: expected {ROOT_NAME}/ (with 1h/ and 9h/) there; found none: extract "
        f"{ARCHIVE_URL} into it (LIBRILIGHT in db.sh)"
    )


def split_chapters(root: Path, split: str) -> list[tuple]:
    """(reader, chapter, chapter dir) of every ``<dir>/<subset>/<reader>/<chapter>/`` of ``split``."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(SPLITS)}; found {split!r}")
    chapters = []
    for directory in SPLITS[split]:
        for subset in SUBSETS:
            subset_dir = root / directory / subset
            if not subset_dir.is_dir():
                needed = ", ".join(f"{d}/{s}" for d in SPLITS[split] for s in SUBSETS)
                raise ValueError(
                    f"{subset_dir}: no such directory; the {split} split needs {needed} of "
                    f"{ROOT_NAME} ({ARCHIVE_URL}, extracted)"
                )
            chapters += _chapter_dirs(subset_dir)
    return chapters


def prepare_librilight(corpus_dir, out_dir, split: str = "10h") -> PartResult:
    """Write ``out_dir/train_<split>/`` (see the module docstring)."""
    root = find_finetuning_root(corpus_dir)
    excluded: dict[str, str] = {}
    found: dict[str, Utterance] = {}
    for reader, chapter, chapter_dir in split_chapters(root, split):
        for utt in _chapter_utterances(reader, chapter, chapter_dir, excluded):
            if utt.utt_id in found:
                raise ValueError(f"{utt.path}: utterance {utt.utt_id} is also {found[utt.utt_id].path}")
            found[utt.utt_id] = utt
    data_dir = Path(out_dir) / set_name(split)
    if not found:
        raise ValueError(f"{root}: no utterances in the {split} split's directories")
    writer = datadir.SortedDataDirWriter(data_dir, ["wav.scp", "text", "utt2spk"])
    try:
        for key in kaldi_files.sorted_keys(found):
            utt = found[key]
            writer.add(utt.utt_id, {"wav.scp": utt.path, "text": utt.text, "utt2spk": utt.speaker})
    except BaseException:
        writer.abort()
        raise
    count = writer.close()
    log_written(data_dir, count, excluded)
    return PartResult(data_dir, count, excluded)
