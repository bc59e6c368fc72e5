"""Kaldi-style ``<key> <value>`` files, one entry per line: parse, read, write, invert.

The files of a data dir (:mod:`espnet_ext.data.datadir`) hold one entry per line, the key, then
spaces or tabs, then the value (the rest of the line, which may itself hold spaces), sorted by key
in C-locale byte order with unique keys. This module reads and writes such files and the
speaker maps derived from them (``utt2spk`` <-> ``spk2utt``); errors name the file and line.
It imports neither torch nor ESPnet.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

from espnet_ext.core.atomic import write_text

PathLike = str | os.PathLike

_LINE_RE = re.compile(r"([^ \t]+)(?:[ \t]+(.*))?")


class Entry(NamedTuple):
    """One parsed line: 1-based line number, key and value (the rest of the line)."""

    lineno: int
    key: str
    value: str


def sort_key(key: str) -> bytes:
    """The C-locale (byte order) sort key of an id, as ``LC_ALL=C sort`` orders lines."""
    return key.encode("utf-8", "surrogateescape")


def sorted_keys(keys: Iterable[str]) -> list[str]:
    """``keys`` in C-locale byte order."""
    return sorted(keys, key=sort_key)


def decode_line(path: PathLike, lineno: int, raw: bytes) -> str:
    """Line ``lineno`` of ``path`` as text; ``ValueError`` naming the file, line and byte unless UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path}:{lineno}: not UTF-8: byte 0x{raw[e.start]:02x} at column {e.start + 1}; expected UTF-8 text"
        ) from None


def parse_line(path: PathLike, lineno: int, line: str, allow_empty_value: bool = False) -> Entry:
    """Parse ``<key> <value>`` (key and value separated by spaces or tabs).

    Raises:
        ValueError: naming ``path:lineno`` for an empty line, a line that starts with
            whitespace, or (unless ``allow_empty_value``) a key without a value.
    """
    line = line.rstrip("\r\n").rstrip(" \t\r")
    if not line:
        raise ValueError(f"{path}:{lineno}: empty line; expected '<key> <value>'")
    match = _LINE_RE.fullmatch(line)
    if line[0] in " \t" or match is None:
        raise ValueError(f"{path}:{lineno}: line starts with whitespace; expected '<key> <value>'")
    key, value = match.group(1), match.group(2) or ""
    if not value and not allow_empty_value:
        raise ValueError(f"{path}:{lineno}: key {key!r} has no value; expected '<key> <value>'")
    return Entry(lineno, key, value)


def iter_entries(path: PathLike, allow_empty_value: bool = False) -> Iterator[Entry]:
    """Yield the parsed lines of ``path``; raise ``ValueError`` (file:line) on a bad line."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            yield parse_line(path, lineno, decode_line(path, lineno, raw), allow_empty_value)


def read_map(path: PathLike, allow_empty_value: bool = False) -> dict[str, str]:
    """Read a ``<key> <value>`` file into a dict (file order).

    Raises:
        ValueError: ``path:line`` of a malformed, non-UTF-8 or duplicate-key line.
    """
    result: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for entry in iter_entries(path, allow_empty_value):
        if entry.key in result:
            raise ValueError(
                f"{path}:{entry.lineno}: duplicate key {entry.key!r} (first on line "
                f"{first_line[entry.key]}); expected unique keys"
            )
        result[entry.key] = entry.value
        first_line[entry.key] = entry.lineno
    return result


def write_map(path: PathLike, mapping: Mapping[str, str]) -> None:
    """Write ``mapping`` as ``<key> <value>`` lines sorted by key (C locale), atomically.

    An empty value is written as the key alone (an empty transcript).
    """
    lines = []
    for key in sorted_keys(mapping):
        value = mapping[key]
        lines.append(f"{key} {value}\n" if value != "" else f"{key}\n")
    write_text(path, "".join(lines), errors="surrogateescape")


def read_id_list(path: PathLike) -> list[str]:
    """First whitespace-separated column of each non-blank line (an utt or speaker list)."""
    ids = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            fields = decode_line(path, lineno, raw).split()
            if fields:
                ids.append(fields[0])
    return ids


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert ``utt2spk``: speaker -> its utterances in C-locale order."""
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted_keys(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return spk2utt


def spk2utt_to_utt2spk(spk2utt: Mapping[str, str | Sequence[str]], source: str = "spk2utt") -> dict[str, str]:
    """Invert ``spk2utt`` (values are lists or space-separated strings).

    Raises:
        ValueError: an utterance listed under two speakers (or twice), naming ``source``.
    """
    utt2spk: dict[str, str] = {}
    for spk, utts in spk2utt.items():
        for utt in utts.split() if isinstance(utts, str) else utts:
            if utt in utt2spk:
                raise ValueError(
                    f"{source}: utterance {utt!r} is listed under speaker {utt2spk[utt]!r} and again "
                    f"under {spk!r}; expected each utterance once"
                )
            utt2spk[utt] = spk
    return utt2spk


def write_spk2utt(path: PathLike, utt2spk: Mapping[str, str]) -> None:
    """Write ``spk2utt`` derived from ``utt2spk``."""
    write_map(path, {spk: " ".join(utts) for spk, utts in utt2spk_to_spk2utt(utt2spk).items()})


def iter_sorted_entries(path: PathLike, allow_empty_value: bool = False) -> Iterator[Entry]:
    """Yield the entries of ``path``, checking that keys rise strictly in C-locale order (so are
    unique) and that there is at least one.

    Raises:
        ValueError: ``path:line`` of a malformed line, a duplicate key or one out of order; an
            empty file.
    """
    prev: Entry | None = None
    prev_key = b""
    for entry in iter_entries(path, allow_empty_value):
        key = sort_key(entry.key)
        if prev is not None and key <= prev_key:
            if key == prev_key:
                raise ValueError(
                    f"{path}:{entry.lineno}: duplicate key {entry.key!r} (first on line "
                    f"{prev.lineno}); expected unique keys"
                )
            raise ValueError(
                f"{path}:{entry.lineno}: key {entry.key!r} sorts before {prev.key!r} of line "
                f"{prev.lineno}; expected keys sorted in C-locale byte order (run 'fix')"
            )
        yield entry
        prev, prev_key = entry, key
    if prev is None:
        raise ValueError(f"{path}: empty file; expected at least one entry")
