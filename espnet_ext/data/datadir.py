"""Kaldi-style data directories: what one holds, read and write it (or make it from a manifest), validate, fix.

A data dir holds one entry per line, ``<key> <value>``, in files sorted by key in C-locale
byte order with unique keys (:mod:`espnet_ext.data.kaldi_files` reads and writes them):

``wav.scp``          ``uttid path`` or ``uttid command |`` (a shell pipe that writes audio);
                     keyed by recording id instead when there is a ``segments`` file
``segments``         ``uttid recording-id start-seconds end-seconds``: the utterance is that span
                     of the recording (optional; Kaldi's format, cut by stage 3)
``text``             ``uttid transcript`` (the transcript may be empty)
``utt2spk``          ``uttid speaker``
``spk2utt``          ``speaker uttid1 uttid2 ...`` (always derived from ``utt2spk`` here)
``utt2num_samples``  ``uttid number-of-samples`` (written by stage 3, :mod:`espnet_ext.data.format`)
``feats_type``, ``audio_format``  one word each (written by stage 3)

No tool drops an utterance without saying which and why: ``fix`` lists what it drops in
``DIR/.backup/dropped.txt``; the tools that derive a directory (:mod:`espnet_ext.data.subsets`:
subset, split, combine, exclude; :mod:`espnet_ext.data.filter`) refuse a source that
:func:`validate_data_dir` rejects, so an utterance missing from one file cannot vanish unnoticed.

With a ``segments`` file (utterances cut from longer recordings), ``wav.scp`` lists the
recordings, as in Kaldi's ``utils/validate_data_dir.sh``: every segment's recording is in
``wav.scp``, every recording there is used by a segment, and each segment has ``0 <= start <
end``. Whether a segment's end lies within its recording needs the audio: stage 3
(:mod:`espnet_ext.data.format`) checks it when it cuts the segments.

This module imports neither torch nor ESPnet: it backs command-line tools that shell
scripts call many times (``python -m espnet_ext.bin.datadir``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from espnet_ext.core.atomic import remove_stale_temporaries, replacing, write_bytes, write_text
from espnet_ext.data.kaldi_files import (
    Entry,
    decode_line,
    iter_entries,
    iter_sorted_entries,
    parse_line,
    read_map,
    sort_key,
    sorted_keys,
    spk2utt_to_utt2spk,
    write_map,
    write_spk2utt,
)

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

#: Files keyed by utterance id; a data dir may hold any of them (``wav.scp`` and ``utt2spk`` always).
UTT_FILES = (
    "wav.scp",
    "segments",
    "text",
    "utt2spk",
    "utt2num_samples",
    "utt2dur",
    "utt2num_frames",
    "utt2uniq",
    "utt2lang",
    "utt2category",
)
#: Files of :data:`UTT_FILES` keyed by recording id instead when the data dir has a ``segments`` file.
RECORDING_FILES = ("wav.scp",)
#: What a ``segments`` value must be (error messages).
SEGMENT_FORMAT = "'<recording-id> <start-seconds> <end-seconds>' with 0 <= start < end"
#: Files keyed by speaker id, restricted to the speakers left in a subset.
SPK_FILES = ("spk2gender",)
#: One-line files that describe the whole directory; copied verbatim.
SCALAR_FILES = ("feats_type", "audio_format")
#: Reports written by the tools; never copied into a derived directory.
REPORT_FILES = ("excluded.txt", "removed.txt")
#: Files whose value may be empty (an empty transcript is data, filtered in stage 4).
EMPTY_VALUE_OK = ("text",)
#: Every file name the data-dir tools know (others are reported, not carried over).
KNOWN_FILES = frozenset(UTT_FILES + SPK_FILES + SCALAR_FILES + REPORT_FILES + ("spk2utt",))


@dataclass
class DataDir:
    """The contents of a data dir in memory.

    Attributes:
        utt_maps: file name (one of :data:`UTT_FILES`) -> {uttid: value}.
        spk_maps: file name (one of :data:`SPK_FILES`) -> {speaker: value}.
        scalars: file name (one of :data:`SCALAR_FILES`) -> raw content.
        others: names of other files found (not carried into derived directories).
        reco_maps: file name (one of :data:`RECORDING_FILES`) -> {recording id: value}, in place of
            ``utt_maps`` when the data dir has a ``segments`` file (then in ``utt_maps``).
    """

    utt_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    spk_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    scalars: dict[str, bytes] = field(default_factory=dict)
    others: list[str] = field(default_factory=list)
    reco_maps: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def utt2spk(self) -> dict[str, str]:
        """The ``utt2spk`` map (every data dir has one; it defines the utterances)."""
        return self.utt_maps["utt2spk"]

    @property
    def utts(self) -> list[str]:
        """Utterance ids (those of ``utt2spk``) in C-locale order."""
        return sorted_keys(self.utt2spk)

    def subset(self, utts: Iterable[str]) -> DataDir:
        """A copy restricted to ``utts`` (ids absent from this dir are ignored); the recording
        files keep the recordings of the segments left."""
        keep = set(utts)
        utt_maps = {name: {u: v for u, v in mapping.items() if u in keep} for name, mapping in self.utt_maps.items()}
        speakers = set(utt_maps["utt2spk"].values())
        spk_maps = {
            name: {s: v for s, v in mapping.items() if s in speakers} for name, mapping in self.spk_maps.items()
        }
        recordings = {value.split()[0] for value in utt_maps.get("segments", {}).values()}
        reco_maps = {
            name: {r: v for r, v in mapping.items() if r in recordings} for name, mapping in self.reco_maps.items()
        }
        return DataDir(utt_maps, spk_maps, dict(self.scalars), list(self.others), reco_maps)


class Segment(NamedTuple):
    """A ``segments`` value: the span of a recording, in seconds."""

    recording: str
    start: float
    end: float


def parse_segment(value: str) -> Segment:
    """Parse a ``segments`` value, ``<recording-id> <start-seconds> <end-seconds>``.

    Raises:
        ValueError: what is wrong (without file and line): not three fields, a time that is not
            a finite number, a negative start, an end not after the start (Kaldi's
            ``utils/validate_data_dir.sh`` also rejects those; its end ``-1``, "to the end of the
            recording", included).
    """
    fields = value.split()
    if len(fields) != 3:
        raise ValueError(f"{value!r} has {len(fields)} field(s)")
    try:
        start, end = float(fields[1]), float(fields[2])
    except ValueError:
        raise ValueError(f"{value!r}: a time is not a number") from None
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError(f"{value!r}: a time is not finite")
    if start < 0:
        raise ValueError(f"start {fields[1]} s is negative")
    if end <= start:
        raise ValueError(f"end {fields[2]} s is not after start {fields[1]} s")
    return Segment(fields[0], start, end)


def _segmented(path: Path) -> bool:
    return (path / "segments").is_file()


def _keyed_by_utterance(name: str, segmented: bool) -> bool:
    return not (segmented and name in RECORDING_FILES)


def load_data_dir(path: PathLike) -> DataDir:
    """Read a data dir (each file must be well-formed; consistency is :func:`validate_data_dir`'s job).

    ``utt2spk`` is derived from ``spk2utt`` when only the latter exists.

    Raises:
        ValueError: a missing directory or ``utt2spk``, a malformed line (file:line).
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: not a directory; expected a Kaldi data dir")
    segmented = _segmented(path)
    data = DataDir()
    for name in UTT_FILES:
        if (path / name).is_file():
            maps = data.utt_maps if _keyed_by_utterance(name, segmented) else data.reco_maps
            maps[name] = read_map(path / name, allow_empty_value=name in EMPTY_VALUE_OK)
    if "utt2spk" not in data.utt_maps:
        if not (path / "spk2utt").is_file():
            raise ValueError(f"{path}: no utt2spk (nor spk2utt); expected a Kaldi data dir")
        data.utt_maps["utt2spk"] = spk2utt_to_utt2spk(read_map(path / "spk2utt"), f"{path}/spk2utt")
    for name in SPK_FILES:
        if (path / name).is_file():
            data.spk_maps[name] = read_map(path / name)
    for name in SCALAR_FILES:
        if (path / name).is_file():
            data.scalars[name] = (path / name).read_bytes()
    # hidden files (the recipes' .done markers) are not data
    data.others = sorted(
        p.name for p in path.iterdir() if p.is_file() and p.name not in KNOWN_FILES and not p.name.startswith(".")
    )
    return data


def write_data_dir(data: DataDir, path: PathLike) -> None:
    """Write ``data`` to ``path`` (created if needed); ``spk2utt`` is derived from ``utt2spk``.

    Known data files that ``data`` lacks are removed from ``path`` so that a re-run never
    leaves a stale file behind (nor a temporary file of a killed writer); other files already
    in ``path`` are left alone.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    for name in UTT_FILES:
        if name in data.utt_maps or name in data.reco_maps:
            write_map(path / name, data.utt_maps[name] if name in data.utt_maps else data.reco_maps[name])
        elif (path / name).exists():
            (path / name).unlink()
    write_spk2utt(path / "spk2utt", data.utt2spk)
    for name in SPK_FILES:
        if name in data.spk_maps:
            write_map(path / name, data.spk_maps[name])
        elif (path / name).exists():
            (path / name).unlink()
    for name in SCALAR_FILES:
        if name in data.scalars:
            write_bytes(path / name, data.scalars[name])
        elif (path / name).exists():
            (path / name).unlink()
    if data.others:
        logger.warning("%s: not carried over (unknown to the data-dir tools): %s", path, ", ".join(data.others))


def load_valid_data_dir(path: PathLike) -> DataDir:
    """:func:`validate_data_dir` (``text`` optional), then :func:`load_data_dir`: derived
    directories are only made from consistent ones, so nothing is lost unnoticed."""
    validate_data_dir(path, require_text=False)
    return load_data_dir(path)


# ----------------------------------------------------------------------------- validate
#
# Validation streams: every file is read line by line (per-utterance files in lockstep with
# utt2spk, as all are sorted by the same key), so that checking a corpus-sized data dir takes
# memory independent of its size. Errors name the file and line of the first problem.


def _check_value(path: Path, name: str, entry: Entry) -> None:
    if name == "segments":
        try:
            parse_segment(entry.value)
        except ValueError as e:
            raise ValueError(f"{path / name}:{entry.lineno}: {e}; expected {SEGMENT_FORMAT}") from None
    if name == "utt2num_samples" and (not entry.value.isdigit() or int(entry.value) <= 0):
        raise ValueError(
            f"{path / name}:{entry.lineno}: {entry.value!r} is not a positive integer; expected a number of samples"
        )
    if name == "utt2spk" and len(entry.value.split()) != 1:
        raise ValueError(f"{path / name}:{entry.lineno}: {entry.value!r}; expected one speaker id")


def _check_same_utts(path: Path, name: str) -> None:
    """``path/name`` lists exactly the utterances of ``path/utt2spk`` (both read in lockstep).

    A problem within the file (format, order, duplicates, values) is reported before a
    difference in the utterances, as it is usually the cause of the difference."""
    reference = iter_entries(path / "utt2spk")  # already checked: sorted, unique, well-formed
    mismatch: str | None = None
    for entry in iter_sorted_entries(path / name, allow_empty_value=name in EMPTY_VALUE_OK):
        _check_value(path, name, entry)
        if mismatch is not None:
            continue  # read on: the file's own problems come first
        ref = next(reference, None)
        if ref is None or sort_key(entry.key) < sort_key(ref.key):
            mismatch = (
                f"{path / name}:{entry.lineno}: utterance {entry.key!r} is not in utt2spk; expected "
                "the same utterances in every file (run 'fix')"
            )
        elif ref.key != entry.key:
            mismatch = (
                f"{path / name}: no entry for utterance {ref.key!r} (utt2spk line "
                f"{ref.lineno}); expected the same utterances in every file (run 'fix')"
            )
    ref = next(reference, None) if mismatch is None else None
    if ref is not None:
        mismatch = (
            f"{path / name}: no entry for utterance {ref.key!r} (utt2spk line "
            f"{ref.lineno}); expected the same utterances in every file (run 'fix')"
        )
    if mismatch is not None:
        raise ValueError(mismatch)


def _pair_digest(utt: str, spk: str) -> int:
    data = f"{utt} {spk}".encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(data, digest_size=16).digest(), "little")


def _pairs_fingerprint(pairs: Iterable[tuple[str, str]]) -> tuple[int, int]:
    """(count, sum of 128-bit hashes mod 2**128) of (utterance, speaker) pairs: equal for two
    files that hold the same pairs in any order; a difference changes it except with
    probability about 2**-128."""
    count, total = 0, 0
    for utt, spk in pairs:
        count += 1
        total = (total + _pair_digest(utt, spk)) & ((1 << 128) - 1)
    return count, total


def _spk2utt_pairs(path: Path) -> Iterator[tuple[str, str]]:
    for entry in iter_sorted_entries(path / "spk2utt"):
        for utt in entry.value.split():
            yield utt, entry.key


def _check_spk2utt(path: Path) -> None:
    """``spk2utt`` is sorted and holds the pairs of ``utt2spk``. Compared by fingerprint (no
    size-dependent memory); on a mismatch the files are compared in memory to name the line."""
    expected = _pairs_fingerprint((e.key, e.value) for e in iter_entries(path / "utt2spk"))
    if _pairs_fingerprint(_spk2utt_pairs(path)) == expected:
        return
    utt2spk = {e.key: e for e in iter_entries(path / "utt2spk")}
    seen: dict[str, str] = {}
    for entry in iter_entries(path / "spk2utt"):
        spk = entry.key
        for utt in entry.value.split():
            where = f"{path / 'spk2utt'}:{entry.lineno}"
            if utt in seen:
                raise ValueError(
                    f"{where}: utterance {utt!r} listed again (first under {seen[utt]!r}); expected each utterance once"
                )
            if utt not in utt2spk:
                raise ValueError(f"{where}: utterance {utt!r} is not in utt2spk; expected spk2utt to match utt2spk")
            if utt2spk[utt].value != spk:
                raise ValueError(
                    f"{where}: utterance {utt!r} listed under {spk!r} but utt2spk line "
                    f"{utt2spk[utt].lineno} says {utt2spk[utt].value!r}; expected spk2utt to match utt2spk"
                )
            seen[utt] = spk
    for utt in sorted_keys(utt2spk):
        if utt not in seen:
            raise ValueError(
                f"{path / 'spk2utt'}: utterance {utt!r} (utt2spk line {utt2spk[utt].lineno}) "
                "is not listed; expected spk2utt to match utt2spk"
            )
    raise AssertionError(f"{path}: spk2utt and utt2spk fingerprints differ but no difference was found")


def validate_data_dir(path: PathLike, require_text: bool = True) -> int:
    """Check a data dir; return its number of utterances.

    Checks: the required files exist (``wav.scp``, ``utt2spk``, ``spk2utt``, and ``text`` if
    ``require_text``); every per-utterance file is UTF-8, well-formed, non-empty, sorted with
    unique keys and lists exactly the utterances of ``utt2spk``; ``spk2utt`` matches
    ``utt2spk``; ``utt2num_samples`` holds positive integers. A ``text`` that exists is
    checked even when not required. With a ``segments`` file, ``wav.scp`` is keyed by
    recording: each segment is ``0 <= start < end`` and names a recording of ``wav.scp``, and
    every recording there is used (see the module docstring). The files are streamed: memory
    does not grow with the number of utterances (see :class:`RecordingIndex` for the recordings).

    Raises:
        ValueError: the first problem found, naming the file and line.
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: not a directory; expected a Kaldi data dir")
    required = ["wav.scp", "utt2spk", "spk2utt"] + (["text"] if require_text else [])
    for name in required:
        if not (path / name).is_file():
            raise ValueError(f"{path / name}: missing; expected a data dir with {', '.join(required)}")
    count = 0
    for entry in iter_sorted_entries(path / "utt2spk"):
        _check_value(path, "utt2spk", entry)
        count += 1
    segmented = _segmented(path)
    for name in UTT_FILES:
        if name != "utt2spk" and (path / name).is_file() and _keyed_by_utterance(name, segmented):
            _check_same_utts(path, name)
    if segmented:
        _check_recordings(path)
    _check_spk2utt(path)
    for name in SCALAR_FILES:
        if (path / name).is_file() and len((path / name).read_bytes().split()) != 1:
            raise ValueError(f"{path / name}: expected exactly one word")
    return count


class RecordingIndex:
    """The values of a file keyed by recording id (``wav.scp`` of a data dir with ``segments``),
    looked up recording by recording as the segments (sorted by utterance id) name them.

    Kaldi's utterance ids start with their recording's id, so the segments usually name the
    recordings in the file's order: the file is then read in step with the lookups, one line at a
    time. The first lookup of a recording before the current line reads the whole file into
    memory (logged): memory then grows with the number of recordings, never with the number of
    utterances. :meth:`unused` lists the recordings never looked up.
    """

    def __init__(self, path: PathLike):
        self.path = Path(path)
        self._entries = iter_sorted_entries(self.path)  # checks the order, and that there is a line
        self._current: Entry | None = next(self._entries)
        self._current_used = False
        self._table: dict[str, str] | None = None
        self._unused: dict[str, int] = {}  # recording -> line, for those passed without a lookup

    def _advance(self) -> None:
        assert self._current is not None
        if not self._current_used:
            self._unused[self._current.key] = self._current.lineno
        self._current, self._current_used = next(self._entries, None), False

    def get(self, recording: str) -> str | None:
        """``recording``'s value, or None when the file lacks it."""
        if self._table is None:
            key = sort_key(recording)
            while self._current is not None and sort_key(self._current.key) < key:
                self._advance()
            if self._current is not None and self._current.key == recording:
                self._current_used = True
                return self._current.value
        return self._lookup_in_table(recording)

    def _lookup_in_table(self, recording: str) -> str | None:
        if self._table is None:
            logger.info(
                "%s: recording %r looked up out of the file's order (or absent): read whole", self.path, recording
            )
            while self._current is not None:
                self._advance()
            self._table = {e.key: e.value for e in iter_entries(self.path)}
        value = self._table.get(recording)
        if value is not None:
            self._unused.pop(recording, None)
        return value

    def unused(self) -> dict[str, int]:
        """The recordings never looked up -> their line (reads the rest of the file)."""
        while self._current is not None:
            self._advance()
        return dict(self._unused)


def _check_recordings(path: Path) -> None:
    """Every segment names a recording of ``wav.scp``, and every recording there is used."""
    index = RecordingIndex(path / "wav.scp")
    for entry in iter_entries(path / "segments"):  # checked already: sorted, well-formed
        recording = parse_segment(entry.value).recording
        if index.get(recording) is None:
            raise ValueError(
                f"{path / 'segments'}:{entry.lineno}: recording {recording!r} is not in {path / 'wav.scp'}; "
                "expected the recording of every segment there (run 'fix')"
            )
    unused = index.unused()
    if unused:
        recording, lineno = min(unused.items(), key=lambda item: item[1])
        raise ValueError(
            f"{path / 'wav.scp'}:{lineno}: recording {recording!r} is used by no segment ({len(unused)} "
            f"such); expected only the recordings of {path / 'segments'} (run 'fix')"
        )


def iter_utterances(path: PathLike, names: Sequence[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """``(uttid, {file name: value})`` for every utterance of a data dir that
    :func:`validate_data_dir` accepted, in C-locale order, reading the per-utterance files
    ``names`` in lockstep (one line of each in memory at a time)."""
    path = Path(path)
    streams = {name: iter_entries(path / name, name in EMPTY_VALUE_OK) for name in names}
    for entries in zip(*streams.values()):
        key = entries[0].key
        if any(e.key != key for e in entries):
            raise ValueError(
                f"{path}: the per-utterance files {', '.join(names)} differ at "
                f"{', '.join(f'{n}:{e.lineno} {e.key!r}' for n, e in zip(names, entries))}; "
                "expected a valid data dir (run 'validate')"
            )
        yield key, {name: e.value for name, e in zip(names, entries)}


class _Discarded(Exception):
    """Ends a :func:`~espnet_ext.core.atomic.replacing` block whose file is not kept."""


class SortedDataDirWriter:
    """Write a data dir from utterances that arrive in C-locale order, one line at a time.

    ``names``: the per-utterance files to write (``utt2spk`` among them). ``spk2utt`` is
    written as the utterances arrive when every speaker's utterances are contiguous and the
    speakers rise in C-locale order (ids prefixed by their speaker, as Kaldi asks); otherwise
    it is derived from the finished ``utt2spk`` in memory. Each file is written beside its name
    (:func:`espnet_ext.core.atomic.replacing`) and replaces the old one on :meth:`close` (and known
    data files not written are removed then), so an aborted write leaves the directory as it was.
    """

    def __init__(self, path: PathLike, names: Sequence[str]):
        if "utt2spk" not in names:
            raise ValueError(f"{names}: expected utt2spk among the files to write")
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.path)  # of a writer killed before
        self.names = list(names)
        self._replacing = {name: replacing(self.path / name) for name in self.names + ["spk2utt"]}
        self.files = {name: self._open(name) for name in self.names + ["spk2utt"]}
        self.count = 0
        self.speakers: set = set()
        self._last_utt = b""
        self._spk: str | None = None
        self._spk_utts: list[str] = []
        self._streamed_spk2utt = True

    def _open(self, name: str):
        tmp = self._replacing[name].__enter__()
        return open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="\n")

    def _finish(self, name: str, keep: bool) -> None:
        """Rename ``name``'s temporary file into place (``keep``) or remove it."""
        if keep:
            self._replacing[name].__exit__(None, None, None)
        else:
            dropped = _Discarded(f"{self.path / name}: not kept")
            self._replacing[name].__exit__(_Discarded, dropped, None)

    def add(self, utt: str, values: Mapping[str, str]) -> None:
        """Write one utterance; ``values`` holds a value for every file of ``names``.

        Raises:
            ValueError: an id that does not sort after the previous one (or repeats it).
        """
        key = sort_key(utt)
        if self.count and key <= self._last_utt:
            problem = "appears twice" if key == self._last_utt else "arrives out of C-locale order"
            raise ValueError(f"{self.path}: utterance id {utt!r} {problem}; expected unique ids in order")
        self._last_utt = key
        for name in self.names:
            value = values[name]
            self.files[name].write(f"{utt} {value}\n" if value != "" else f"{utt}\n")
        spk = values["utt2spk"]
        if spk != self._spk:
            if self._spk is not None:
                self._flush_speaker()
            if spk in self.speakers or (self._spk is not None and sort_key(spk) < sort_key(self._spk)):
                self._streamed_spk2utt = False
            self.speakers.add(spk)
            self._spk = spk
        self._spk_utts.append(utt)
        self.count += 1

    def _flush_speaker(self) -> None:
        if self._streamed_spk2utt:
            self.files["spk2utt"].write(f"{self._spk} {' '.join(self._spk_utts)}\n")
        self._spk_utts = []

    def abort(self) -> None:
        """Close and delete the temporary files; the directory keeps its old files."""
        for name, f in self.files.items():
            f.close()
            self._finish(name, keep=False)

    def close(self) -> int:
        """Finish the files, move them into place; return the number of utterances."""
        if self._spk is not None:
            self._flush_speaker()
        for f in self.files.values():
            f.close()
        for name in self.names:
            self._finish(name, keep=True)
        self._finish("spk2utt", keep=self._streamed_spk2utt)
        if not self._streamed_spk2utt:
            logger.info("%s: speakers' utterances are not contiguous in id order: spk2utt built in memory", self.path)
            write_spk2utt(self.path / "spk2utt", read_map(self.path / "utt2spk"))
        for name in UTT_FILES:
            if name not in self.names and (self.path / name).exists():
                (self.path / name).unlink()
        return self.count


# ----------------------------------------------------------------------------- fix


class _LenientRead(NamedTuple):
    values: dict[str, str]
    problems: dict[str, str]  # uttid -> reason the file gives to drop it
    duplicates: int  # identical lines removed


def _read_lenient(path: Path, allow_empty_value: bool) -> _LenientRead:
    """Read a file for ``fix``: identical duplicate lines are merged; conflicting
    duplicates, non-UTF-8 and malformed lines (and, in ``segments``, values that
    :func:`parse_segment` rejects) mark their utterance as a problem."""
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    problems: dict[str, str] = {}
    duplicates = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.decode("utf-8", "surrogateescape")
            if not line.strip():
                logger.warning("%s:%d: blank line removed", path, lineno)
                continue
            key = line.split()[0]
            try:
                entry = parse_line(path, lineno, decode_line(path, lineno, raw), allow_empty_value)
            except ValueError as e:
                problems.setdefault(key, str(e).split("; expected")[0])
                continue
            if path.name == "segments":
                try:
                    parse_segment(entry.value)
                except ValueError as e:
                    problems.setdefault(key, f"{path}:{lineno}: bad segment: {e}")
                    continue
            if key in values and values[key] != entry.value:
                problems.setdefault(key, f"conflicting lines {lines[key]} and {lineno} in {path}")
            elif key in values:
                duplicates += 1
            else:
                values[key], lines[key] = entry.value, lineno
    return _LenientRead(values, problems, duplicates)


_MISSING_REASON = {"wav.scp": "no audio", "segments": "no segment", "text": "no transcript", "utt2spk": "no speaker"}


def _fix_reasons(reads: dict[str, _LenientRead]) -> dict[str, str]:
    """uttid -> reason for every utterance that is not well-formed in every file."""
    universe = set()
    for read in reads.values():
        universe |= set(read.values) | set(read.problems)
    dropped: dict[str, str] = {}
    for utt in universe:
        reasons = []
        for name, read in reads.items():
            if utt in read.problems:
                reasons.append(read.problems[utt])
            elif utt not in read.values:
                reasons.append(_MISSING_REASON.get(name, f"not in {name}"))
        if reasons:
            dropped[utt] = "; ".join(reasons)
    return dropped


def _segment_reasons(
    path: Path, segments: Mapping[str, str], wav: _LenientRead, dropped: Mapping[str, str]
) -> dict[str, str]:
    """uttid -> reason for the well-formed segments (not already ``dropped``) whose recording
    ``wav.scp`` lacks or has conflicting lines for."""
    reasons = {}
    for utt, value in segments.items():
        if utt in dropped:
            continue
        recording = value.split()[0]
        if recording in wav.problems:
            reasons[utt] = f"no audio: recording {recording!r}: {wav.problems[recording]}"
        elif recording not in wav.values:
            reasons[utt] = f"no audio: recording {recording!r} is not in {path / 'wav.scp'}"
    return reasons


def _backup(path: Path) -> Path:
    backup = path / ".backup"
    backup.mkdir(exist_ok=True)
    for item in path.iterdir():
        if item.is_file():
            shutil.copy2(item, backup / item.name)
    return backup


def fix_data_dir(path: PathLike) -> dict[str, str]:
    """Repair a data dir in place; return the dropped utterances (uttid -> reason).

    Sorts every file, removes identical duplicate lines, keeps only the utterances present
    (and well-formed) in every per-utterance file, and regenerates ``spk2utt`` from
    ``utt2spk``. The original files are copied to ``DIR/.backup/`` first, and the dropped
    utterances are listed in ``DIR/.backup/dropped.txt`` as ``uttid reason`` lines (e.g.
    ``no transcript``, ``no audio``).

    With a ``segments`` file, ``wav.scp`` lists recordings: an utterance whose segment is bad
    (see :func:`parse_segment`) or names a recording that ``wav.scp`` lacks (or holds
    conflicting lines for) is dropped and listed; recordings that no kept segment uses are
    removed from ``wav.scp`` (logged), as Kaldi's ``utils/fix_data_dir.sh`` does.
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: not a directory; expected a Kaldi data dir")
    if not (path / "wav.scp").is_file() or not (path / "utt2spk").is_file() and not (path / "spk2utt").is_file():
        raise ValueError(f"{path}: no wav.scp or no utt2spk (nor spk2utt); expected a Kaldi data dir")
    backup = _backup(path)
    if not (path / "utt2spk").is_file():
        write_map(path / "utt2spk", spk2utt_to_utt2spk(read_map(path / "spk2utt"), f"{path}/spk2utt"))
    segmented = _segmented(path)
    names = [n for n in UTT_FILES if (path / n).is_file() and _keyed_by_utterance(n, segmented)]
    reads = {n: _read_lenient(path / n, n in EMPTY_VALUE_OK) for n in names}
    recordings = {n: _read_lenient(path / n, False) for n in RECORDING_FILES if segmented and (path / n).is_file()}
    for name, read in {**reads, **recordings}.items():
        if read.duplicates:
            logger.info("%s: removed %d duplicate line(s)", path / name, read.duplicates)
    dropped = _fix_reasons(reads)
    if segmented:
        dropped.update(_segment_reasons(path, reads["segments"].values, recordings["wav.scp"], dropped))
    data = DataDir(
        utt_maps={n: {u: v for u, v in r.values.items() if u not in dropped} for n, r in reads.items()},
        spk_maps={n: read_map(path / n) for n in SPK_FILES if (path / n).is_file()},
        scalars={n: (path / n).read_bytes() for n in SCALAR_FILES if (path / n).is_file()},
        reco_maps={n: r.values for n, r in recordings.items()},
    )
    data = data.subset(data.utt2spk)
    if segmented:
        unused = sorted_keys(set(recordings["wav.scp"].values) - set(data.reco_maps["wav.scp"]))
        if unused:
            logger.info(
                "%s: removed %d recording(s) that no kept segment uses: %s%s",
                path / "wav.scp",
                len(unused),
                ", ".join(unused[:5]),
                ", ..." if len(unused) > 5 else "",
            )
    write_data_dir(data, path)
    lines = "".join(
        f"{u.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')} {dropped[u]}\n"
        for u in sorted_keys(dropped)
    )
    write_text(backup / "dropped.txt", lines, errors="surrogateescape")
    _log_reasons(f"{path}: fixed, kept {len(data.utt2spk)} utterance(s), dropped", dropped, backup / "dropped.txt")
    return dropped


def _log_reasons(prefix: str, reasons: Mapping[str, str], listing: PathLike) -> None:
    """Log ``prefix N`` then one line per distinct reason with its count."""
    logger.info("%s %d (listed in %s)", prefix, len(reasons), listing)
    counts: dict[str, int] = {}
    for reason in reasons.values():
        counts[reason] = counts.get(reason, 0) + 1
    for reason, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        logger.info("  %6d  %s", count, reason)


# ----------------------------------------------------------------------------- from a manifest

#: Columns a manifest must have (``text`` too unless ``with_text=False``).
MANIFEST_COLUMNS = ("uttid", "set", "spk", "path")


def data_dir_from_manifest(manifest: PathLike, dst: PathLike, set_name: str, with_text: bool = True) -> int:
    """Write the data dir ``dst`` from the rows of a tab-separated ``manifest`` whose ``set`` is ``set_name``.

    The manifest's header names its columns; those used are ``uttid``, ``set``, ``spk``, ``path``
    (audio file, relative to the manifest's directory unless absolute) and ``text``: the
    ``manifest.tsv`` that ``tools/synth_corpus/generate.py`` writes, for instance. ``wav.scp`` holds
    absolute paths; ``dst`` is replaced. Returns the number of utterances.

    Raises:
        ValueError: a missing column (the manifest and what was expected named), a row with fewer
            fields than the header (file:line), a repeated utterance id, no row of ``set_name``.
        FileNotFoundError: no ``manifest``.
    """
    manifest = Path(manifest)
    root = manifest.resolve().parent
    with open(manifest, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        needed = MANIFEST_COLUMNS + (("text",) if with_text else ())
        missing = [c for c in needed if c not in header]
        if missing:
            raise ValueError(
                f"{manifest}: no column {', '.join(missing)} in its header ({' '.join(header)}); "
                f"expected a tab-separated header naming {', '.join(needed)}"
            )
        col = {name: header.index(name) for name in needed}
        utt_maps: dict[str, dict[str, str]] = {"wav.scp": {}, "utt2spk": {}}
        if with_text:
            utt_maps["text"] = {}
        sets = set()
        for lineno, line in enumerate(f, start=2):
            fields = line.rstrip("\n").split("\t")
            if len(fields) < len(header):
                raise ValueError(f"{manifest}:{lineno}: {len(fields)} field(s); expected {len(header)} (tab-separated)")
            sets.add(fields[col["set"]])
            if fields[col["set"]] != set_name:
                continue
            utt = fields[col["uttid"]]
            if utt in utt_maps["utt2spk"]:
                raise ValueError(f"{manifest}:{lineno}: utterance id {utt} repeated; expected unique ids")
            utt_maps["wav.scp"][utt] = str(root / fields[col["path"]])  # an absolute path stays as it is
            utt_maps["utt2spk"][utt] = fields[col["spk"]]
            if with_text:
                utt_maps["text"][utt] = fields[col["text"]]
    if not utt_maps["utt2spk"]:
        raise ValueError(f"{manifest}: no row of set {set_name}; its sets: {', '.join(sorted(sets)) or 'none'}")
    if Path(dst).exists():
        shutil.rmtree(dst)
    write_data_dir(DataDir(utt_maps), dst)
    logger.info("%s: %d utterance(s) of set %s in %s", dst, len(utt_maps["utt2spk"]), set_name, manifest)
    return len(utt_maps["utt2spk"])
