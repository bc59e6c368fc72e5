"""Reading Kaldi-style text files (``<uttid> <text...>``, UTF-8): texts, non-linguistic
symbol lists, ``utt2spk``; errors name the file and line."""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def read_lines(path) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line)`` of a UTF-8 file; ValueError names file and line."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(
                    f"{path}:{lineno}: expected UTF-8 text, found byte 0x{raw[e.start]:02x} "
                    f"at byte {e.start + 1} of the line"
                ) from None
            yield lineno, (line.lstrip("\ufeff") if lineno == 1 else line)


def read_text(path) -> dict[str, str]:
    """Read a Kaldi-style ``<uttid> <text...>`` file (an id alone means an empty text).

    Blank lines are skipped; a duplicate id or a non-UTF-8 line raises ValueError naming
    the file and line."""
    entries: dict[str, str] = {}
    for lineno, line in read_lines(path):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if parts[0] in entries:
            raise ValueError(f"{path}:{lineno}: duplicate utterance id {parts[0]!r}")
        entries[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return entries


def read_nlsyms(path) -> list[str]:
    """Read a non-linguistic symbol list: one symbol a line, blank lines skipped."""
    symbols = []
    for lineno, line in read_lines(path):
        fields = line.split()
        if len(fields) > 1:
            raise ValueError(f"{path}:{lineno}: expected one symbol per line, found {line.strip()!r}")
        symbols.extend(fields)
    return symbols


def read_utt2spk(path) -> dict[str, str]:
    """Read a Kaldi ``utt2spk`` (``<uttid> <speaker>``)."""
    utt2spk = read_text(path)
    for utt, spk in utt2spk.items():
        if len(spk.split()) != 1:
            raise ValueError(f"{path}: expected '<uttid> <speaker>' for {utt!r}, found speaker {spk!r}")
    return utt2spk


def preview(ids: Sequence[str], limit: int = 10) -> str:
    """The first ``limit`` ids, comma-separated, and how many more there are (for messages)."""
    shown = ", ".join(ids[:limit])
    return shown + (f" (and {len(ids) - limit} more)" if len(ids) > limit else "")
