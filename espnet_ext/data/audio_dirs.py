"""Untranscribed audio for pre-training: data dirs from directory trees of audio files.

The ssl1 recipes pre-train on a corpus's audio plus "any extra directories of wav files"
(AISHELL-2, Common Voice clips converted to wav, a user's own recordings). This module walks
such trees and writes a Kaldi data dir without ``text``::

    python -m espnet_ext.bin.audio_dirs /data/my_audio /data/more --out data/extra \\
        --prefix extra [--valid_out data/extra_dev --valid_fraction 0.01 --seed 0]

Utterance ids are ``<prefix>-<path relative to its root, '/' -> '-', no extension>`` (spaces
become ``_``); the speaker is the ``--speaker_level``-th directory below the root (``0``: the
first directory, e.g. ``<root>/<speaker>/<file>.wav``; ``-1``: each file its own speaker).
Hidden files and directories are skipped; files with other extensions are counted and
reported, never silently ignored. Audio is not opened here: stage 3 (format) reads every
file and lists the unreadable ones with their reason. ``--valid_fraction`` holds out a seeded
random share of *speakers* (so no speaker is in both), at least one, as the validation set.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from espnet_ext.data.datadir import DataDir, write_data_dir

logger = logging.getLogger(__name__)

#: extensions read by default (soundfile/libsndfile formats; case-insensitive)
DEFAULT_EXTENSIONS = ("wav", "flac")


def _utt_id(prefix: str, rel: Path) -> str:
    parts = [p.replace(" ", "_") for p in rel.with_suffix("").parts]
    return "-".join(([prefix] if prefix else []) + parts)


def _speaker(utt: str, rel: Path, prefix: str, level: int) -> str:
    dirs = rel.parts[:-1]
    if level < 0 or level >= len(dirs):
        return utt
    return "-".join(([prefix] if prefix else []) + [d.replace(" ", "_") for d in dirs[: level + 1]])


def scan_audio_dirs(
    roots: Sequence[Path], prefix: str = "", extensions: Sequence[str] = DEFAULT_EXTENSIONS, speaker_level: int = 0
) -> tuple[DataDir, Counter]:
    """Walk ``roots``; return the data dir and a count of skipped files per extension.

    Raises:
        ValueError: a root that is not a directory, no audio found, or two files giving the
            same utterance id (both named).
    """
    exts = {e.lower().lstrip(".") for e in extensions}
    wav_scp: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    skipped: Counter = Counter()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise ValueError(f"{root}: not a directory; expected a directory tree of audio files")
        found = 0
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if any(part.startswith(".") for part in rel.parts) or not path.is_file():
                continue
            ext = path.suffix.lower().lstrip(".")
            if ext not in exts:
                skipped[ext or "(none)"] += 1
                continue
            utt = _utt_id(prefix, rel)
            if utt in wav_scp:
                raise ValueError(
                    f"{path}: utterance id {utt!r} is also that of {wav_scp[utt]}; "
                    "give the roots different --prefix values or rename one"
                )
            wav_scp[utt] = str(path.resolve())
            utt2spk[utt] = _speaker(utt, rel, prefix, speaker_level)
            found += 1
        logger.info("%s: %d audio files", root, found)
    if not wav_scp:
        raise ValueError(f"no audio files ({', '.join(sorted(exts))}) under {', '.join(map(str, roots))}")
    return DataDir(utt_maps={"wav.scp": wav_scp, "utt2spk": utt2spk}), skipped


def hold_out_speakers(data: DataDir, fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split utterances by speaker: ``(train_utts, valid_utts)``, at least one speaker held out."""
    if not 0 < fraction < 1:
        raise ValueError(f"valid_fraction: expected 0 < f < 1; found {fraction}")
    speakers = sorted(set(data.utt2spk.values()))
    if len(speakers) < 2:
        raise ValueError(f"valid_fraction: needs at least 2 speakers to hold one out; found {len(speakers)}")
    rng = random.Random(seed)
    held = set(rng.sample(speakers, max(1, round(fraction * len(speakers)))))
    train = [u for u, s in data.utt2spk.items() if s not in held]
    valid = [u for u, s in data.utt2spk.items() if s in held]
    return train, valid


def write_audio_dirs(
    roots: Sequence[Path],
    out: Path,
    prefix: str = "",
    extensions: Sequence[str] = DEFAULT_EXTENSIONS,
    speaker_level: int = 0,
    valid_out: Path | None = None,
    valid_fraction: float = 0.01,
    seed: int = 0,
) -> dict[Path, int]:
    """Scan ``roots`` (:func:`scan_audio_dirs`) and write the data dir ``out``; with ``valid_out``,
    the utterances of a held-out share of the speakers (:func:`hold_out_speakers`) are written
    there, not into ``out``. Returns the utterances written per data dir. Files skipped for their
    extension are logged as a warning."""
    data, skipped = scan_audio_dirs(roots, prefix, extensions, speaker_level)
    if skipped:
        logger.warning(
            "not audio (by extension), not used: %s", ", ".join(f"{n} .{e}" for e, n in sorted(skipped.items()))
        )
    if valid_out is None:
        write_data_dir(data, out)
        return {Path(out): len(data.utt2spk)}
    train, valid = hold_out_speakers(data, valid_fraction, seed)
    write_data_dir(data.subset(train), out)
    write_data_dir(data.subset(valid), valid_out)
    return {Path(out): len(train), Path(valid_out): len(valid)}
