"""Is the difference between two systems' error rates on the same utterances real?

Two paired tests over the utterances of one test set (or of several, pooled):

- :func:`mapsswe`: NIST's matched-pairs sentence-segment word error test, with the semantics
  of SCTK's ``sc_stats -t mapsswe``. Each utterance's two alignments are walked together
  along the reference; a segment is a stretch holding errors of either system, bounded by
  ``min_good`` (2) consecutive reference words that both systems got right (or by the
  utterance's ends), the bounding words included. Per segment the statistic takes the
  difference of the two systems' error counts (substitutions, deletions, insertions); segments
  where neither system errs are dropped. Over the ``n`` segments: the mean difference, its
  sample standard deviation (``n - 1``), ``Z = mean / (sd / sqrt(n))`` and the two-sided
  normal p-value. Like SCTK, ``Z`` is 0 (p = 1) when the differences do not vary (one
  segment, or every segment differing by the same count); for that case ``reported_p`` (what
  the tables show) is the exact sign test over the segments, all of one sign, instead.
  ``p_value`` is the exact normal tail; ``sctk_p_value`` is what ``sc_stats -u`` prints,
  which takes ``Z`` down to a multiple of 0.01 before its table look-up (a slightly
  larger, conservative p).
- :func:`paired_bootstrap`: the paired bootstrap of Bisani and Ney (ICASSP 2004). Utterances
  are resampled with replacement, the same draw for both systems; in each resample a
  system's error rate is its errors summed over the drawn utterances over their reference
  tokens summed. Reports the observed difference ``rate_b - rate_a`` (points), the
  percentile interval of that difference (95 % by default) and the fraction of resamples in
  which each system is better. Seeded: the same inputs and seed give the same numbers.

Inputs come from a score dir of stage 13 (``<decode>/<test_set>/score_<metric>/``):
:func:`read_score_dir` reads its ``result.txt`` (sclite's report or this project's, the
same layout), whose alignment dump holds per utterance the counts (``Scores:``) and the
alignment (``REF:``/``HYP:``/``Eval:``). :func:`paired` lines two score dirs up and raises
ValueError naming both when their utterances or references differ.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from espnet_ext.scoring.textio import read_lines
from espnet_ext.scoring.tokens import speaker_of

RESULT_TXT = "result.txt"
MIN_GOOD = 2  # sc_stats' boundary: this many words both systems got right close a segment
_SCTK_Z_MAX = 5.14  # the largest Z in sc_stats' normal table; beyond it the table's last value


# --------------------------------------------------------------------------- inputs
class UttAlignment(NamedTuple):
    """One utterance of one system: its alignment with the reference and its counts.

    ``ops``: one letter per alignment column, ``C`` correct, ``S`` substitution, ``D``
    deletion, ``I`` insertion; ``ref``: the reference tokens as the report shows them,
    case-folded (to check that two systems were scored against the same reference)."""

    ref: tuple[str, ...]
    ops: str

    @property
    def ref_words(self) -> int:
        """Reference tokens (the columns that are not insertions)."""
        return len(self.ops) - self.ops.count("I")

    @property
    def errors(self) -> int:
        """Substitutions + deletions + insertions."""
        return len(self.ops) - self.ops.count("C")


class ScoredSet(NamedTuple):
    """The utterances of one score dir, by utterance id, in the report's order."""

    path: Path
    utterances: dict[str, UttAlignment]

    @property
    def ref_words(self) -> int:
        return sum(u.ref_words for u in self.utterances.values())

    @property
    def errors(self) -> int:
        return sum(u.errors for u in self.utterances.values())


_ID = re.compile(r"id: \((.*)\)\s*$")
_SCORES = re.compile(r"Scores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)\s*$")
_TRN_ID = re.compile(r"\(([^()]*)\)\s*$")


def _dump_entries(path: Path) -> Iterator[tuple[int, str, tuple[int, ...], dict[str, list[str]]]]:
    """``(line, id, (C, S, D, I), {"REF": tokens, "HYP": tokens, "Eval": tokens})`` per
    utterance of a report's alignment dump."""
    entry = None
    for lineno, line in read_lines(path):
        m = _ID.match(line)
        if m:
            if entry is not None:
                yield entry
            entry = (lineno, m.group(1), None, {})
            continue
        if entry is None:
            continue
        m = _SCORES.match(line)
        if m and entry[2] is None:
            entry = (entry[0], entry[1], tuple(map(int, m.groups())), entry[3])
            continue
        for tag in ("REF", "HYP", "Eval"):
            if line.startswith(tag + ":") and tag not in entry[3]:
                entry[3][tag] = line[len(tag) + 1 :].split()
    if entry is not None:
        yield entry


def _ops(path: Path, lineno: int, counts: tuple[int, ...], lines: dict[str, list[str]]) -> UttAlignment:
    """An utterance's alignment from its REF/HYP/Eval lines: a column whose two tokens are
    shown alike is correct (correct tokens print identically, errors differently), else it
    takes the next letter of the Eval line. Checked against the ``Scores:`` counts."""
    ref, hyp, evals = lines.get("REF", []), lines.get("HYP", []), iter(lines.get("Eval", []))
    where = f"{path}:{lineno}"
    if len(ref) != len(hyp):
        raise ValueError(f"{where}: expected as many REF as HYP columns, found {len(ref)} and {len(hyp)}")
    if ref == hyp:
        ops = "C" * len(ref)
    else:
        ops = "".join(["C" if r == h else next(evals, "?") for r, h in zip(ref, hyp)])
    found = tuple(ops.count(op) for op in "CSDI")
    if len(ops) != sum(found) or found != counts:
        raise ValueError(
            f"{where}: expected the alignment to give the Scores line's (C, S, D, I) {counts}, "
            f"found {found} (ops {ops!r})"
        )
    kept = ref if counts[3] == 0 else [r for r, op in zip(ref, ops) if op != "I"]
    return UttAlignment(tuple(" ".join(kept).casefold().split(" ")) if kept else (), ops)


def _trn_ids(score_dir: Path) -> dict[str, str]:
    """sclite's report names an utterance by its lower-cased trn id ``<speaker>-<uttid>``
    (``ref.trn``); lower-cased id -> utterance id, for the ids of ``ref.trn``."""
    trn = score_dir / "ref.trn"
    if not trn.is_file():
        return {}
    out = {}
    for _, line in read_lines(trn):
        m = _TRN_ID.search(line)
        if m:
            out[m.group(1).lower()] = _strip_speaker(m.group(1))
    return out


def _strip_speaker(trn_id: str) -> str:
    """The utterance id of a trn id ``<speaker>-<uttid>`` whose speaker is the id's own prefix
    (stage 13 scores without utt2spk); the trn id itself when no split fits."""
    for k, ch in enumerate(trn_id):
        if ch == "-" and trn_id[:k] == speaker_of(trn_id[k + 1 :]):
            return trn_id[k + 1 :]
    return trn_id


def read_score_dir(score_dir) -> ScoredSet:
    """The per-utterance alignments in ``score_dir/result.txt`` (see the module docstring).

    Utterances are keyed by their ids (sclite's ``<speaker>-<uttid>`` mapped back through
    ``ref.trn``). ValueError naming the file when it is missing, has no alignment dump, or an
    utterance's alignment disagrees with its counts."""
    score_dir = Path(score_dir)
    path = score_dir / RESULT_TXT
    if not path.is_file():
        raise ValueError(f"{score_dir}: expected {RESULT_TXT} (stage 13's scoring), found none")
    entries = list(_dump_entries(path))
    if not entries:
        raise ValueError(
            f"{path}: expected per-utterance alignments ('id:' and 'Scores:' lines of sclite's "
            "-o all report), found none"
        )
    trn = _trn_ids(score_dir)
    from_sclite = bool(trn) and all(e[1] in trn for e in entries)
    utterances: dict[str, UttAlignment] = {}
    for lineno, utt, counts, lines in entries:
        if counts is None:
            raise ValueError(f"{path}:{lineno}: expected a 'Scores: (#C #S #D #I)' line after 'id: ({utt})'")
        key = trn[utt] if from_sclite else utt
        if key in utterances:
            raise ValueError(f"{path}:{lineno}: utterance {key!r} appears twice")
        utterances[key] = _ops(path, lineno, counts, lines)
    return ScoredSet(score_dir, utterances)


def paired(a: ScoredSet, b: ScoredSet) -> tuple[list[UttAlignment], list[UttAlignment]]:
    """Both sets' utterances in ``a``'s order. ValueError naming both dirs unless they hold the
    same utterance ids with the same reference tokens."""
    only_a = [u for u in a.utterances if u not in b.utterances]
    only_b = [u for u in b.utterances if u not in a.utterances]
    if only_a or only_b:
        raise ValueError(
            f"{a.path} and {b.path}: expected the same utterances, found {len(only_a)} only in the first "
            f"({', '.join(only_a[:3])}) and {len(only_b)} only in the second ({', '.join(only_b[:3])})"
        )
    differ = [u for u in a.utterances if a.utterances[u].ref != b.utterances[u].ref]
    if differ:
        raise ValueError(
            f"{a.path} and {b.path}: expected the same references, found {len(differ)} utterances "
            f"whose reference tokens differ ({', '.join(differ[:3])})"
        )
    keys = list(a.utterances)
    return [a.utterances[k] for k in keys], [b.utterances[k] for k in keys]


def paired_sets(pairs: Sequence[tuple[ScoredSet, ScoredSet]]) -> tuple[list[UttAlignment], list[UttAlignment]]:
    """:func:`paired` over several test sets, pooled (each pair one test set of both systems)."""
    out_a: list[UttAlignment] = []
    out_b: list[UttAlignment] = []
    for a, b in pairs:
        ua, ub = paired(a, b)
        out_a += ua
        out_b += ub
    return out_a, out_b


# --------------------------------------------------------------------------- MAPSSWE
class Segment(NamedTuple):
    """A segment of one utterance: its reference words and each system's errors in it."""

    ref_words: int
    errors_a: int
    errors_b: int


def _count(ops: str, start: int, end: int) -> tuple[int, int]:
    """(errors, reference words) in columns ``start..end`` (inclusive) of an alignment."""
    span = ops[max(start, 0) : end + 1]
    return len(span) - span.count("C"), len(span) - span.count("I")


def segments(ops_a: str, ops_b: str, min_good: int = MIN_GOOD) -> list[Segment]:
    """The MAPSSWE segments of one utterance aligned by two systems (see the module docstring).

    The walk visits the reference words in step; insertions before a word, or a word either
    system got wrong, open (or prolong) an error region; ``min_good`` consecutive words that
    both got right close it. A segment runs from ``min_good - 1`` words before the last word
    both got right ahead of the region (the utterance's start at most) to the closing word,
    or to the utterance's end; its reference words are the mean of the two columns' counts
    (integer division, as sc_stats does)."""
    if min_good < 1:
        raise ValueError(f"min_good: expected a positive number of words, found {min_good}")
    n_a, n_b = len(ops_a), len(ops_b)
    if ops_a.count("C") == n_a and ops_b.count("C") == n_b:
        return []  # both right throughout (the common case at a low error rate): nothing to walk
    i = j = last_a = last_b = 0
    state, good = "clean", 0
    found: list[Segment] = []

    def close(end_a: int, end_b: int) -> None:
        err_a, ref_a = _count(ops_a, last_a - (min_good - 1), end_a)
        err_b, ref_b = _count(ops_b, last_b - (min_good - 1), end_b)
        if err_a or err_b:
            found.append(Segment((ref_a + ref_b) // 2, err_a, err_b))

    while i < n_a:
        while i < n_a and ops_a[i] == "I":
            i, state = i + 1, "error"
        while j < n_b and ops_b[j] == "I":
            j, state = j + 1, "error"
        both_right = i < n_a and j < n_b and ops_a[i] == "C" and ops_b[j] == "C"
        if state == "clean":
            if both_right:
                last_a, last_b = i, j
            else:
                state = "error"
        elif both_right:
            good = 1 if state == "error" else good + 1
            if good == min_good:
                close(i, j)
                last_a, last_b, state = i, j, "clean"
            else:
                state = "good"
        else:
            state = "error"
        i, j = min(i + 1, n_a), min(j + 1, n_b)
    if state != "clean" or j < n_b:
        close(n_a - 1, n_b - 1)
    return found


class Mapsswe(NamedTuple):
    """The MAPSSWE test of system a against system b (differences are a's errors minus b's)."""

    segments: int
    ref_words: int  # reference words in the segments
    errors_a: int  # errors in the segments
    errors_b: int
    mean: float  # mean per-segment difference of errors, a - b
    std_dev: float  # its sample standard deviation
    z: float
    p_value: float  # two-sided, exact normal tail
    sctk_p_value: float  # two-sided, as sc_stats' table look-up gives it

    @property
    def rate_a(self) -> float:
        """a's errors in the segments over their reference words, % (sc_stats' "% Error")."""
        return 100.0 * self.errors_a / self.ref_words if self.ref_words else 0.0

    @property
    def rate_b(self) -> float:
        return 100.0 * self.errors_b / self.ref_words if self.ref_words else 0.0

    @property
    def no_variance(self) -> bool:
        """Every segment differs by the same non-zero count: MAPSSWE has no variance to test
        (sc_stats then reports Z = 0, p = 1, whatever the number of segments)."""
        return self.segments > 0 and self.std_dev == 0.0 and self.mean != 0.0

    @property
    def sign_test_p(self) -> float:
        """Where the differences do not vary (:attr:`no_variance`), the exact two-sided sign test
        over the segments, all of one sign: ``2 * 0.5 ** segments`` (at most 1)."""
        return min(1.0, 2.0 * 0.5**self.segments)

    @property
    def reported_p(self) -> float:
        """:attr:`p_value`, or :attr:`sign_test_p` where the differences do not vary."""
        return self.sign_test_p if self.no_variance else self.p_value

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether the two systems differ at level ``alpha`` (two-sided) by :attr:`reported_p`."""
        return self.reported_p < alpha


def normal_cdf(z: float) -> float:
    """The standard normal distribution function."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def sctk_p_value(z: float) -> float:
    """The two-sided p-value sc_stats reports for ``z``: its table holds the normal
    distribution at multiples of 0.01 up to 5.14 and takes the entry at or below ``|z|``."""
    on_grid = min(math.floor(abs(z) * 100 + 1e-9) / 100, _SCTK_Z_MAX)
    return 2.0 * (1.0 - normal_cdf(on_grid))


def mapsswe(ops_a: Sequence[str], ops_b: Sequence[str], min_good: int = MIN_GOOD) -> Mapsswe:
    """MAPSSWE over utterances: ``ops_a[k]`` and ``ops_b[k]`` align utterance ``k`` (the same
    reference) by systems a and b (strings over ``C S D I``). See the module docstring."""
    if len(ops_a) != len(ops_b):
        raise ValueError(f"expected both systems to align the same utterances, found {len(ops_a)} and {len(ops_b)}")
    found: list[Segment] = []
    for k, (a, b) in enumerate(zip(ops_a, ops_b)):
        ref_a, ref_b = len(a) - a.count("I"), len(b) - b.count("I")
        if ref_a != ref_b:
            raise ValueError(
                f"utterance {k}: expected alignments of the same reference, found {ref_a} and {ref_b} reference words"
            )
        found += segments(a, b, min_good)
    diffs = [s.errors_a - s.errors_b for s in found]
    n = len(diffs)
    mean = math.fsum(diffs) / n if n else 0.0  # exact sums: the same figures in any utterance order
    spread = math.fsum((d - mean) ** 2 for d in diffs)
    std_dev = math.sqrt(spread / (n - 1)) if n > 1 and spread != 0.0 else 0.0
    z = mean / (std_dev / math.sqrt(n)) if std_dev else 0.0
    return Mapsswe(
        n,
        sum(s.ref_words for s in found),
        sum(s.errors_a for s in found),
        sum(s.errors_b for s in found),
        mean,
        std_dev,
        z,
        2.0 * (1.0 - normal_cdf(abs(z))) if z else 1.0,
        sctk_p_value(z),
    )


def mapsswe_utterances(a: Sequence[UttAlignment], b: Sequence[UttAlignment], min_good: int = MIN_GOOD) -> Mapsswe:
    """:func:`mapsswe` of paired utterances (:func:`paired`, :func:`paired_sets`)."""
    return mapsswe([u.ops for u in a], [u.ops for u in b], min_good)


# --------------------------------------------------------------------------- bootstrap
class Bootstrap(NamedTuple):
    """The paired bootstrap of system a against system b (differences are b's rate minus a's)."""

    rate_a: float  # observed error rate, %
    rate_b: float
    difference: float  # rate_b - rate_a, points
    low: float  # percentile interval of the difference at ``level``
    high: float
    b_better: float  # fraction of resamples where b's rate is below a's
    a_better: float  # fraction where a's is below b's
    resamples: int
    level: float
    seed: int

    def excludes_zero(self) -> bool:
        """Whether the interval lies wholly on one side of 0 (a real difference at ``level``)."""
        return self.low > 0.0 or self.high < 0.0


def _rates(errors: np.ndarray, words: np.ndarray) -> np.ndarray:
    """100 x errors / words, 0 where there are no words."""
    return np.divide(100.0 * errors, words, out=np.zeros(errors.shape), where=words > 0)


def paired_bootstrap(
    words_a: Sequence[int],
    errors_a: Sequence[int],
    errors_b: Sequence[int],
    words_b: Sequence[int] | None = None,
    resamples: int = 10000,
    level: float = 0.95,
    seed: int = 0,
) -> Bootstrap:
    """The paired bootstrap over utterances ``k``: ``words_a[k]`` reference tokens (the same
    for b unless ``words_b`` is given), ``errors_a[k]`` and ``errors_b[k]`` errors. Draws are
    made in blocks of at most ~4 M utterance indices from ``numpy.random.default_rng(seed)``."""
    ea, eb = np.asarray(errors_a, dtype=np.int64), np.asarray(errors_b, dtype=np.int64)
    wa = np.asarray(words_a, dtype=np.int64)
    wb = wa if words_b is None else np.asarray(words_b, dtype=np.int64)
    n = len(ea)
    if n == 0 or not (len(eb) == len(wa) == len(wb) == n):
        raise ValueError(
            f"expected counts of the same utterances, at least one, found {len(wa)} reference "
            f"lengths and {n} and {len(eb)} error counts"
        )
    if resamples < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"expected resamples >= 1 and 0 < level < 1, found {resamples} and {level}")
    rng = np.random.default_rng(seed)
    block = max(1, (1 << 22) // n)
    deltas = []
    for start in range(0, resamples, block):
        idx = rng.integers(0, n, size=(min(block, resamples - start), n))
        deltas.append(_rates(eb[idx].sum(1), wb[idx].sum(1)) - _rates(ea[idx].sum(1), wa[idx].sum(1)))
    delta = np.concatenate(deltas)
    low, high = np.quantile(delta, [(1.0 - level) / 2, (1.0 + level) / 2])
    rate_a = float(_rates(ea.sum(keepdims=True), wa.sum(keepdims=True))[0])
    rate_b = float(_rates(eb.sum(keepdims=True), wb.sum(keepdims=True))[0])
    return Bootstrap(
        rate_a,
        rate_b,
        rate_b - rate_a,
        float(low),
        float(high),
        float((delta < 0).mean()),
        float((delta > 0).mean()),
        resamples,
        level,
        seed,
    )


def bootstrap_utterances(a: Sequence[UttAlignment], b: Sequence[UttAlignment], **options) -> Bootstrap:
    """:func:`paired_bootstrap` of paired utterances (:func:`paired`, :func:`paired_sets`)."""
    return paired_bootstrap(
        [u.ref_words for u in a], [u.errors for u in a], [u.errors for u in b], [u.ref_words for u in b], **options
    )
