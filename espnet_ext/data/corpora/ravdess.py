"""RAVDESS speech (audio-only) -> Kaldi-style data dirs for 8-class emotion classification.

What is read: the unzipped ``Audio_Speech_Actors_01-24.zip`` of Zenodo record 1188976
(1440 files, 48 kHz 16-bit mono WAV, 60 per actor)::

    <corpus>/Actor_NN/MM-VV-EE-II-SS-RR-AA.wav

The seven two-digit fields of a file name (Livingstone & Russo 2018, the Zenodo description):
modality ``MM`` (01 full-AV, 02 video-only, 03 audio-only), vocal channel ``VV`` (01 speech,
02 song), emotion ``EE`` (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful,
07 disgust, 08 surprised), intensity ``II`` (01 normal, 02 strong; neutral has no strong
take), statement ``SS`` (01 "Kids are talking by the door", 02 "Dogs are sitting by the
door"), repetition ``RR`` (01, 02), actor ``AA`` (01-24; odd male, even female).

What is written under ``out_dir``:

``{train,dev,test}/wav.scp``     ``Actor_NN-<file stem> /abs/path.wav``
``{train,dev,test}/text``        ``<uttid> <emotion>`` (one of :data:`EMOTIONS`: the class label)
``{train,dev,test}/utt2spk``, ``spk2utt``, ``spk2gender`` (speaker = ``Actor_NN``)
``skipped.txt``                  ``<path><TAB><reason>`` for every file left out

The split is speaker-independent, by actor: by default actors 1-20 train, 21-22 dev and
23-24 test (1200 / 120 / 120 files), as in :data:`DEFAULT_SPLIT`.

Files left out, each listed in ``skipped.txt`` with its reason: song (vocal channel 02) and
video (modality 01/02) files, hidden files, files of actors in no split, and -- *malformed*
-- names that do not follow the scheme, a name whose actor field differs from its
``Actor_NN`` directory, a ``.wav`` outside an ``Actor_NN`` directory directly under the
corpus, an extension other than ``.wav``. With ``strict=True`` a malformed file is an error
(a ValueError naming every such file) instead.

Command line::

    python -m espnet_ext.bin.corpus ravdess prepare CORPUS_DIR OUT_DIR \\
        [--train_actors 1-20] [--dev_actors 21-22] [--test_actors 23-24] [--strict]
    python -m espnet_ext.bin.corpus ravdess download TARGET_DIR [--url URL] [--md5 MD5]
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from espnet_ext.core.atomic import write_text
from espnet_ext.data.kaldi_files import write_map, write_spk2utt

logger = logging.getLogger(__name__)

ZENODO_RECORD = "https://zenodo.org/records/1188976"
SPEECH_ZIP_URL = f"{ZENODO_RECORD}/files/Audio_Speech_Actors_01-24.zip?download=1"
SPEECH_ZIP_MD5 = "bc696df654c87fed845eb13823edef8a"  # as listed on the Zenodo record
SAMPLE_RATE = 48000  # Hz, of every RAVDESS audio file
N_ACTORS = 24
EXPECTED_SPEECH_FILES = 1440  # 24 actors x 60 files in Audio_Speech_Actors_01-24.zip

#: Emotion labels, in the order of their codes 01..08.
EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
#: The seven fields of a file name and each one's allowed codes.
FIELDS = ("modality", "vocal_channel", "emotion", "intensity", "statement", "repetition", "actor")
FIELD_RANGES = dict(
    modality=(1, 3),
    vocal_channel=(1, 2),
    emotion=(1, 8),
    intensity=(1, 2),
    statement=(1, 2),
    repetition=(1, 2),
    actor=(1, N_ACTORS),
)
MODALITY_NAMES = {1: "full-AV video", 2: "video-only", 3: "audio-only"}
AUDIO_ONLY, SPEECH = 3, 1  # the modality and vocal-channel codes of the files prepared
NORMAL_INTENSITY, STRONG_INTENSITY = 1, 2
SPLITS = ("train", "dev", "test")
#: The default speaker-independent split (actor numbers).
DEFAULT_SPLIT = {"train": "1-20", "dev": "21-22", "test": "23-24"}

_ACTOR_DIR = re.compile(r"Actor_(\d{2})")
_NAME = re.compile(r"\d{2}(?:-\d{2}){6}")


class RavdessId(NamedTuple):
    """The seven fields of a RAVDESS file name, as integers."""

    modality: int
    vocal_channel: int
    emotion: int
    intensity: int
    statement: int
    repetition: int
    actor: int

    @property
    def emotion_name(self) -> str:
        return EMOTIONS[self.emotion - 1]

    @property
    def stem(self) -> str:
        return "-".join(f"{v:02d}" for v in self)


class Skipped(NamedTuple):
    """A file left out: its path, why, and whether its name or place breaks the layout."""

    path: Path
    reason: str
    malformed: bool


class Utterance(NamedTuple):
    """A kept file: its id, audio path and parsed name."""

    uttid: str
    path: Path
    rid: RavdessId


class PrepareResult(NamedTuple):
    """Utterances written per split, and the files left out."""

    counts: dict[str, int]
    skipped: list[Skipped]


def speaker_id(actor: int) -> str:
    """``Actor_NN``: the speaker id (and directory name) of an actor."""
    return f"Actor_{actor:02d}"


def utterance_id(rid: RavdessId) -> str:
    """``Actor_NN-MM-VV-EE-II-SS-RR-AA``: speaker first, so Kaldi sorting stays consistent."""
    return f"{speaker_id(rid.actor)}-{rid.stem}"


def parse_name(stem: str) -> RavdessId:
    """Parse a file name without extension (``03-01-06-01-02-01-12``).

    Raises:
        ValueError: the name does not follow the scheme (the message says how).
    """
    if not _NAME.fullmatch(stem):
        raise ValueError(f"name {stem!r} does not follow MM-VV-EE-II-SS-RR-AA (seven two-digit fields)")
    rid = RavdessId(*(int(x) for x in stem.split("-")))
    for name, value in zip(FIELDS, rid):
        low, high = FIELD_RANGES[name]
        if not low <= value <= high:
            raise ValueError(f"name {stem!r}: {name} {value:02d} is outside {low:02d}-{high:02d}")
    if rid.emotion_name == "neutral" and rid.intensity == STRONG_INTENSITY:
        raise ValueError(f"name {stem!r}: neutral (emotion 01) has no strong intensity (02)")
    return rid


def classify_file(path: Path, dir_actor: int) -> tuple[RavdessId | None, Skipped | None]:
    """``(id, None)`` for an audio-only speech file of actor directory ``dir_actor``, else
    ``(None, Skipped(...))`` saying why the file is left out."""
    if path.name.startswith("."):
        return None, Skipped(path, "hidden file", False)
    stem, suffix = path.name.split(".", 1)[0], path.suffix
    try:
        rid = parse_name(stem)
    except ValueError as e:
        return None, Skipped(path, f"{e}; expected e.g. 03-01-06-01-02-01-12.wav", True)
    if rid.actor != dir_actor:
        return None, Skipped(path, f"actor {rid.actor:02d} in the name, but in directory {speaker_id(dir_actor)}", True)
    if rid.modality != AUDIO_ONLY:
        return None, Skipped(
            path, f"modality {rid.modality:02d} ({MODALITY_NAMES[rid.modality]}), not audio-only (03)", False
        )
    if rid.vocal_channel != SPEECH:
        return None, Skipped(path, "vocal channel 02 (song), not speech (01)", False)
    if suffix.lower() != ".wav" or path.name != stem + suffix:
        return None, Skipped(path, f"extension {path.name[len(stem) :]!r}, expected '.wav'", True)
    return rid, None


def scan_corpus(corpus_dir: Path) -> tuple[list[tuple[Path, RavdessId]], list[Skipped]]:
    """Every audio-only speech file under ``corpus_dir/Actor_NN/`` and every file left out.

    Raises:
        ValueError: ``corpus_dir`` is not a directory or holds no ``Actor_NN`` directory.
    """
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise ValueError(
            f"{corpus_dir}: not a directory; expected the unzipped "
            f"Audio_Speech_Actors_01-24.zip (<corpus>/Actor_01/03-01-01-01-01-01-01.wav)"
        )
    actor_dirs = sorted(p for p in corpus_dir.iterdir() if p.is_dir() and _ACTOR_DIR.fullmatch(p.name))
    if not actor_dirs:
        raise ValueError(
            f"{corpus_dir}: no Actor_NN directories; expected the unzipped "
            f"Audio_Speech_Actors_01-24.zip (<corpus>/Actor_01/03-01-01-01-01-01-01.wav)"
        )
    found: list[tuple[Path, RavdessId]] = []
    skipped: list[Skipped] = []
    for actor_dir in actor_dirs:
        actor = int(actor_dir.name[-2:])
        for path in sorted(p for p in actor_dir.iterdir() if p.is_file()):
            if not 1 <= actor <= N_ACTORS:
                skipped.append(Skipped(path, f"directory {actor_dir.name}: actor outside 01-{N_ACTORS}", True))
                continue
            rid, skip = classify_file(path, actor)
            if skip is not None:
                skipped.append(skip)
            else:
                found.append((path, rid))
    for path in sorted(corpus_dir.rglob("*")):
        in_actor_dir = path.parent.parent == corpus_dir and _ACTOR_DIR.fullmatch(path.parent.name)
        if path.is_file() and path.suffix.lower() == ".wav" and not in_actor_dir:
            skipped.append(Skipped(path, f"not directly in a {corpus_dir}/Actor_NN directory", True))
    return found, skipped


def parse_actors(text: str) -> frozenset[int]:
    """``"1-20"``, ``"21,22"`` or ``"1-3,7"`` -> the set of actor numbers ("" -> empty).

    Raises:
        ValueError: not ranges/numbers within 1..24.
    """
    actors = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise ValueError(f"actors {text!r}: expected numbers and ranges like 1-20 or 21,22")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if not 1 <= low <= high <= N_ACTORS:
            raise ValueError(f"actors {text!r}: expected ranges within 1-{N_ACTORS}, found {part}")
        actors.update(range(low, high + 1))
    return frozenset(actors)


def actor_splits(train: str, dev: str, test: str) -> dict[int, str]:
    """Actor number -> split name, from the three actor lists (which must be disjoint)."""
    sets = {"train": parse_actors(train), "dev": parse_actors(dev), "test": parse_actors(test)}
    out: dict[int, str] = {}
    for name, actors in sets.items():
        if not actors:
            raise ValueError(f"{name} actors: expected at least one actor, found none")
        for actor in actors:
            if actor in out:
                raise ValueError(
                    f"actor {actor} is in both the {out[actor]} and the {name} actors; "
                    "expected disjoint sets (a speaker-independent split)"
                )
            out[actor] = name
    return out


def _assign(
    found: Iterable[tuple[Path, RavdessId]], splits: dict[int, str], skipped: list[Skipped]
) -> dict[str, list[Utterance]]:
    by_split: dict[str, list[Utterance]] = {name: [] for name in SPLITS}
    for path, rid in found:
        name = splits.get(rid.actor)
        if name is None:
            skipped.append(Skipped(path, f"actor {rid.actor:02d} is in no split (train/dev/test actors)", False))
        else:
            by_split[name].append(Utterance(utterance_id(rid), path.resolve(), rid))
    return by_split


def _write_split(out_dir: Path, utts: Sequence[Utterance]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_map(out_dir / "wav.scp", {u.uttid: str(u.path) for u in utts})
    write_map(out_dir / "text", {u.uttid: u.rid.emotion_name for u in utts})
    utt2spk = {u.uttid: speaker_id(u.rid.actor) for u in utts}
    write_map(out_dir / "utt2spk", utt2spk)
    write_spk2utt(out_dir / "spk2utt", utt2spk)
    write_map(out_dir / "spk2gender", {speaker_id(u.rid.actor): "m" if u.rid.actor % 2 else "f" for u in utts})


def _malformed_error(corpus_dir: Path, bad: Sequence[Skipped]) -> ValueError:
    lines = "\n".join(f"  {s.path}: {s.reason}" for s in bad[:20])
    more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
    return ValueError(
        f"{corpus_dir}: {len(bad)} file(s) do not follow the RAVDESS layout "
        f"Actor_NN/MM-VV-EE-II-SS-RR-AA.wav (--strict):\n{lines}{more}"
    )


def write_skipped(path: Path, skipped: Sequence[Skipped]) -> None:
    """``<path><TAB><reason>`` per skipped file, sorted by path (an empty file when none)."""
    rows = sorted(skipped, key=lambda s: str(s.path))
    write_text(path, "".join(f"{s.path}\t{s.reason}\n" for s in rows))


def prepare_ravdess(
    corpus_dir,
    out_dir,
    train_actors: str = DEFAULT_SPLIT["train"],
    dev_actors: str = DEFAULT_SPLIT["dev"],
    test_actors: str = DEFAULT_SPLIT["test"],
    strict: bool = False,
) -> PrepareResult:
    """Write ``out_dir/{train,dev,test}`` and ``out_dir/skipped.txt`` (see the module docstring).

    Raises:
        ValueError: no corpus, bad actor lists, a split left empty, or (``strict``) a
            malformed file.
    """
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    splits = actor_splits(train_actors, dev_actors, test_actors)
    found, skipped = scan_corpus(corpus_dir)
    bad = [s for s in skipped if s.malformed]
    if strict and bad:
        raise _malformed_error(corpus_dir, bad)
    by_split = _assign(found, splits, skipped)
    for name, utts in by_split.items():
        if not utts:
            raise ValueError(
                f"{corpus_dir}: no audio-only speech files of the {name} actors "
                f"{sorted(a for a, s in splits.items() if s == name)}"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, utts in by_split.items():
        _write_split(out_dir / name, utts)
    write_skipped(out_dir / "skipped.txt", skipped)
    _log_summary(out_dir, by_split, skipped)
    return PrepareResult({name: len(utts) for name, utts in by_split.items()}, skipped)


def _log_summary(out_dir: Path, by_split: dict[str, list[Utterance]], skipped: Sequence[Skipped]) -> None:
    for name, utts in by_split.items():
        emotions = Counter(u.rid.emotion_name for u in utts)
        logger.info(
            "%s/%s: %d utterances of %d actors (%s)",
            out_dir,
            name,
            len(utts),
            len({u.rid.actor for u in utts}),
            ", ".join(f"{e} {emotions[e]}" for e in EMOTIONS),
        )
    if skipped:
        for reason, count in sorted(Counter(s.reason.split(";")[0] for s in skipped).items())[:10]:
            logger.warning("skipped %d file(s): %s", count, reason)
        logger.warning("%d file(s) skipped in all: listed with reasons in %s", len(skipped), out_dir / "skipped.txt")


def download_ravdess(
    target_dir, url: str = SPEECH_ZIP_URL, md5: str | None = SPEECH_ZIP_MD5, remove_archive: bool = False
) -> Path:
    """Download ``Audio_Speech_Actors_01-24.zip`` (~215 MB; resumable) and unzip it into
    ``target_dir`` (which then holds ``Actor_01`` ... ``Actor_24``); returns ``target_dir``.
    Does nothing when ``target_dir/.done_download`` exists (written last)."""
    from espnet_ext.data.download import fetch_and_extract

    target_dir = Path(target_dir)
    fetch_and_extract(url, target_dir, md5=md5, done_marker=".done_download", remove_archive=remove_archive)
    return target_dir
