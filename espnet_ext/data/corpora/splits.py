"""What every corpus module shares: utterance records -> Kaldi data dirs, with the left-out listed.

A corpus module (:mod:`espnet_ext.data.corpora.aishell`, :mod:`espnet_ext.data.corpora.jsut`)
collects :class:`Utterance` records per split and the utterances it leaves out with a reason;
:func:`write_split` writes ``<out_dir>/<split>/{wav.scp,text,utt2spk,spk2utt}`` (sorted, C
locale, via :mod:`espnet_ext.data.datadir`) and ``<out_dir>/<split>/excluded.txt``
(``uttid<TAB>reason``, one line per utterance left out; empty when none), the same report format
as stage 3's ``dump/raw/<set>/excluded.txt``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from espnet_ext.core.atomic import write_text
from espnet_ext.data import datadir, kaldi_files

logger = logging.getLogger(__name__)


class Utterance(NamedTuple):
    """One utterance of a corpus: id, audio file, transcript, speaker."""

    utt_id: str
    path: Path | str  # the audio file (absolute, as wav.scp holds it, when a str)
    text: str
    speaker: str


def check_path(path: Path) -> str:
    """``path`` made absolute for ``wav.scp``; ValueError if it holds whitespace (Kaldi can't)."""
    text = str(path.resolve())
    if any(c.isspace() for c in text):
        raise ValueError(
            f"{text}: audio path contains whitespace, which wav.scp cannot hold; "
            "move the corpus to a path without spaces"
        )
    return text


def join_transcripts(
    wavs: Iterable[tuple[str, str, Path]], texts: Mapping[str, str], transcript: Path
) -> tuple[list[Utterance], dict[str, str]]:
    """Pair ``(utt, speaker, path)`` audio with ``texts``: the utterances, and the ids left out
    (no line in ``transcript``, or an empty one) with the reason."""
    utts, excluded = [], {}
    for utt_id, speaker, path in wavs:
        if utt_id not in texts:
            excluded[utt_id] = f"no transcript line in {transcript} (audio {path})"
        elif not texts[utt_id]:
            excluded[utt_id] = f"empty transcript in {transcript}"
        else:
            utts.append(Utterance(utt_id, path, texts[utt_id], speaker))
    return utts, excluded


def write_split(split_dir: Path, utts: Sequence[Utterance], excluded: Mapping[str, str]) -> int:
    """Write the data dir ``split_dir`` from ``utts`` and its ``excluded.txt``; return the count.

    Raises:
        ValueError: no utterance left (naming the split and the first reasons), a duplicate id.
    """
    if not utts:
        reasons = "; ".join(f"{u}: {r}" for u, r in list(excluded.items())[:3])
        raise ValueError(f"{split_dir}: no utterances left to write{' (' + reasons + ')' if reasons else ''}")
    data = datadir.DataDir()
    data.utt_maps["wav.scp"] = {}
    data.utt_maps["text"] = {}
    data.utt_maps["utt2spk"] = {}
    for utt in utts:
        if utt.utt_id in data.utt_maps["wav.scp"]:
            raise ValueError(f"{utt.path}: utterance id {utt.utt_id} appears twice; expected unique ids")
        data.utt_maps["wav.scp"][utt.utt_id] = check_path(utt.path)
        data.utt_maps["text"][utt.utt_id] = utt.text
        data.utt_maps["utt2spk"][utt.utt_id] = utt.speaker
    datadir.write_data_dir(data, split_dir)
    log_written(split_dir, len(utts), excluded)
    return len(utts)


def log_written(split_dir: Path, count: int, excluded: Mapping[str, str]) -> None:
    """Write ``split_dir/excluded.txt`` and log the count of utterances written and left out."""
    write_excluded(split_dir / "excluded.txt", excluded)
    if excluded:
        logger.warning(
            "%s: %d utterances, %d left out (listed in %s)", split_dir, count, len(excluded), split_dir / "excluded.txt"
        )
    else:
        logger.info("%s: %d utterances", split_dir, count)


def write_excluded(path: Path, excluded: Mapping[str, str]) -> None:
    """``uttid<TAB>reason`` lines sorted by id (an empty file when nothing was left out)."""
    lines = [f"{utt}\t{excluded[utt]}\n" for utt in kaldi_files.sorted_keys(excluded)]
    write_text(path, "".join(lines))


def log_listing(message: str, items: Iterable[str], limit: int = 10, log: logging.Logger = logger) -> None:
    """Warn ``message`` followed by up to ``limit`` of ``items`` (and how many more) on ``log``."""
    items = list(items)
    shown = ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
    log.warning("%s: %s", message, shown)
