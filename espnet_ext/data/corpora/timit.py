"""TIMIT (LDC93S1): Kaldi data dirs for phone (61 -> 48/39 folding) or word transcripts.

What it reads, the corpus as LDC distributes it, file and directory names upper or lower case
(in any mixture: every name is matched case-insensitively)::

    <corpus>/{TRAIN,TEST}/DR<n>/<SPEAKER>/<UTT>.{WAV,PHN,WRD}     (or <corpus>/TIMIT/...)

``.WAV`` is NIST SPHERE, which libsndfile (``soundfile``) reads: no ``sph2pipe``; ``.PHN`` and
``.WRD`` hold ``<start> <end> <label>`` lines. The SA1/SA2 sentences (read by every speaker)
are left out, as is standard. Sets: ``train`` is every speaker of ``TRAIN`` (462 speakers,
3696 utterances), ``dev`` the 50-speaker development set (:data:`DEV_SPEAKERS`, 400
utterances) and ``test`` the 24-speaker core test set (:data:`CORE_TEST_SPEAKERS`, 192), both
from ``TEST``.

Transcripts: ``phn``: the ``.PHN`` labels through a phone map file (Kaldi's
``phones.60-48-39.map`` layout: ``<60-set> <48-set> <39-set>`` per line, ``q`` alone on its
line: deleted) to the 60-, 48- or 39-phone set; a label the map lacks raises ValueError
naming it and the file. ``word``: the ``.WRD`` words, lower case, letters and apostrophes.

What it writes into ``<out>/<set><suffix>/``: ``wav.scp`` (``<SPK>_<UTT>`` -> the corpus's own
``.WAV`` file: stage 3 decodes it and encodes the dump, the only encoding), ``text``,
``utt2spk``, ``spk2utt``, and ``excluded.txt`` (``<id><TAB><reason>``: a missing ``.WAV`` or
transcript file, SPHERE audio whose header libsndfile cannot read or that is not 16 kHz mono
or empty, a malformed or empty transcript). A missing or empty
corpus directory, two files whose names differ only in case, an unknown phone symbol, or an
empty set raise ValueError. The data dirs are written by
:func:`espnet_ext.data.corpora.splits.write_split`.

Command line (what ``egs2/timit/asr1/local/data.sh`` calls)::

    python -m espnet_ext.bin.corpus timit CORPUS OUT --phone_map MAP [--trans_type phn|word]
        [--phone_set 60|48|39] [--suffix S]
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from espnet_ext.data.corpora.splits import Utterance, write_split

logger = logging.getLogger(__name__)

#: TIMIT's 50-speaker development set (all in TEST).
DEV_SPEAKERS = (
    "FAKS0", "FDAC1", "FJEM0", "MGWT0", "MJAR0", "MMDB1", "MMDM2", "MPDF0", "FCMH0", "FKMS0",
    "MBDG0", "MBWM0", "MCSH0", "FADG0", "FDMS0", "FEDW0", "MGJF0", "MGLB0", "MRTK0", "MTAA0",
    "MTDT0", "MTHC0", "MWJG0", "FNMR0", "FREW0", "FSEM0", "MBNS0", "MMJR0", "MDLS0", "MDLF0",
    "MDVC0", "MERS0", "FMAH0", "FDRW0", "MRCS0", "MRJM4", "FCAL1", "MMWH0", "FJSJ0", "MAJC0",
    "MJSW0", "MREB0", "FGJD0", "FJMG0", "MROA0", "MTEB0", "MJFC0", "MRJR0", "FMML0", "MRWS1",
)  # fmt: skip
#: TIMIT's 24-speaker core test set: two men and a woman per dialect region DR1..DR8.
CORE_TEST_SPEAKERS = (
    "MDAB0", "MWBT0", "FELC0", "MTAS1", "MWEW0", "FPAS0", "MJMP0", "MLNT0", "FPKT0",
    "MLLL0", "MTLS0", "FJLM0", "MBPM0", "MKLT0", "FNLP0", "MCMJ0", "MJDH0", "FMGD0",
    "MGRT0", "MNJM0", "FDHC0", "MJLN0", "MPAM0", "FMLD0",
)  # fmt: skip
#: Utterances per set in the full corpus (SA sentences excluded).
EXPECTED_UTTERANCES = {"train": 3696, "dev": 400, "test": 192}
PHONE_SETS = (60, 48, 39)
TRANS_TYPES = ("phn", "word")
SAMPLE_RATE = 16000
LOG_INTERVAL_S = 10.0  # seconds between progress lines while checking audio

_DR_RE = re.compile(r"DR\d+")
_WORD_CHARS = re.compile(r"[^a-z']")


class Recording(NamedTuple):
    """One TIMIT recording: its part (TRAIN/TEST), speaker, name and files by upper-case suffix."""

    part: str
    speaker: str
    name: str
    files: dict[str, Path]

    @property
    def uttid(self) -> str:
        return f"{self.speaker}_{self.name}"


class SetResult(NamedTuple):
    """What :func:`prepare_timit` wrote for one set."""

    data_dir: Path
    count: int
    excluded: dict[str, str]


# ---------------------------------------------------------------------------------------------
# Phone map
# ---------------------------------------------------------------------------------------------


def read_phone_map(path, phone_set: int = 39) -> dict[str, str | None]:
    """TIMIT label -> its symbol in the ``phone_set`` (60, 48 or 39); None for deleted ones (q).

    Lines starting with ``#`` are comments (``h#`` is a phone). ValueError (file:line) for a
    line that is neither three columns nor a lone symbol, or a label listed twice.
    """
    if phone_set not in PHONE_SETS:
        raise ValueError(f"phone_set: expected one of {PHONE_SETS}, found {phone_set}")
    column = PHONE_SETS.index(phone_set)
    mapping: dict[str, str | None] = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) not in (1, 3):
            raise ValueError(
                f"{path}:{lineno}: expected '<60-set> <48-set> <39-set>' or a lone deleted symbol, found {line!r}"
            )
        if fields[0] in mapping:
            raise ValueError(f"{path}:{lineno}: {fields[0]!r} is mapped twice")
        mapping[fields[0]] = fields[column] if len(fields) == 3 else None
    if not mapping:
        raise ValueError(f"{path}: no phone mappings found")
    return mapping


class UnknownPhoneError(ValueError):
    """A label the phone map lacks: the map or the corpus is wrong, so preparation stops."""


def map_phones(labels: Sequence[str], phone_map: dict[str, str | None], source) -> list[str]:
    """Fold ``labels`` with ``phone_map``, dropping deleted ones; UnknownPhoneError for an unknown one."""
    out = []
    for label in labels:
        if label not in phone_map:
            raise UnknownPhoneError(
                f"{source}: unknown phone symbol {label!r}; expected one of the phone map's {len(phone_map)} symbols"
            )
        if phone_map[label] is not None:
            out.append(phone_map[label])
    return out


def read_labels(path: Path) -> list[str]:
    """The labels of a ``.PHN``/``.WRD`` file; ValueError (file:line) for a malformed line."""
    labels = []
    for lineno, line in enumerate(path.read_bytes().decode("ascii", "replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
            raise ValueError(f"{path}:{lineno}: expected '<start> <end> <label>', found {line!r}")
        labels.append(fields[2])
    if not labels:
        raise ValueError(f"{path}: no labels")
    return labels


def word_transcript(words: Sequence[str]) -> str:
    """``.WRD`` words as a transcript: lower case, only letters and apostrophes kept."""
    return " ".join(w for w in (_WORD_CHARS.sub("", word.lower()) for word in words) if w)


# ---------------------------------------------------------------------------------------------
# Corpus layout
# ---------------------------------------------------------------------------------------------


def _child(directory: Path, name: str) -> Path | None:
    """The sub-directory of ``directory`` called ``name`` in any case (None if there is none)."""
    found = [p for p in directory.iterdir() if p.is_dir() and p.name.upper() == name.upper()]
    if len(found) > 1:
        raise ValueError(f"{directory}: {' and '.join(map(str, found))} differ only in case; expected one")
    return found[0] if found else None


def find_corpus_root(corpus_dir) -> Path:
    """The directory holding TRAIN/ and TEST/ (any case): ``corpus_dir`` or ``corpus_dir/TIMIT``."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise ValueError(f"{corpus_dir}: no such directory; expected TIMIT (set TIMIT in db.sh)")
    for candidate in (corpus_dir, _child(corpus_dir, "TIMIT")):
        if candidate is not None and _child(candidate, "TRAIN") and _child(candidate, "TEST"):
            return candidate
    raise ValueError(
        f"{corpus_dir}: expected TRAIN/ and TEST/ (or train/ and test/) there or in {corpus_dir}/TIMIT; "
        f"found {sorted(p.name for p in corpus_dir.iterdir())}"
    )


def _speaker_files(part: str, speaker_dir: Path) -> dict[str, Recording]:
    """The recordings of one speaker directory, keyed by upper-case name."""
    utts: dict[str, Recording] = {}
    speaker = speaker_dir.name.upper()
    for path in sorted(p for p in speaker_dir.iterdir() if p.is_file()):
        name, suffix = path.stem.upper(), path.suffix.upper()
        utt = utts.setdefault(name, Recording(part, speaker, name, {}))
        if suffix in utt.files:
            raise ValueError(f"{utt.files[suffix]} and {path}: names differ only in case; expected one file")
        utt.files[suffix] = path
    return utts


def index_corpus(root: Path) -> dict[str, Recording]:
    """Every recording under ``root/{TRAIN,TEST}/DR*/<SPEAKER>/``, by upper-case ``<SPK>_<UTT>``."""
    index: dict[str, Recording] = {}
    for part in ("TRAIN", "TEST"):
        part_dir = _child(root, part)
        for region in sorted(p for p in part_dir.iterdir() if p.is_dir() and _DR_RE.fullmatch(p.name.upper())):
            for speaker_dir in sorted(p for p in region.iterdir() if p.is_dir()):
                for utt in _speaker_files(part, speaker_dir).values():
                    if utt.uttid in index:
                        raise ValueError(
                            f"{speaker_dir} and {_speaker_dir(index[utt.uttid])}: "
                            f"speaker {utt.speaker} twice; expected one directory"
                        )
                    index[utt.uttid] = utt
    if not index:
        raise ValueError(f"{root}: no recordings found; expected {{TRAIN,TEST}}/DR<n>/<SPEAKER>/<UTT>.WAV")
    return index


def split_sets(index: dict[str, Recording]) -> dict[str, list[Recording]]:
    """train (TRAIN), dev (:data:`DEV_SPEAKERS`) and test (:data:`CORE_TEST_SPEAKERS`); no SA."""
    dev, test = set(DEV_SPEAKERS), set(CORE_TEST_SPEAKERS)
    sets: dict[str, list[Recording]] = {"train": [], "dev": [], "test": []}
    for uttid in sorted(index):
        utt = index[uttid]
        if utt.name.startswith("SA"):
            continue
        if utt.speaker in dev:
            sets["dev"].append(utt)
        elif utt.speaker in test:
            sets["test"].append(utt)
        elif utt.part == "TRAIN":
            sets["train"].append(utt)
    for name, speakers in (("dev", DEV_SPEAKERS), ("test", CORE_TEST_SPEAKERS)):
        missing = sorted(set(speakers) - {u.speaker for u in sets[name]})
        if missing:
            logger.warning(
                "%s: %d of the %d speakers are not in the corpus (e.g. %s)",
                name,
                len(missing),
                len(speakers),
                ", ".join(missing[:5]),
            )
    return sets


# ---------------------------------------------------------------------------------------------
# Audio and transcripts
# ---------------------------------------------------------------------------------------------


def check_audio(sphere_path: Path) -> None:
    """ValueError (naming the file) unless libsndfile reads a 16 kHz mono, non-empty header there."""
    import soundfile

    try:
        info = soundfile.info(str(sphere_path))
    except (RuntimeError, OSError) as err:  # soundfile.LibsndfileError is a RuntimeError
        raise ValueError(f"{sphere_path}: expected NIST SPHERE audio, libsndfile says: {err}") from None
    if info.samplerate != SAMPLE_RATE or info.channels != 1 or info.frames == 0:
        raise ValueError(
            f"{sphere_path}: expected {SAMPLE_RATE} Hz mono audio, found {info.samplerate} Hz, "
            f"{info.channels} channel(s), {info.frames} samples"
        )


def transcript(utt: Recording, trans_type: str, phone_map: dict[str, str | None]) -> str:
    """The utterance's phone or word transcript; ValueError for a missing/malformed file."""
    suffix = ".PHN" if trans_type == "phn" else ".WRD"
    if suffix not in utt.files:
        raise ValueError(f"no transcript file {utt.name}{suffix} in {_speaker_dir(utt)}")
    path = utt.files[suffix]
    labels = read_labels(path)
    if trans_type == "word":
        text = word_transcript(labels)
    else:
        text = " ".join(map_phones(labels, phone_map, path))
    if not text:
        raise ValueError(f"{path}: no {'phones' if trans_type == 'phn' else 'words'} left")
    return text


def _speaker_dir(utt: Recording) -> Path:
    return next(iter(utt.files.values())).parent


def _utterance(utt: Recording, trans_type: str, phone_map: dict[str, str | None]) -> Utterance:
    """The utterance with its SPHERE audio and transcript; ValueError says why it cannot be used."""
    text = transcript(utt, trans_type, phone_map)
    if ".WAV" not in utt.files:
        raise ValueError(f"no audio file {utt.name}.WAV in {_speaker_dir(utt)}")
    check_audio(utt.files[".WAV"])
    return Utterance(utt.uttid, utt.files[".WAV"], text, utt.speaker)


def write_set(
    utts: Sequence[Recording],
    data_dir: Path,
    trans_type: str,
    phone_map: dict[str, str | None],
) -> SetResult:
    """Check and write one set's data dir (see the module docstring)."""
    kept: list[Utterance] = []
    excluded: dict[str, str] = {}
    last = time.monotonic()
    for i, utt in enumerate(utts):
        try:
            kept.append(_utterance(utt, trans_type, phone_map))
        except UnknownPhoneError:
            raise
        except ValueError as err:
            excluded[utt.uttid] = str(err)
        if time.monotonic() - last >= LOG_INTERVAL_S:
            last = time.monotonic()
            logger.info("%s: %d of %d utterances", data_dir.name, i + 1, len(utts))
    return SetResult(data_dir, write_split(data_dir, kept, excluded), excluded)


def prepare_timit(
    corpus_dir,
    out_dir,
    phone_map_path,
    trans_type: str = "phn",
    phone_set: int = 39,
    suffix: str = "",
) -> dict[str, SetResult]:
    """Write ``out_dir/{train,dev,test}<suffix>/`` (see the module docstring)."""
    if trans_type not in TRANS_TYPES:
        raise ValueError(f"trans_type: expected one of {TRANS_TYPES}, found {trans_type!r}")
    phone_map = read_phone_map(phone_map_path, phone_set)
    sets = split_sets(index_corpus(find_corpus_root(corpus_dir)))
    results = {}
    for name, utts in sets.items():
        if not utts:
            raise ValueError(f"{corpus_dir}: no utterance of the {name} set found")
        results[name] = write_set(utts, Path(out_dir) / f"{name}{suffix}", trans_type, phone_map)
        if results[name].count != EXPECTED_UTTERANCES[name]:
            logger.warning(
                "%s: %d utterances, the full TIMIT has %d", name, results[name].count, EXPECTED_UTTERANCES[name]
            )
    return results
