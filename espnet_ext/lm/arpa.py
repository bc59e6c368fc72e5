"""The ARPA n-gram format (as SRILM and KenLM write it), written and read.

Layout::

    \\data\\
    ngram 1=5
    ngram 2=8

    \\1-grams:
    -0.90309	<unk>	0
    -99	<s>	-0.16532
    ...

    \\2-grams:
    -0.57919	<s> a
    ...

    \\end\\

Each entry is the log10 probability, the n-gram (words separated by spaces), and for orders below
the highest the log10 backoff weight (a missing column reads as 0, i.e. weight 1). ``<s>`` is a
context only: its probability is written as -99 (never predicted; SRILM's value, where ``lmplz``
writes 0). A path ending in ``.gz`` is read
and written gzip-compressed.
"""

from __future__ import annotations

import gzip
import io
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from espnet_ext.core.atomic import replacing

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
#: the log10 probability written for ``<s>`` (never predicted)
BOS_LOG10 = -99.0

#: an entry as written: (n-gram as word ids, log10 probability, log10 backoff or None for none)
Entry = tuple[tuple[int, ...], float, "float | None"]


def format_log10(value: float) -> str:
    """A log10 value with 7 significant digits, ``0`` for zero (no ``-0``)."""
    if value == 0:
        return "0"
    if math.isinf(value) or math.isnan(value):
        raise ValueError(f"not a finite log10 value: {value}")
    return f"{value:.7g}"


def _open_text(path: Path | str, mode: str, gz: bool | None = None):
    if str(path).endswith(".gz") if gz is None else gz:
        return io.TextIOWrapper(gzip.open(path, mode + "b"), encoding="utf-8", newline="\n")
    return open(path, mode, encoding="utf-8", newline="\n")


def write_arpa(path: str | os.PathLike, words: Sequence[str], orders: Sequence[Sequence[Entry]]) -> Path:
    """Write an ARPA file: ``orders[k - 1]`` holds the k-gram entries (word ids into ``words``), in
    the order given. The file is replaced atomically (:func:`espnet_ext.core.atomic.replacing`)."""
    path = Path(path)
    with replacing(path) as tmp, _open_text(tmp, "w", gz=path.name.endswith(".gz")) as f:
        f.write("\\data\\\n")
        for k, entries in enumerate(orders, 1):
            f.write(f"ngram {k}={len(entries)}\n")
        for k, entries in enumerate(orders, 1):
            f.write(f"\n\\{k}-grams:\n")
            for ids, log10p, log10bow in entries:
                if len(ids) != k:
                    raise ValueError(f"{path}: a {len(ids)}-gram among the {k}-grams")
                line = f"{format_log10(log10p)}\t{' '.join([words[i] for i in ids])}"
                if log10bow is not None:
                    line += f"\t{format_log10(log10bow)}"
                f.write(line + "\n")
        f.write("\n\\end\\\n")
    return path


def iter_arpa(path: str | os.PathLike) -> Iterator[tuple[tuple[str, ...], float, float | None]]:
    """The entries of an ARPA file in file order: (n-gram words, log10 probability, log10 backoff
    or None where the column is absent). Raises ValueError naming the file and line on anything
    that is not ARPA, and when a section's entry count differs from its ``ngram k=`` line."""
    try:
        yield from _iter_arpa(Path(path))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text: not an ARPA text file (a KenLM binary?)") from None


def _iter_arpa(path: Path) -> Iterator[tuple[tuple[str, ...], float, float | None]]:
    counts: dict[int, int] = {}
    with _open_text(path, "r") as f:
        lines = enumerate(f, 1)
        for number, line in lines:
            if line.strip() == "\\data\\":
                break
            if line.strip() and number > 50:
                raise ValueError(f"{path}: no \\data\\ line: not an ARPA text file (a KenLM binary?)")
        else:
            raise ValueError(f"{path}: no \\data\\ line: not an ARPA text file (a KenLM binary?)")
        order, seen = 0, 0
        for number, line in lines:
            text = line.strip()
            if not text:
                continue
            where = f"{path}:{number}"
            if text.startswith("ngram ") and order == 0:
                k, _, n = text[6:].partition("=")
                try:
                    counts[int(k)] = int(n)
                except ValueError:
                    raise ValueError(f"{where}: expected 'ngram K=COUNT', found {text!r}") from None
            elif text.startswith("\\"):
                if order and seen != counts.get(order):
                    raise ValueError(f"{where}: {seen} {order}-grams, the header says {counts.get(order)}")
                if text == "\\end\\":
                    if order != len(counts):
                        raise ValueError(f"{where}: \\end\\ after the {order}-grams of {len(counts)} orders")
                    return
                if text != f"\\{order + 1}-grams:" or order + 1 not in counts:
                    raise ValueError(f"{where}: expected \\{order + 1}-grams: (header orders {sorted(counts)})")
                order, seen = order + 1, 0
            elif order == 0:
                raise ValueError(f"{where}: expected 'ngram K=COUNT' or \\1-grams:, found {text!r}")
            else:
                fields = text.split()
                if len(fields) not in (order + 1, order + 2):
                    raise ValueError(f"{where}: expected 'log10p w1 .. w{order} [log10bow]', found {text!r}")
                try:
                    log10p = float(fields[0])
                    log10bow = float(fields[order + 1]) if len(fields) == order + 2 else None
                except ValueError:
                    raise ValueError(f"{where}: expected numbers around the {order}-gram, found {text!r}") from None
                seen += 1
                yield tuple(fields[1 : order + 1]), log10p, log10bow
    raise ValueError(f"{path}: ends without \\end\\")


@dataclass
class Arpa:
    """An ARPA file in memory: ``words`` in the order of the unigram section (index = word id) and
    ``ngrams[k - 1]``: k-gram (word ids) -> (log10 probability, log10 backoff or None)."""

    words: list[str] = field(default_factory=list)
    ngrams: list[dict[tuple[int, ...], tuple[float, float | None]]] = field(default_factory=list)

    @property
    def order(self) -> int:
        return len(self.ngrams)

    def entries(self) -> list[list[Entry]]:
        """Per order, the entries in the order read (for :func:`write_arpa`)."""
        return [[(ids, lp, bow) for ids, (lp, bow) in grams.items()] for grams in self.ngrams]


def read_arpa(path: str | os.PathLike) -> Arpa:
    """The whole ARPA file as an :class:`Arpa`."""
    arpa = Arpa()
    index: dict[str, int] = {}
    for words, log10p, log10bow in iter_arpa(path):
        k = len(words)
        if k > len(arpa.ngrams):
            arpa.ngrams.append({})
        if k == 1:
            index[words[0]] = len(arpa.words)
            arpa.words.append(words[0])
        ids = word_ids(words, index, path)
        arpa.ngrams[k - 1][ids] = (log10p, log10bow)
    return arpa


def word_ids(words: Iterable[str], index: dict[str, int], path) -> tuple[int, ...]:
    """The ids of ``words``; a word absent from the unigrams is an error naming ``path``."""
    try:
        return tuple(index[w] for w in words)
    except KeyError as e:
        raise ValueError(f"{path}: the n-gram {' '.join(words)!r} has a word without a unigram: {e}") from None
