"""AISHELL-2 (Mandarin, ~1000 h of read speech recorded on iOS; released on application, not
downloadable): Kaldi data dirs from a local copy.

:func:`prepare_aishell2` reads the corpus as released (the layout Kaldi's ``egs/aishell2`` and
ESPnet's ``egs2/aishell2`` recipes read)::

    <corpus_dir>/iOS/data/wav/<SPK>/<UTT>.wav    16 kHz, 16-bit; <UTT> = I<SPK>W<nnnn>, e.g. IC0001W0001
    <corpus_dir>/iOS/data/trans.txt              "<UTT><TAB><text>"

(``corpus_dir`` is the ``AISHELL-2`` directory, or the one holding it) and, when present, the
evaluation sets AISHELL2-2018A-EVAL (released apart as ``AISHELL-DEV-TEST-SET``: dev, 2,500
utterances of 5 speakers, and test, 5,000 of 10, each recorded on three channels)::

    <dev_test_dir>/{iOS,Android,Mic}/{dev,test}/wav/<SPK>/<UTT>.wav    <UTT> = {I,A,M}<SPK>W<nnnn>
    <dev_test_dir>/{iOS,Android,Mic}/{dev,test}/trans.txt

``dev_test_dir`` is ``<corpus_dir>/AISHELL-DEV-TEST-SET`` (where ESPnet's recipe expects it)
unless given. It writes ``<out_dir>/train`` (``iOS/data``) and ``<out_dir>/{dev,test}_{ios,android,mic}``
for each evaluation set found (ESPnet's names), each with ``wav.scp``, ``text``, ``utt2spk``,
``spk2utt`` and ``excluded.txt``. The speaker is the ``<SPK>`` directory; the text is the
transcript with white space removed, as :mod:`espnet_ext.data.corpora.aishell` writes AISHELL-1's
(character tokens; both corpora's texts compare equal when their characters are the same). The
``wav.scp`` the release also ships is not read: the audio is what lies under ``wav/``.

Left out and listed in ``excluded.txt`` with the reason: audio without a transcript line, a
transcript line without its audio file, an empty transcript, an empty (0-byte) audio file.
Undecodable audio is found and listed by stage 3. A missing corpus directory, a missing
``iOS/data/wav`` or ``trans.txt``, a non-UTF-8 or malformed transcript line and a duplicate id
raise ValueError naming the file (and line). A set directory without ``trans.txt`` is an error
too. Missing evaluation sets are logged, not errors (pre-training needs only ``iOS/data``).

The training set is written speaker by speaker as it is read
(:class:`espnet_ext.data.datadir.SortedDataDirWriter`); only the transcript (~1 M lines for the
released corpus) is held in memory.

Command line (what ``egs2/aishell/ssl1/local/data.sh --aishell2 DIR`` runs)::

    python -m espnet_ext.bin.corpus aishell2 prepare CORPUS_DIR OUT_DIR [--dev_test_dir DIR]
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

from espnet_ext.data import datadir
from espnet_ext.data.corpora.splits import Utterance, check_path, log_listing, log_written, write_split

logger = logging.getLogger(__name__)

ROOT_NAME = "AISHELL-2"
TRAIN = Path("iOS") / "data"
DEV_TEST_NAME = "AISHELL-DEV-TEST-SET"
CHANNELS = ("iOS", "Android", "Mic")
EVAL_SETS = ("dev", "test")
TRANSCRIPT = "trans.txt"


class SetResult(NamedTuple):
    """One data dir written: utterances kept and left out."""

    count: int
    excluded: int


def find_root(corpus_dir) -> Path:
    """The ``AISHELL-2`` directory: ``corpus_dir`` itself, or ``corpus_dir/AISHELL-2``, holding ``iOS/data``."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise ValueError(
            f"{corpus_dir}: AISHELL-2 corpus directory not found; expected the AISHELL-2 directory "
            f"holding {TRAIN.as_posix()}/wav and {TRAIN.as_posix()}/{TRANSCRIPT}"
        )
    for root in (corpus_dir, corpus_dir / ROOT_NAME):
        if (root / TRAIN).is_dir():
            return root
    raise ValueError(
        f"{corpus_dir}: no {TRAIN.as_posix()} here; expected {corpus_dir}/{TRAIN.as_posix()}/wav/<SPK>/<UTT>.wav "
        f"and {corpus_dir}/{TRAIN.as_posix()}/{TRANSCRIPT} (AISHELL-2 as released, or the directory holding it)"
    )


def read_transcript(path: Path) -> dict[str, str]:
    """``UTT -> text`` from ``<UTT><TAB><text>`` lines, white space removed from the text (an id
    alone maps to ``""``); blank lines are skipped."""
    if not path.is_file():
        raise ValueError(f"{path}: AISHELL-2 transcript not found; expected '<UTT><TAB><text>' lines")
    texts: dict[str, str] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                fields = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").split()
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not UTF-8 ({err}); expected '<UTT><TAB><text>'") from None
            if not fields:
                continue
            if fields[0] in texts:
                raise ValueError(f"{path}:{lineno}: utterance {fields[0]} appears twice; expected unique ids")
            texts[fields[0]] = "".join(fields[1:])
    return texts


def _wav_names(directory: str) -> list[str]:
    """The ``.wav`` file names (any case) directly in ``directory``, C-locale order of their stems."""
    with os.scandir(directory) as entries:
        names = [e.name for e in entries if e.name.lower().endswith(".wav") and e.is_file()]
    return sorted(names, key=lambda n: n[:-4].encode("utf-8", "surrogateescape"))


def _speaker_dirs(wav_dir: Path) -> list[str]:
    """Names of the speaker directories of ``wav_dir``, C-locale order."""
    with os.scandir(wav_dir) as entries:
        names = [e.name for e in entries if e.is_dir()]
    return sorted(names, key=lambda n: n.encode("utf-8", "surrogateescape"))


def _iter_set(set_dir: Path, texts: dict[str, str], excluded: dict[str, str]):
    """The usable utterances of ``set_dir/wav/<SPK>/`` in speaker, then id order; the others go to
    ``excluded`` with the reason. The ids used are popped from ``texts``."""
    wav_dir, transcript = set_dir / "wav", set_dir / TRANSCRIPT
    for spk in _speaker_dirs(wav_dir):
        absolute = check_path(wav_dir / spk)  # resolved once per speaker, not per file
        for name in _wav_names(f"{absolute}/"):
            utt, path = name[:-4], f"{absolute}/{name}"
            text = texts.pop(utt, None)
            if text is None:
                excluded[utt] = f"no transcript line in {transcript} (audio {path})"
            elif not text:
                excluded[utt] = f"empty transcript in {transcript}"
            elif os.stat(path).st_size == 0:
                excluded[utt] = f"empty audio file {path}"
            else:
                yield Utterance(utt, path, text, spk)


def _check_set_dir(set_dir: Path) -> None:
    for needed, what in (("wav", "wav/<SPK>/<UTT>.wav"), (TRANSCRIPT, "'<UTT><TAB><text>' lines")):
        if not (set_dir / needed).exists():
            raise ValueError(f"{set_dir / needed}: not found; expected {what} (AISHELL-2's layout)")


def _no_audio(set_dir: Path, texts: dict[str, str], excluded: dict[str, str]) -> None:
    """Transcript lines left in ``texts`` (none had an audio file) go to ``excluded``."""
    for utt in texts:
        excluded[utt] = f"no audio file under {set_dir / 'wav'} (listed in {set_dir / TRANSCRIPT})"


def prepare_train(set_dir: Path, out_dir: Path) -> SetResult:
    """Write ``out_dir`` from ``set_dir`` (``iOS/data``), streaming speaker by speaker."""
    _check_set_dir(set_dir)
    texts = read_transcript(set_dir / TRANSCRIPT)
    excluded: dict[str, str] = {}
    writer = datadir.SortedDataDirWriter(out_dir, ["wav.scp", "text", "utt2spk"])
    try:
        for utt in _iter_set(set_dir, texts, excluded):
            writer.add(utt.utt_id, {"wav.scp": utt.path, "text": utt.text, "utt2spk": utt.speaker})
    except BaseException:
        writer.abort()
        raise
    if not writer.count:
        writer.abort()
        reasons = "; ".join(f"{u}: {r}" for u, r in list(excluded.items())[:3])
        raise ValueError(f"{set_dir}: no usable utterances{' (' + reasons + ')' if reasons else ''}")
    count = writer.close()
    _no_audio(set_dir, texts, excluded)
    log_written(out_dir, count, excluded)
    return SetResult(count, len(excluded))


def prepare_eval_set(set_dir: Path, out_dir: Path) -> SetResult:
    """Write ``out_dir`` from one evaluation set directory (``<channel>/<dev|test>``)."""
    _check_set_dir(set_dir)
    texts = read_transcript(set_dir / TRANSCRIPT)
    excluded: dict[str, str] = {}
    utts = [u._replace(path=Path(u.path)) for u in _iter_set(set_dir, texts, excluded)]
    _no_audio(set_dir, texts, excluded)
    return SetResult(write_split(out_dir, utts, excluded), len(excluded))


def eval_set_dirs(root: Path, dev_test_dir=None) -> dict[str, Path]:
    """``<set>_<channel> -> directory`` of the evaluation sets present (``dev_ios``, ``test_mic``, ...)."""
    base = Path(dev_test_dir) if dev_test_dir is not None else root / DEV_TEST_NAME
    if dev_test_dir is not None and not base.is_dir():
        raise ValueError(
            f"{base}: not found; expected AISHELL-2's evaluation sets {DEV_TEST_NAME}/{{iOS,Android,Mic}}/{{dev,test}}"
        )
    found = {}
    for channel in CHANNELS:
        for name in EVAL_SETS:
            if (base / channel / name).is_dir():
                found[f"{name}_{channel.lower()}"] = base / channel / name
    return found


def prepare_aishell2(corpus_dir, out_dir, dev_test_dir=None) -> dict[str, int]:
    """Write ``out_dir/train`` and the evaluation sets found; return the utterances per data dir.

    Raises:
        ValueError: see the module docstring.
    """
    root = find_root(corpus_dir)
    out_dir = Path(out_dir)
    counts = {"train": prepare_train(root / TRAIN, out_dir / "train").count}
    sets = eval_set_dirs(root, dev_test_dir)
    if not sets:
        where = dev_test_dir if dev_test_dir is not None else root / DEV_TEST_NAME
        logger.info("%s: no evaluation sets (%s/<channel>/{dev,test}); only train written", root, where)
    for name, set_dir in sets.items():
        counts[name] = prepare_eval_set(set_dir, out_dir / name).count
    missing = [f"{n}_{c.lower()}" for c in CHANNELS for n in EVAL_SETS if sets and f"{n}_{c.lower()}" not in sets]
    if missing:
        log_listing(f"{root}: evaluation sets not found", missing, log=logger)
    logger.info("%s: %s", root, ", ".join(f"{name} {count}" for name, count in counts.items()))
    return counts
