"""``result.txt`` in the layout of ``sclite -o all stdout`` (what ESPnet's stage 13 writes),
and the reading of its ``| Sum/Avg|`` row (from our file or sclite's).

Sections: "SYSTEM SUMMARY PERCENTAGES by SPEAKER" (a ``| SPKR |`` header, a row per
speaker, a ``| Sum/Avg|`` row), "SYSTEM SUMMARY COUNTS by SPEAKER" (a ``| Sum |`` row),
then the "DUMP OF SYSTEM ALIGNMENT STRUCTURE": per utterance its counts and REF/HYP/Eval
lines (``*`` for gaps, errors upper-cased). ``grep -e Avg -e SPKR -m 2 result.txt`` gives
the header and the total line, as with sclite. Laid out like sclite's, not byte for byte.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
import string
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from espnet_ext.core.atomic import write_text
from espnet_ext.scoring.alignment import aligned_pairs
from espnet_ext.scoring.counts import Counts
from espnet_ext.scoring.scorer import Score, UttScore
from espnet_ext.scoring.textio import read_lines

_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


class Summary(NamedTuple):
    """The ``Sum/Avg`` row of a ``result.txt``: counts of sentences and words, percentages."""

    sentences: int
    words: int
    correct: float
    substitutions: float
    deletions: float
    insertions: float
    errors: float
    sentence_errors: float


def _round1(value: float) -> str:
    """``value`` printed with one decimal, rounded half up like sclite."""
    return "%.1f" % (math.floor(value * 10 + 0.5) / 10)


Row = tuple[str, list[str]]  # a table row: its label and its 8 cells (Snt, Wrd, Corr ... S.Err)
_HEADS = ["# Snt", "# Wrd", "Corr", "Sub", "Del", "Ins", "Err", "S.Err"]


def _stat_rows(values: Sequence[Sequence[float]]) -> list[Row]:
    """Mean, S.D. (sample, 0 for one speaker) and Median rows over speakers, per column."""
    if not values:
        return []
    columns = list(zip(*values))
    sd = [statistics.stdev(c) if len(c) > 1 else 0.0 for c in columns]
    return [
        ("Mean", [_round1(statistics.fmean(c)) for c in columns]),
        ("S.D.", [_round1(x) for x in sd]),
        ("Median", [_round1(statistics.median(c)) for c in columns]),
    ]


def _render_table(title: str, rows: Sequence[Row], total: Row, stats: Sequence[Row]) -> list[str]:
    """An sclite-style box, centred in 80 columns: a title, the ``| SPKR |`` header, the
    speaker rows, the total row between ``=`` rules, then the statistic rows."""
    all_rows = [*rows, total, *stats]
    label_width = max(7, *(len(label) for label, _ in all_rows))
    widths = [max(5, *(len(cells[k]) for _, cells in all_rows)) for k in range(len(_HEADS))]

    def line(label: str, cells: Sequence[str], centre: bool = False) -> str:
        label = label.center(label_width) if centre else label.ljust(label_width)
        counts = " ".join(c.rjust(w) for c, w in zip(cells[:2], widths[:2]))
        errors = "  ".join(c.rjust(w) for c, w in zip(cells[2:], widths[2:]))
        return f"| {label} | {counts} | {errors} |"

    header = line("SPKR", _HEADS)
    inner = len(header) - 2
    rule = "|" + "+".join("-" * len(part) for part in header[1:-1].split("|")) + "|"
    double = "|" + "=" * inner + "|"
    out = ["," + "-" * inner + ".", "|" + title.center(inner) + "|", "|" + "-" * inner + "|", header]
    for label, cells in rows:
        out += [rule, line(label, cells)]
    out += [double, line(*total), double]
    out += [line(label, cells, centre=True) for label, cells in stats]
    out.append("`" + "-" * inner + "'")
    indent = " " * max(0, (80 - inner - 2) // 2)
    return [indent + x for x in out]


def _percent_cells(c: Counts, total_row: bool = False) -> list[str]:
    """Cells of the percentage table; a speaker without reference words shows its counts,
    marked ``*``, as sclite does (the total row shows 0.0 then, as sclite's does)."""
    head = [str(c.sentences), str(c.words)]
    if c.words == 0 and not total_row:
        raw = [c.correct, c.substitutions, c.deletions, c.insertions, c.errors]
        return head + [f"{x}*" for x in raw] + [f"{c.percentages().sentence_errors:.1f}"]
    return head + [f"{p:.1f}" for p in c.percentages()]


def _count_cells(c: Counts) -> list[str]:
    """Cells of the count table."""
    fields = [c.sentences, c.words, c.correct, c.substitutions, c.deletions, c.insertions, c.errors]
    return [str(x) for x in fields + [c.sentence_errors]]


def _percent_table(speakers: Sequence[tuple[str, Counts]], total: Counts, title: str) -> list[str]:
    """ "SYSTEM SUMMARY PERCENTAGES by SPEAKER", with the ``| Sum/Avg|`` row."""
    with_words = [c for _, c in speakers if c.words > 0]
    stats = _stat_rows(
        [
            [
                c.sentences,
                c.words,
                *(100.0 * x / c.words for x in (*c[2:6], c.errors)),
                100.0 * c.sentence_errors / c.sentences,
            ]
            for c in with_words
        ]
    )
    rows = [(spk, _percent_cells(c)) for spk, c in speakers]
    out = ["", "SYSTEM SUMMARY PERCENTAGES by SPEAKER".center(80).rstrip(), ""]
    out += _render_table(title, rows, ("Sum/Avg", _percent_cells(total, total_row=True)), stats)
    if len(with_words) < len(speakers):
        out += ["", "* No reference words for this/these speaker(s): counts instead of percentages."]
    return out


def _count_table(speakers: Sequence[tuple[str, Counts]], total: Counts, title: str) -> list[str]:
    """ "SYSTEM SUMMARY COUNTS by SPEAKER", with a ``| Sum |`` row (no "Avg" in it, so that
    ``grep -e Avg`` still finds one line per file)."""
    stats = _stat_rows([[*c[:6], c.errors, c.sentence_errors] for _, c in speakers])
    rows = [(spk, _count_cells(c)) for spk, c in speakers]
    out = ["", "SYSTEM SUMMARY COUNTS by SPEAKER".center(80).rstrip(), ""]
    return out + _render_table(title, rows, ("Sum", _count_cells(total)), stats)


@functools.lru_cache(maxsize=1 << 16)
def _shown(token: str | None, table: str | None, width: int = 0) -> tuple[str, int]:
    """A token as printed in an alignment (``table``: "lower", "upper" or None) and its
    display width (East Asian wide characters count 2); ``None`` is a gap of ``width``."""
    if token is None:
        return "*" * width, width
    if table is not None:
        token = token.translate(_ASCII_LOWER if table == "lower" else _ASCII_UPPER)
    if token.isascii():
        return token, len(token)
    return token, sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in token)


def alignment_lines(utt: UttScore, case_sensitive: bool = False) -> list[str]:
    """``REF:``/``HYP:``/``Eval:`` lines of one utterance, like sclite's ``pralign``: errors
    upper-cased and correct tokens lower-cased (ASCII letters, unless case-sensitive),
    ``*`` filling a gap, one column per alignment step; none for an empty pair."""
    if not utt.ops:
        return []
    ref_line, hyp_line, eval_line = ["REF: "], ["HYP: "], ["Eval:"]
    for r, h, op in aligned_pairs(utt.ref, utt.hyp, utt.ops):
        table = None if case_sensitive else ("lower" if op == "C" else "upper")
        (r, r_width), (h, h_width) = _shown(r, table), _shown(h, table)
        width = max(r_width, h_width)
        if op == "I":
            r, r_width = _shown(None, None, width)
        elif op == "D":
            h, h_width = _shown(None, None, width)
        ref_line.append(r + " " * (width - r_width))
        hyp_line.append(h + " " * (width - h_width))
        eval_line.append(" " * width if op == "C" else op.ljust(width))
    return [" ".join(parts) + " " for parts in (ref_line, hyp_line, eval_line)]


def _alignment_dump(score: Score, title: str) -> list[str]:
    """sclite's "DUMP OF SYSTEM ALIGNMENT STRUCTURE": utterances grouped by speaker."""
    groups: dict[str, list[UttScore]] = {}
    for utt in score.utterances:
        groups.setdefault(utt.speaker, []).append(utt)
    out = ["", "\t\tDUMP OF SYSTEM ALIGNMENT STRUCTURE", "", f"System name:   {title}", "", "Speakers: "]
    out += [f"{k:5d}:  {spk}" for k, spk in enumerate(groups)]
    out.append("")
    for k, (spk, utts) in enumerate(groups.items()):
        out.append(f"Speaker sentences {k:3d}:  {spk}   #utts: {len(utts)}")
        for utt in utts:
            c = utt.counts
            out.append(f"id: ({utt.utt_id})")
            out.append(f"Scores: (#C #S #D #I) {c.correct} {c.substitutions} {c.deletions} {c.insertions}")
            out += alignment_lines(utt, score.case_sensitive) + [""]
    return out


def format_result_txt(score: Score, title: str = "hyp") -> str:
    """The text of a ``result.txt`` (see the module docstring for its sections)."""
    speakers = score.speakers()
    parts = [
        _percent_table(speakers, score.total, title),
        [""],
        _count_table(speakers, score.total, title),
        [""],
        _alignment_dump(score, title),
    ]
    return "\n".join(["", *(line for part in parts for line in part), ""]) + "\n"


def write_result_txt(score: Score, path, title: str = "hyp") -> Path:
    """Write :func:`format_result_txt` to ``path`` (UTF-8); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, format_result_txt(score, title))
    return path


def read_summary(path) -> Summary:
    """Parse the ``| Sum/Avg|`` row of a ``result.txt`` written by sclite or by us."""
    for _, line in read_lines(path):
        if "Sum/Avg" in line:
            numbers = re.findall(r"\d+(?:\.\d+)?", line.split("Sum/Avg", 1)[1])
            if len(numbers) == 8:
                return Summary(int(numbers[0]), int(numbers[1]), *map(float, numbers[2:]))
            raise ValueError(f"{path}: expected 8 numbers in the Sum/Avg row, found {line.strip()!r}")
    raise ValueError(f"{path}: expected an sclite summary with a '| Sum/Avg|' row, found none")
