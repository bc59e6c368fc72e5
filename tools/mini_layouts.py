"""Lay the mini corpus out in the native layouts of LibriSpeech, TIMIT, JSUT, AISHELL-1 and AISHELL-2,
and as long recordings with a ``segments`` file.

The corpus recipes (``egs2/<corpus>/asr1/local/data.sh``) read a corpus as it comes from its
publisher; these functions copy the shipped mini corpus (``egs2/mini/corpus``, see
:mod:`tools.mini_corpus`) into exactly those layouts, so the recipes can be tested
without the real data. English feeds LibriSpeech and TIMIT, Japanese feeds JSUT, Mandarin feeds
AISHELL-1 and AISHELL-2. What is read: ``<corpus>/{en,ja,zh}/{text,utt2spk,spk2info,wav/*.flac}`` and, for
TIMIT, ``<corpus>/en/{phones,words}``. What is written under ``out_dir``:

LibriSpeech (:func:`write_librispeech`)::

    LibriSpeech/{README.TXT,SPEAKERS.TXT,CHAPTERS.TXT}
    LibriSpeech/<part>/<reader>/<chapter>/<reader>-<chapter>-<nnnn>.flac
    LibriSpeech/<part>/<reader>/<chapter>/<reader>-<chapter>.trans.txt   ("<id> UPPER CASE TEXT")

  parts train-clean-100, dev-clean, dev-other, test-clean, test-other with disjoint speakers;
  with ``tarballs=True`` instead ``<part>.tar.gz``, each holding ``LibriSpeech/`` (the three
  ``.TXT`` files and that part), as distributed on openslr.org.

TIMIT (:func:`write_timit`), names upper or lower case (``TIMIT/TRAIN`` or ``timit/train``)::

    TIMIT/{TRAIN,TEST}/DR<n>/<SPK>/<UTT>.{WAV,PHN,WRD,TXT}

  ``.WAV`` is NIST SPHERE with TIMIT's header fields (:func:`write_timit_sphere`); ``.PHN``/``.WRD`` hold
  ``start end label`` lines in samples; ``.TXT`` is ``0 <nsamples> Sentence text.``. Each speaker
  has SA1/SA2 (the corpus's shared sentences), SX<n> (sentences several speakers read) and
  SI<n> (sentences only that speaker reads). TEST speakers carry ids of TIMIT's real core test
  set (:data:`CORE_TEST_SPEAKERS`) and development set (:data:`DEV_SPEAKERS`).

JSUT 1.1 (:func:`write_jsut`)::

    jsut_ver1.1/README.txt
    jsut_ver1.1/<subset>/wav/<ID>.wav            48 kHz, 16-bit
    jsut_ver1.1/<subset>/transcript_utf8.txt     ("<ID>:<text>")

  subsets basic5000 (``BASIC5000_0001``...), onomatopee300 and voiceactress100; with
  ``make_zip=True`` instead ``jsut_ver1.1.zip``.

AISHELL-1 (:func:`write_aishell`)::

    data_aishell/wav/{train,dev,test}/<S0002>/BAC009S0002W0121.wav      16 kHz, 16-bit
    data_aishell/transcript/aishell_transcript_v0.8.txt                 ("<ID> word word ...")

  with ``tarballs=True`` instead ``data_aishell.tgz`` (whose ``data_aishell/wav/`` holds one
  ``S0002.tar.gz`` per speaker, containing ``train/S0002/*.wav``) and ``resource_aishell.tgz``
  (``resource_aishell/lexicon.txt``), as distributed on openslr.org.

AISHELL-2 (:func:`write_aishell2`), as released (no archives: it is not downloaded)::

    AISHELL-2/iOS/data/wav/C0001/IC0001W0001.wav                      16 kHz, 16-bit
    AISHELL-2/iOS/data/trans.txt                                      ("<ID><TAB>text")
    AISHELL-2/iOS/data/wav.scp                                        ("<ID><TAB>wav/<SPK>/<ID>.wav")
    AISHELL-2/AISHELL-DEV-TEST-SET/{iOS,Android,Mic}/{dev,test}/...   the same files per set (``eval_sets``)

  every Mandarin utterance in ``iOS/data`` (speakers ``C0001``... in sorted order, the text
  written without spaces as AISHELL-2's is); the evaluation sets hold the first
  :data:`AISHELL2_EVAL_UTTS` utterances of the second-to-last speaker (dev, speaker ``D0012``) and
  of the last one (test, ``T0011``), the same audio on each channel with the channel's letter
  (``I``, ``A``, ``M``) leading the id. The same sentences are AISHELL-1's dev and test
  (:func:`write_aishell` holds out the same speakers), as in the real corpora, whose prompts
  overlap.

Long recordings with a Kaldi ``segments`` file (:func:`write_mini_recordings`), in the mini
corpus's own layout (what ``egs2/mini/asr1/local/data.sh`` reads, ``MINI`` in its ``db.sh``)::

    <lang>/{text,utt2spk,spk2info}              as in the mini corpus
    <lang>/wav/<spk>-<lang>.flac                 one recording per speaker, 16 kHz, 16-bit
    <lang>/segments                              ("<uttid> <spk>-<lang> <start> <end>", seconds)

  each recording is the speaker's utterances in id order with :data:`RECORDING_GAP` seconds of
  silence before, between and after them; a segment's times are its sample offsets over 16000,
  written exactly, so cutting it gives the utterance's samples back. With ``bad_segments`` the
  first speaker gets two more utterances (:data:`BAD_SEGMENTS`): one whose end is before its
  start (stage 1's check drops it) and one that ends 2 s beyond its recording (stage 3 excludes it).

Every writer returns a :class:`LayoutResult`: the corpus root it wrote (or ``out_dir`` when it
wrote archives) and the number of utterances.

Command line::

    python -m tools.mini_layouts {librispeech,timit,jsut,aishell,aishell2,recordings} \\
        --corpus egs2/mini/corpus --out DIR [--tarballs] [--zip] [--case lower|upper] [--bad_segments]
"""

from __future__ import annotations

import argparse
import gzip
import io
import shutil
import tarfile
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from tools import mini_corpus
from tools.mini_corpus import CorpusUtterance, Segment

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / "egs2" / "mini" / "corpus"
ARCHIVE_MTIME = 1_600_000_000  # fixed member time, so archives are byte-for-byte reproducible

# TIMIT's real speaker ids: the layout's own copy, not espnet_ext/data/corpora/timit.py's, so that
# the tests of that module check its lists against an independent source.
#: TIMIT's 50-speaker development set (all in TEST).
DEV_SPEAKERS = (
    "FAKS0", "FDAC1", "FJEM0", "MGWT0", "MJAR0", "MMDB1", "MMDM2", "MPDF0", "FCMH0", "FKMS0",
    "MBDG0", "MBWM0", "MCSH0", "FADG0", "FDMS0", "FEDW0", "MGJF0", "MGLB0", "MRTK0", "MTAA0",
    "MTDT0", "MTHC0", "MWJG0", "FNMR0", "FREW0", "FSEM0", "MBNS0", "MMJR0", "MDLS0", "MDLF0",
    "MDVC0", "MERS0", "FMAH0", "FDRW0", "MRCS0", "MRJM4", "FCAL1", "MMWH0", "FJSJ0", "MAJC0",
    "MJSW0", "MREB0", "FGJD0", "FJMG0", "MROA0", "MTEB0", "MJFC0", "MRJR0", "FMML0", "MRWS1",
)  # fmt: skip
#: TIMIT's 24-speaker core test set: two men and a woman per dialect region DR1..DR8, in order.
CORE_TEST_SPEAKERS = (
    "MDAB0", "MWBT0", "FELC0", "MTAS1", "MWEW0", "FPAS0", "MJMP0", "MLNT0", "FPKT0",
    "MLLL0", "MTLS0", "FJLM0", "MBPM0", "MKLT0", "FNLP0", "MCMJ0", "MJDH0", "FMGD0",
    "MGRT0", "MNJM0", "FDHC0", "MJLN0", "MPAM0", "FMLD0",
)  # fmt: skip
# Dialect regions of the development speakers that the mini layout uses, in the order used.
DEV_SPEAKER_REGIONS = {
    "FAKS0": 1, "MRWS1": 5, "FSEM0": 4, "MJSW0": 1, "FKMS0": 3, "MREB0": 1, "FDAC1": 1, "FJEM0": 1,
}  # fmt: skip

LIBRISPEECH_PARTS = ("train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other")
# Speakers per held-out part, taken from the end of the sorted speaker list; the rest train.
LIBRISPEECH_HELD_OUT = {"dev-clean": 2, "dev-other": 1, "test-clean": 2, "test-other": 1}
LIBRISPEECH_UTTS_PER_CHAPTER = 8

JSUT_SUBSETS = ("basic5000", "onomatopee300", "voiceactress100")
JSUT_SAMPLE_RATE = 48000

AISHELL_FIRST_SPEAKER = {"train": 2, "dev": 724, "test": 764}
AISHELL_TRANSCRIPT = "aishell_transcript_v0.8.txt"
AISHELL2_TRAIN = Path("AISHELL-2") / "iOS" / "data"
AISHELL2_DEV_TEST = Path("AISHELL-2") / "AISHELL-DEV-TEST-SET"
AISHELL2_CHANNELS = {"iOS": "I", "Android": "A", "Mic": "M"}  # channel directory -> the ids' first letter
AISHELL2_EVAL_SPEAKERS = {"dev": "D0012", "test": "T0011"}
AISHELL2_EVAL_UTTS = 5  # utterances per evaluation set and channel
PINYIN_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h",
                   "j", "q", "x", "r", "z", "c", "s", "y", "w")  # fmt: skip


class LayoutResult(NamedTuple):
    """What a layout writer produced: the corpus root (or the archive folder) and the count."""

    path: Path
    count: int


# ---------------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------------


def _by_speaker(utts: Iterable[CorpusUtterance]) -> dict[str, list[CorpusUtterance]]:
    groups: dict[str, list[CorpusUtterance]] = {}
    for utt in utts:
        groups.setdefault(utt.spk, []).append(utt)
    return {spk: groups[spk] for spk in sorted(groups)}


def _read_int16(path: Path) -> np.ndarray:
    audio, _ = sf.read(str(path), dtype="int16")
    return audio


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _tarinfo(name: str, size: int = 0, is_dir: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = size, ARCHIVE_MTIME
    info.type = tarfile.DIRTYPE if is_dir else tarfile.REGTYPE
    info.mode = 0o755 if is_dir else 0o644
    return info


def write_tar_gz(tar_path, root, names: Sequence[str]) -> None:
    """Write ``tar_path`` (gzip) holding ``root/<name>`` for each name, recursively, as ``<name>``.

    Members are sorted, with fixed owner and time, so the same tree gives the same bytes.
    """
    root = Path(root)
    members: list[str] = []
    for name in names:
        path = root / name
        members.append(name)
        if path.is_dir():
            members += [str(p.relative_to(root)) for p in path.rglob("*")]
    with (
        open(tar_path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
    ):
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name in sorted(set(members)):
                path = root / name
                if path.is_dir():
                    tar.addfile(_tarinfo(name, is_dir=True))
                else:
                    data = path.read_bytes()
                    tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))


# ---------------------------------------------------------------------------------------------
# LibriSpeech
# ---------------------------------------------------------------------------------------------


def librispeech_parts(speakers: Sequence[str]) -> dict[str, str]:
    """Speaker -> part: the last speakers (sorted) go to dev/test parts, the others to training."""
    held_out = sum(LIBRISPEECH_HELD_OUT.values())
    if len(speakers) <= held_out:
        raise ValueError(
            f"expected more than {held_out} English speakers for LibriSpeech's five parts, found {len(speakers)}"
        )
    ordered = sorted(speakers)
    parts = {spk: "train-clean-100" for spk in ordered[: len(ordered) - held_out]}
    rest = ordered[len(ordered) - held_out :]
    for part, n in LIBRISPEECH_HELD_OUT.items():
        parts.update({spk: part for spk in rest[:n]})
        rest = rest[n:]
    return parts


def _librispeech_meta(root: Path, rows: list[tuple[int, str, str, float, list[int]]]) -> None:
    """SPEAKERS.TXT, CHAPTERS.TXT, README.TXT; rows: (reader, sex, part, minutes, chapters)."""
    speakers = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    chapters = [";ID    |READER|MINUTES| SUBSET           | TITLE"]
    for reader, sex, part, minutes, chapter_ids in rows:
        speakers.append(f"{reader:<5}| {sex.upper()} | {part:<16} | {minutes:5.2f} | mini speaker {reader}")
        for chapter in chapter_ids:
            chapters.append(
                f"{chapter:<7}| {reader:<5}| {minutes / len(chapter_ids):5.2f} | {part:<16} | mini chapter {chapter}"
            )
    _write_lines(root / "SPEAKERS.TXT", speakers)
    _write_lines(root / "CHAPTERS.TXT", chapters)
    _write_lines(
        root / "README.TXT",
        [
            "Mini LibriSpeech-layout corpus: speech synthesized with espeak-ng by espnet_ext",
            "(tools.mini_layouts), laid out like LibriSpeech (openslr.org/12).",
        ],
    )


def _librispeech_tree(corpus_dir, root: Path) -> int:
    """Write the LibriSpeech/ tree into ``root``; return the utterance count."""
    info, utts = mini_corpus.load_language(corpus_dir, "en")
    groups = _by_speaker(utts)
    parts = librispeech_parts(list(groups))
    rows = []
    for index, (spk, spk_utts) in enumerate(groups.items()):
        reader = 100 + 37 * index
        chapter_ids = []
        for first in range(0, len(spk_utts), LIBRISPEECH_UTTS_PER_CHAPTER):
            chapter = 10000 + 100 * index + len(chapter_ids)
            chapter_ids.append(chapter)
            chapter_dir = root / parts[spk] / str(reader) / str(chapter)
            chapter_dir.mkdir(parents=True, exist_ok=True)
            lines = []
            for n, utt in enumerate(spk_utts[first : first + LIBRISPEECH_UTTS_PER_CHAPTER]):
                utt_id = f"{reader}-{chapter}-{n:04d}"
                shutil.copyfile(utt.audio, chapter_dir / f"{utt_id}.flac")
                lines.append(f"{utt_id} {utt.text.upper()}")
            _write_lines(chapter_dir / f"{reader}-{chapter}.trans.txt", lines)
        minutes = sum(sf.info(str(u.audio)).duration for u in spk_utts) / 60
        rows.append((reader, info[spk].get("sex", "m"), parts[spk], minutes, chapter_ids))
    _librispeech_meta(root, rows)
    return len(utts)


def write_librispeech(corpus_dir, out_dir, tarballs: bool = False) -> LayoutResult:
    """Write ``out_dir/LibriSpeech/...``, or with ``tarballs`` ``out_dir/<part>.tar.gz`` files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not tarballs:
        root = out_dir / "LibriSpeech"
        return LayoutResult(root, _librispeech_tree(corpus_dir, root))
    with tempfile.TemporaryDirectory() as tmp:
        count = _librispeech_tree(corpus_dir, Path(tmp) / "LibriSpeech")
        meta = [f"LibriSpeech/{name}" for name in ("README.TXT", "SPEAKERS.TXT", "CHAPTERS.TXT")]
        for part in LIBRISPEECH_PARTS:
            write_tar_gz(out_dir / f"{part}.tar.gz", tmp, meta + [f"LibriSpeech/{part}"])
    return LayoutResult(out_dir, count)


def write_librilight_finetuning(librispeech_root, out_dir) -> LayoutResult:
    """Libri-light's ``librispeech_finetuning`` tree in ``out_dir`` from a LibriSpeech tree's
    ``train-clean-100`` (as :func:`write_librispeech` writes it): chapter ``i`` goes to the
    ``i % 14``-th of ``1h/{0..5}/{clean,other}``, ``9h/{clean,other}``, except that the first
    chapter's utterances are split between ``1h/0/clean`` and ``9h/clean`` (the same chapter in
    two directories, each with a ``.trans.txt`` of its own lines, as in the real archive)."""
    slots = [f"1h/{n}/{s}" for n in range(6) for s in ("clean", "other")] + ["9h/clean", "9h/other"]
    root = Path(out_dir) / "librispeech_finetuning"
    chapters = sorted(p for p in (Path(librispeech_root) / "train-clean-100").glob("*/*") if p.is_dir())
    count = 0
    for index, chapter_dir in enumerate(chapters):
        reader, chapter = chapter_dir.parent.name, chapter_dir.name
        lines = (chapter_dir / f"{reader}-{chapter}.trans.txt").read_text(encoding="utf-8").splitlines()
        halves = [(slots[index % len(slots)], lines)]
        if index == 0:
            halves = [("1h/0/clean", lines[: len(lines) // 2]), ("9h/clean", lines[len(lines) // 2 :])]
        for slot, part in halves:
            target = root / slot / reader / chapter
            target.mkdir(parents=True, exist_ok=True)
            for line in part:
                shutil.copyfile(chapter_dir / f"{line.split()[0]}.flac", target / f"{line.split()[0]}.flac")
            _write_lines(target / f"{reader}-{chapter}.trans.txt", part)
            count += len(part)
    return LayoutResult(root, count)


# ---------------------------------------------------------------------------------------------
# TIMIT
# ---------------------------------------------------------------------------------------------


class TimitSpeaker(NamedTuple):
    """Where a mini speaker goes in TIMIT: ``TRAIN``/``TEST``, dialect region and speaker id."""

    part: str
    region: int
    timit_id: str


def _pick(candidates: Iterable[str], sex: str, used: set) -> str:
    for candidate in candidates:
        if candidate[0] == sex.upper() and candidate not in used:
            used.add(candidate)
            return candidate
    raise ValueError(f"no unused TIMIT speaker id of sex {sex!r} left among {list(candidates)}")


def _train_id(index: int, sex: str, used: set) -> str:
    letters = "ABCDEGHJKLMNPRSTW"
    initials = letters[index % 17] + letters[(3 * index + 5) % 17] + letters[(7 * index + 2) % 17]
    digit = 0
    while f"{sex.upper()}{initials}{digit}" in used:
        digit += 1
    used.add(f"{sex.upper()}{initials}{digit}")
    return f"{sex.upper()}{initials}{digit}"


def timit_speakers(info: dict[str, dict[str, str]], n_core: int = 3, n_dev: int = 3) -> dict[str, TimitSpeaker]:
    """Map mini speakers (sorted) to TIMIT: the last ``n_core + n_dev`` are TEST speakers.

    Core test speakers take ids of :data:`CORE_TEST_SPEAKERS` of the same sex, one dialect region
    after another; development speakers take ids of :data:`DEV_SPEAKER_REGIONS`; training
    speakers get made-up ids (sex letter, three initials, digit) in regions DR1..DR8 in turn.
    """
    ordered = sorted(info)
    if len(ordered) <= n_core + n_dev:
        raise ValueError(f"expected more than {n_core + n_dev} English speakers for TIMIT, found {len(ordered)}")
    n_train = len(ordered) - n_core - n_dev
    used = set(CORE_TEST_SPEAKERS) | set(DEV_SPEAKERS)
    taken: set = set()
    result = {}
    for index, spk in enumerate(ordered):
        sex = info[spk].get("sex", "m")
        if index < n_train:
            result[spk] = TimitSpeaker("TRAIN", index % 8 + 1, _train_id(index, sex, used))
        elif index < n_train + n_core:
            start = 3 * ((index - n_train) % 8)  # k-th core speaker: region k+1 first
            timit_id = _pick(CORE_TEST_SPEAKERS[start:] + CORE_TEST_SPEAKERS[:start], sex, taken)
            result[spk] = TimitSpeaker("TEST", CORE_TEST_SPEAKERS.index(timit_id) // 3 + 1, timit_id)
        else:
            timit_id = _pick(DEV_SPEAKER_REGIONS, sex, taken)
            result[spk] = TimitSpeaker("TEST", DEV_SPEAKER_REGIONS[timit_id], timit_id)
    return result


def timit_utterance_names(utts: Sequence[CorpusUtterance]) -> dict[str, str]:
    """Uttid -> TIMIT name: SA1/SA2 for the shared sentences, SX<n> for sentences several
    speakers read (n from 3), SI<n> for the others (n from 453), numbered by sorted text."""
    readers = Counter(text for _, text in {(u.spk, u.text) for u in utts})
    sa = {text: f"SA{i + 1}" for i, text in enumerate(mini_corpus.SHARED_SENTENCES)}
    sx = sorted(t for t, n in readers.items() if n > 1 and t not in sa)
    si = sorted(t for t, n in readers.items() if n == 1 and t not in sa)
    numbers = {
        **{t: f"SX{3 + i}" for i, t in enumerate(sx)},
        **{t: f"SI{453 + i}" for i, t in enumerate(si)},
    }
    names = {u.uttid: sa.get(u.text) or numbers[u.text] for u in utts}
    seen = set()
    for utt in utts:
        if (utt.spk, names[utt.uttid]) in seen:
            raise ValueError(f"speaker {utt.spk} reads {utt.text!r} twice; expected one TIMIT name per reading")
        seen.add((utt.spk, names[utt.uttid]))
    return names


def write_timit_sphere(path: Path, samples: np.ndarray, utterance_id: str) -> None:
    """Write 16 kHz mono int16 ``samples`` as a SPHERE file with the header fields LDC's TIMIT has.

    The header is ASCII: ``NIST_1A``, its size (1024), one ``name -type value`` field a line
    (``-i`` integer, ``-sN`` string of N bytes), ``end_head``, padded to 1024 bytes with spaces;
    then little-endian 16-bit samples. libsndfile's own NIST writer has no ``database_id`` or
    ``utterance_id`` and adds ``sample_coding``, which TIMIT's headers lack.
    """
    samples = np.asarray(samples, dtype=np.int16)
    fields = [
        ("database_id", "TIMIT"),
        ("database_version", "1.0"),
        ("utterance_id", utterance_id),
        ("channel_count", 1),
        ("sample_count", len(samples)),
        ("sample_rate", mini_corpus.SAMPLE_RATE),
        ("sample_min", int(samples.min())),
        ("sample_max", int(samples.max())),
        ("sample_n_bytes", 2),
        ("sample_byte_format", "01"),
        ("sample_sig_bits", 16),
    ]
    lines = ["NIST_1A", "   1024"]
    lines += [f"{k} -i {v}" if isinstance(v, int) else f"{k} -s{len(v)} {v}" for k, v in fields]
    header = "\n".join(lines + ["end_head", ""]).encode("ascii")
    path.write_bytes(header.ljust(1024, b" ") + samples.astype("<i2").tobytes())


def _timit_files(
    base: Path, audio: np.ndarray, text: str, phones: list[Segment], words: list[Segment], ext_case
) -> None:
    """Write one utterance's .WAV (SPHERE), .PHN, .WRD, .TXT next to ``base`` (``.../SPK/UTT``)."""
    utterance_id = f"{base.parent.name[1:]}_{base.name}".lower()  # TIMIT style: "aks0_sa1"
    write_timit_sphere(base.with_suffix(ext_case(".WAV")), audio, utterance_id)
    _write_lines(base.with_suffix(ext_case(".PHN")), (f"{s.start} {s.end} {s.label}" for s in phones))
    _write_lines(base.with_suffix(ext_case(".WRD")), (f"{s.start} {s.end} {s.label}" for s in words))
    sentence = text[:1].upper() + text[1:] + "."
    _write_lines(base.with_suffix(ext_case(".TXT")), [f"0 {len(audio)} {sentence}"])


def write_timit(corpus_dir, out_dir, case: str = "upper", n_core: int = 3, n_dev: int = 3) -> LayoutResult:
    """Write ``out_dir/TIMIT/{TRAIN,TEST}/DR<n>/<SPK>/<UTT>.*`` (``case="lower"``: lower names)."""
    if case not in ("upper", "lower"):
        raise ValueError(f"case: expected 'upper' or 'lower', found {case!r}")
    fix = str.upper if case == "upper" else str.lower
    info, utts = mini_corpus.load_language(corpus_dir, "en")
    en_dir = Path(corpus_dir) / "en"
    phones, words = (
        mini_corpus.read_segments(en_dir / "phones"),
        mini_corpus.read_segments(en_dir / "words"),
    )
    speakers = timit_speakers(info, n_core, n_dev)
    names = timit_utterance_names(utts)
    root = Path(out_dir) / fix("TIMIT")
    for utt in utts:
        if utt.uttid not in phones or utt.uttid not in words:
            raise ValueError(f"{en_dir}/phones and words: expected segments for {utt.uttid}")
        where = speakers[utt.spk]
        spk_dir = root / fix(where.part) / fix(f"DR{where.region}") / fix(where.timit_id)
        spk_dir.mkdir(parents=True, exist_ok=True)
        audio = _read_int16(utt.audio)
        _timit_files(
            spk_dir / fix(names[utt.uttid]),
            audio,
            utt.text,
            phones[utt.uttid],
            words[utt.uttid],
            fix,
        )
    return LayoutResult(root, len(utts))


# ---------------------------------------------------------------------------------------------
# JSUT
# ---------------------------------------------------------------------------------------------


def jsut_ids(utts: Sequence[CorpusUtterance]) -> list[tuple[str, str, CorpusUtterance]]:
    """(subset, ID, utterance): every sixth utterance goes to onomatopee300 and voiceactress100 in
    turn, the rest to basic5000; IDs count from 1 per subset (``BASIC5000_0001``,
    ``ONOMATOPEE300_001``, ``VOICEACTRESS100_001``)."""
    counts = Counter()
    result = []
    for i, utt in enumerate(utts):
        subset = JSUT_SUBSETS[0] if i % 6 != 5 else JSUT_SUBSETS[1 + (i // 6) % 2]
        counts[subset] += 1
        digits = 4 if subset == "basic5000" else 3
        result.append((subset, f"{subset.upper()}_{counts[subset]:0{digits}d}", utt))
    return result


def _jsut_tree(corpus_dir, root: Path) -> int:
    from scipy.signal import resample_poly

    _, utts = mini_corpus.load_language(corpus_dir, "ja")
    transcripts: dict[str, list[str]] = {subset: [] for subset in JSUT_SUBSETS}
    factor = JSUT_SAMPLE_RATE // mini_corpus.SAMPLE_RATE
    for subset, utt_id, utt in jsut_ids(utts):
        (root / subset / "wav").mkdir(parents=True, exist_ok=True)
        audio = resample_poly(_read_int16(utt.audio).astype(np.float64), factor, 1)
        audio = np.clip(np.round(audio), -32768, 32767).astype(np.int16)
        sf.write(str(root / subset / "wav" / f"{utt_id}.wav"), audio, JSUT_SAMPLE_RATE, subtype="PCM_16")
        transcripts[subset].append(f"{utt_id}:{utt.text}")
    for subset, lines in transcripts.items():
        _write_lines(root / subset / "transcript_utf8.txt", sorted(lines))
    _write_lines(
        root / "README.txt",
        [
            "Mini JSUT-layout corpus (ver1.1): Japanese speech synthesized with espeak-ng by",
            "espnet_ext (tools.mini_layouts); no audio of the real JSUT corpus.",
            "",
            "Each subset holds wav/<ID>.wav (48 kHz, 16-bit, mono) and transcript_utf8.txt",
            "with one '<ID>:<text>' line per utterance. Subsets: " + ", ".join(JSUT_SUBSETS) + ".",
        ],
    )
    return len(utts)


def write_jsut(corpus_dir, out_dir, make_zip: bool = False) -> LayoutResult:
    """Write ``out_dir/jsut_ver1.1/...``, or with ``make_zip`` ``out_dir/jsut_ver1.1.zip``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not make_zip:
        root = out_dir / "jsut_ver1.1"
        return LayoutResult(root, _jsut_tree(corpus_dir, root))
    with tempfile.TemporaryDirectory() as tmp:
        count = _jsut_tree(corpus_dir, Path(tmp) / "jsut_ver1.1")
        with zipfile.ZipFile(out_dir / "jsut_ver1.1.zip", "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(Path(tmp).rglob("*")):
                name = path.relative_to(tmp).as_posix() + ("/" if path.is_dir() else "")
                entry = zipfile.ZipInfo(name, date_time=(2020, 9, 13, 12, 0, 0))
                entry.external_attr = (0o40755 if path.is_dir() else 0o100644) << 16
                zf.writestr(entry, b"" if path.is_dir() else path.read_bytes(), zipfile.ZIP_DEFLATED)
    return LayoutResult(out_dir, count)


# ---------------------------------------------------------------------------------------------
# AISHELL-1
# ---------------------------------------------------------------------------------------------


def aishell_speakers(speakers: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Mini speaker -> (split, AISHELL speaker id): the last one or more (a sixth) go to test,
    those before to dev, the rest to train; ids count from S0002, S0724 and S0764 as in AISHELL."""
    ordered = sorted(speakers)
    n_held = max(1, len(ordered) // 6)
    if len(ordered) < 2 * n_held + 1:
        raise ValueError(f"expected 3 or more Mandarin speakers (train/dev/test), found {len(ordered)}")
    splits = ["train"] * (len(ordered) - 2 * n_held) + ["dev"] * n_held + ["test"] * n_held
    result, counters = {}, Counter()
    for spk, split in zip(ordered, splits, strict=True):
        result[spk] = (split, f"S{AISHELL_FIRST_SPEAKER[split] + counters[split]:04d}")
        counters[split] += 1
    return result


def pinyin_lexicon_line(word: str, pinyin: str) -> str:
    """``北京 b ei3 j ing1``: each syllable split into its initial (if any) and its final."""
    phones = []
    for syllable in pinyin.split():
        initial = next((i for i in PINYIN_INITIALS if syllable.startswith(i) and len(syllable) > len(i)), "")
        phones += [initial, syllable[len(initial) :]] if initial else [syllable]
    return f"{word} {' '.join(phones)}"


def _aishell_tree(corpus_dir, root: Path) -> tuple[int, dict[str, str]]:
    """Write ``data_aishell/`` into ``root``; return (count, AISHELL speaker id -> split)."""
    _, utts = mini_corpus.load_language(corpus_dir, "zh")
    where = aishell_speakers(sorted({u.spk for u in utts}))
    lines = []
    for spk, spk_utts in _by_speaker(utts).items():
        split, sid = where[spk]
        spk_dir = root / "data_aishell" / "wav" / split / sid
        spk_dir.mkdir(parents=True, exist_ok=True)
        for n, utt in enumerate(spk_utts):
            utt_id = f"BAC009{sid}W{121 + n:04d}"
            sf.write(
                str(spk_dir / f"{utt_id}.wav"),
                _read_int16(utt.audio),
                mini_corpus.SAMPLE_RATE,
                subtype="PCM_16",
            )
            lines.append(f"{utt_id} {utt.text}")
    _write_lines(root / "data_aishell" / "transcript" / AISHELL_TRANSCRIPT, sorted(lines))
    return len(utts), {sid: split for split, sid in where.values()}


def write_aishell(corpus_dir, out_dir, tarballs: bool = False) -> LayoutResult:
    """Write ``out_dir/data_aishell/...``, or with ``tarballs`` ``data_aishell.tgz`` and
    ``resource_aishell.tgz`` as distributed (a ``.tar.gz`` per speaker in ``data_aishell/wav``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not tarballs:
        count, _ = _aishell_tree(corpus_dir, out_dir)
        return LayoutResult(out_dir / "data_aishell", count)
    with tempfile.TemporaryDirectory() as tmp:
        tree, stage = Path(tmp) / "tree", Path(tmp) / "stage"
        count, splits = _aishell_tree(corpus_dir, tree)
        (stage / "data_aishell" / "wav").mkdir(parents=True)
        shutil.copytree(tree / "data_aishell" / "transcript", stage / "data_aishell" / "transcript")
        for sid, split in sorted(splits.items()):
            write_tar_gz(
                stage / "data_aishell" / "wav" / f"{sid}.tar.gz",
                tree / "data_aishell" / "wav",
                [f"{split}/{sid}"],
            )
        write_tar_gz(out_dir / "data_aishell.tgz", stage, ["data_aishell"])
        lexicon = ["SIL sil", "<SPOKEN_NOISE> sil"] + [pinyin_lexicon_line(w, p) for w, p in mini_corpus.ZH_WORDS]
        _write_lines(stage / "resource_aishell" / "lexicon.txt", lexicon)
        write_tar_gz(out_dir / "resource_aishell.tgz", stage, ["resource_aishell"])
    return LayoutResult(out_dir, count)


# ---------------------------------------------------------------------------------------------
# AISHELL-2
# ---------------------------------------------------------------------------------------------


def _aishell2_set(set_dir: Path, utts: Sequence[tuple[str, str, CorpusUtterance]]) -> None:
    """``set_dir/{wav/<SPK>/<ID>.wav,trans.txt,wav.scp}`` for ``(id, SPK, utterance)`` items."""
    trans, scp = [], []
    for utt_id, spk, utt in utts:
        (set_dir / "wav" / spk).mkdir(parents=True, exist_ok=True)
        sf.write(
            str(set_dir / "wav" / spk / f"{utt_id}.wav"), _read_int16(utt.audio), mini_corpus.SAMPLE_RATE, "PCM_16"
        )
        trans.append(f"{utt_id}\t{''.join(utt.text.split())}")
        scp.append(f"{utt_id}\twav/{spk}/{utt_id}.wav")
    _write_lines(set_dir / "trans.txt", sorted(trans))
    _write_lines(set_dir / "wav.scp", sorted(scp))


def write_aishell2(corpus_dir, out_dir, eval_sets: bool = True) -> LayoutResult:
    """Write ``out_dir/AISHELL-2/iOS/data/...`` and, with ``eval_sets``,
    ``out_dir/AISHELL-2/AISHELL-DEV-TEST-SET/...``; the count is that of ``iOS/data``."""
    _, utts = mini_corpus.load_language(corpus_dir, "zh")
    groups = _by_speaker(utts)
    train = []
    for index, spk_utts in enumerate(groups.values()):
        spk = f"C{index + 1:04d}"
        train += [(f"I{spk}W{n + 1:04d}", spk, utt) for n, utt in enumerate(spk_utts)]
    root = Path(out_dir) / "AISHELL-2"
    _aishell2_set(Path(out_dir) / AISHELL2_TRAIN, train)
    if eval_sets:
        held = dict(zip(("dev", "test"), list(groups.values())[-2:]))
        for name, spk in AISHELL2_EVAL_SPEAKERS.items():
            for channel, letter in AISHELL2_CHANNELS.items():
                items = [
                    (f"{letter}{spk}W{n + 1:04d}", spk, utt) for n, utt in enumerate(held[name][:AISHELL2_EVAL_UTTS])
                ]
                _aishell2_set(Path(out_dir) / AISHELL2_DEV_TEST / channel / name, items)
    return LayoutResult(root, len(train))


# ---------------------------------------------------------------------------------------------
# Long recordings with segments
# ---------------------------------------------------------------------------------------------

RECORDING_GAP = 0.25  # seconds of silence around each utterance of a recording
#: The utterance-id suffixes of the bad segments :func:`write_mini_recordings` can add, and what is wrong.
BAD_SEGMENTS = {"9998": "end before start", "9999": "ends 2 s beyond the recording"}


def _seconds(samples: int) -> str:
    """``samples`` at 16 kHz in seconds, exactly (1/16000 s has 7 decimals)."""
    return f"{samples / mini_corpus.SAMPLE_RATE:.7f}".rstrip("0").rstrip(".")


def write_mini_recordings(corpus_dir, out_dir, lang: str = "en", bad_segments: bool = False) -> LayoutResult:
    """Write ``out_dir/<lang>/...``: the mini corpus as one long recording per speaker with a
    ``segments`` file (see the module docstring); the count includes the bad segments."""
    _, utts = mini_corpus.load_language(corpus_dir, lang)
    root = Path(out_dir) / lang
    (root / "wav").mkdir(parents=True, exist_ok=True)
    gap = np.zeros(round(RECORDING_GAP * mini_corpus.SAMPLE_RATE), dtype=np.int16)
    text, utt2spk, segments = [], [], []
    for index, (spk, spk_utts) in enumerate(_by_speaker(utts).items()):
        recording = f"{spk}-{lang}"
        pieces, offset = [gap], len(gap)
        for utt in spk_utts:
            audio = _read_int16(utt.audio)
            segments.append(f"{utt.uttid} {recording} {_seconds(offset)} {_seconds(offset + len(audio))}")
            text.append(f"{utt.uttid} {utt.text}")
            utt2spk.append(f"{utt.uttid} {spk}")
            pieces += [audio, gap]
            offset += len(audio) + len(gap)
        if bad_segments and index == 0:
            spans = ((offset // 2, offset // 4), (offset // 2, offset + 2 * mini_corpus.SAMPLE_RATE))
            for suffix, (start, end) in zip(BAD_SEGMENTS, spans, strict=True):
                uttid = f"{spk}-{lang}-{suffix}"
                segments.append(f"{uttid} {recording} {_seconds(start)} {_seconds(end)}")
                text.append(f"{uttid} {spk_utts[0].text}")
                utt2spk.append(f"{uttid} {spk}")
        sf.write(str(root / "wav" / f"{recording}.flac"), np.concatenate(pieces), mini_corpus.SAMPLE_RATE)
    for name, lines in (("text", text), ("utt2spk", utt2spk), ("segments", segments)):
        _write_lines(root / name, sorted(lines))
    shutil.copyfile(Path(corpus_dir) / lang / "spk2info", root / "spk2info")
    return LayoutResult(Path(out_dir), len(segments))


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> LayoutResult:
    """``python -m tools.mini_layouts <corpus> --corpus DIR --out DIR [options]``."""
    parser = argparse.ArgumentParser(description="Lay the mini corpus out in a corpus's native layout.")
    sub = parser.add_subparsers(dest="layout", required=True)
    for name, help_text in (
        ("librispeech", "LibriSpeech (English)"),
        ("timit", "TIMIT (English)"),
        ("jsut", "JSUT 1.1 (Japanese)"),
        ("aishell", "AISHELL-1 (Mandarin)"),
        ("aishell2", "AISHELL-2 (Mandarin), with its dev and test sets"),
        ("recordings", "the mini corpus as long recordings with a segments file"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--corpus", default=str(DEFAULT_CORPUS), help="the mini corpus (egs2/mini/corpus)")
        p.add_argument("--out", required=True, help="output directory")
        if name in ("librispeech", "aishell"):
            p.add_argument("--tarballs", action="store_true", help="write the archives as distributed")
        if name == "aishell2":
            p.add_argument("--no_eval_sets", action="store_true", help="iOS/data only (no AISHELL-DEV-TEST-SET)")
        if name == "jsut":
            p.add_argument("--zip", action="store_true", help="write jsut_ver1.1.zip as distributed")
        if name == "timit":
            p.add_argument("--case", choices=("upper", "lower"), default="upper", help="case of file names")
            p.add_argument("--core", type=int, default=3, help="speakers with core test set ids")
            p.add_argument("--dev", type=int, default=3, help="speakers with development set ids")
        if name == "recordings":
            p.add_argument("--lang", default="en", choices=("en", "zh", "ja"), help="which part of the mini corpus")
            p.add_argument("--bad_segments", action="store_true", help="add the two bad segments")
    args = parser.parse_args(argv)
    if args.layout == "librispeech":
        result = write_librispeech(args.corpus, args.out, args.tarballs)
    elif args.layout == "timit":
        result = write_timit(args.corpus, args.out, args.case, args.core, args.dev)
    elif args.layout == "jsut":
        result = write_jsut(args.corpus, args.out, args.zip)
    elif args.layout == "aishell2":
        result = write_aishell2(args.corpus, args.out, not args.no_eval_sets)
    elif args.layout == "recordings":
        result = write_mini_recordings(args.corpus, args.out, args.lang, args.bad_segments)
    else:
        result = write_aishell(args.corpus, args.out, args.tarballs)
    print(f"wrote {result.count} utterances to {result.path}")
    return result


if __name__ == "__main__":
    main()
