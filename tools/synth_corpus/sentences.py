"""English sentences for the synthetic corpus, from Debian's ``fortunes`` package.

Reads the fortune files (``/usr/share/games/fortunes/<category>``: entries separated by
lines holding ``%``), drops attributions (``-- Author``), splits entries into sentences and
normalises each to lower-case letters, apostrophes and single spaces: integers up to 999,999
are spelled out, ``&`` becomes ``and``, hyphens and dashes become spaces. A sentence is dropped
when it still holds anything else (other digits, symbols, non-ASCII letters), when it holds an
acronym (a word of two or more capitals, which a synthesizer spells letter by letter), or when
it has fewer than ``min_words`` or more than ``max_words`` words. Duplicates are removed; the
order is sorted, so the output depends only on the input files.

    python3 sentences.py [--fortunes_dir DIR] [--min_words 3] [--max_words 20] > sentences.txt
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

FORTUNES_DIR = Path("/usr/share/games/fortunes")
# Categories left out: pictures, non-English text, code and command lines, rare symbols.
EXCLUDED = frozenset({"art", "ascii-art", "translate-me", "perl", "linux", "debian", "computers", "linuxcookie"})

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def spell_number(n: int) -> str:
    """Spell a non-negative integer below one million in English words ("one hundred five")."""
    if not 0 <= n < 1_000_000:
        raise ValueError(f"expected 0 <= n < 1000000, found {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + spell_number(rest))
    rest = n % 1000
    return spell_number(n // 1000) + " thousand" + ("" if rest == 0 else " " + spell_number(rest))


_ATTRIBUTION = re.compile(r"^\s*(--|~~|—)")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_ACRONYM = re.compile(r"\b[A-Z]{2,}\b")
_INTEGER = re.compile(r"\b\d{1,3}(,\d{3})?\b(?![.,]?\d)")
_OVERSTRIKE = re.compile(r".\x08")


def read_entries(path: Path) -> list[str]:
    """The entries of one fortune file, attribution lines removed, each joined to one line."""
    raw = path.read_bytes().decode("utf-8", errors="replace")
    entries, lines = [], []
    for line in _OVERSTRIKE.sub("", raw).splitlines() + ["%"]:
        if line.strip() == "%":
            if lines:
                entries.append(" ".join(lines))
            lines = []
        elif not _ATTRIBUTION.match(line):
            lines.append(line.strip())
    return entries


def normalise(sentence: str) -> str | None:
    """The sentence as lower-case words of letters and apostrophes, or None when it can't be."""
    if _ACRONYM.search(sentence):
        return None
    s = _INTEGER.sub(lambda m: " " + spell_number(int(m.group(0).replace(",", ""))) + " ", sentence)
    s = s.replace("&", " and ").replace("\u2019", "'").replace("`", "'")
    s = re.sub(r"-+|\u2014|\u2013", " ", s)
    s = re.sub(r"[.,;:!?\"()\[\]]", " ", s)
    s = s.lower()
    if re.search(r"[^a-z' ]", s):
        return None
    words = [w.strip("'") for w in s.split()]
    if any(not w for w in words):
        return None
    return " ".join(words)


def sentences(fortunes_dir: Path = FORTUNES_DIR, min_words: int = 3, max_words: int = 20) -> list[str]:
    """Sorted distinct normalised sentences of min_words..max_words words from the fortune files."""
    if min_words < 1 or max_words < min_words:
        raise ValueError(f"expected 1 <= min_words <= max_words, found {min_words}, {max_words}")
    files = sorted(
        p for p in Path(fortunes_dir).iterdir() if p.is_file() and "." not in p.name and p.name not in EXCLUDED
    )
    if not files:
        raise ValueError(f"no fortune files in {fortunes_dir}: install Debian's 'fortunes' package")
    out = set()
    for path in files:
        for entry in read_entries(path):
            for piece in _SENTENCE_END.split(entry):
                norm = normalise(piece)
                if norm and min_words <= len(norm.split()) <= max_words:
                    out.add(norm)
    return sorted(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fortunes_dir", type=Path, default=FORTUNES_DIR)
    p.add_argument("--min_words", type=int, default=3)
    p.add_argument("--max_words", type=int, default=20)
    a = p.parse_args(argv)
    for s in sentences(a.fortunes_dir, a.min_words, a.max_words):
        print(s)


if __name__ == "__main__":
    main(sys.argv[1:])
