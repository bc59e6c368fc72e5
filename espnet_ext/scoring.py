"""Scoring of ASR output (CER, WER, PER) with exactly sclite's counts.

What it reads: Kaldi-style text files (``<uttid> <text...>``, UTF-8), optionally a
non-linguistic-symbol list (one symbol a line) and an ``utt2spk``.
What it writes, for one scoring directory (e.g. ``exp/<tag>/<decode>/test/score_cer/``):

``result.txt``
    The layout of ``sclite -o all stdout`` (what ESPnet's stage 13 writes): the
    "SYSTEM SUMMARY PERCENTAGES by SPEAKER" table with its ``| SPKR |`` header and
    ``| Sum/Avg|`` row, a table of raw counts with a ``| Sum |`` row, then the
    "DUMP OF SYSTEM ALIGNMENT STRUCTURE": per utterance its counts and REF/HYP/Eval lines
    (``*`` for gaps, errors upper-cased). ``grep -e Avg -e SPKR -m 2 result.txt`` gives
    the header and the total line, as with sclite. Written by sclite itself when it is
    used (:func:`run_sclite`), by :func:`write_result_txt` otherwise; the tables are
    laid out like sclite's, not byte for byte.
``ref.trn``, ``hyp.trn``
    sclite's input (``tokens (spk-uttid)``), only when sclite runs.

Speakers (the per-speaker rows) come from an ``utt2spk`` or else, as sclite's ``-i rm``
reads trn ids, from the utterance id's prefix before its first ``-`` or ``_``.
:func:`collect_results` turns every ``<decode>/<test_set>/score_{cer,wer,per}/result.txt``
below an experiment dir into the Markdown tables of a ``RESULTS.md``.

Tokenization (:func:`tokenize`), per unit:

- ``char`` (CER): every character is a token and the whitespace between two words becomes
  one ``<space>`` token, as in ESPnet's CER; runs of whitespace collapse to one ``<space>``
  and leading/trailing whitespace gives none.
- ``word`` (WER) and ``phn`` (PER): whitespace-separated tokens.

Non-linguistic symbols (``nlsyms``, e.g. ``<noise>``) and ``remove_tokens`` are removed: for
``char`` wherever they occur in the text, before it is split into characters (so a symbol is
never split; ``<space>`` in ``remove_tokens`` drops the word-boundary tokens), for ``word``
and ``phn`` where they are whole tokens (ESPnet's word tokenizer does the same).

Alignment (:func:`align_many`) reproduces sclite 2.10's default (``-d`` not given): a
Levenshtein alignment with insertion cost 3, deletion cost 3, substitution cost 4 and a
match cost 0; among alignments of minimal cost, the trace back from the ends of both
sequences prefers, at each step, the diagonal (match or substitution), then an insertion,
then a deletion. Tokens are compared with ASCII letters folded to lower case, as sclite does
unless ``-s`` is given (``case_sensitive=True``); other letters are compared as they are.
Percentages are rounded like sclite: ``floor(count / total * 100 * 10 + 0.5) / 10``, i.e.
half up (0.25 prints as 0.3, where ``"%.1f"`` alone would print 0.2).
These rules were learned by running sclite on crafted and random cases (20k random pairs:
identical counts and identical REF/HYP alignments); the tests compare totals and
per-utterance counts with sclite on a few hundred random pairs. The DP runs in numpy over
batches of utterances: 10k utterances of 100 tokens score in about 1.5 s.

Tokens that sclite's trn format gives a meaning to (``{ / }`` alternatives, ``@``, ``;;``)
are plain tokens here: where they occur, sclite's counts differ and the scoring CLI says so.
Nothing here imports torch or ESPnet.
"""

from __future__ import annotations

import datetime
import functools
import math
import os
import platform
import re
import shutil
import statistics
import string
import subprocess
import unicodedata
import warnings
from importlib import metadata
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import numpy as np

UNITS = ("char", "word", "phn")
METRICS = {"char": "CER", "word": "WER", "phn": "PER"}
SPACE = "<space>"

# sclite's default weights (see the module docstring).
COST_INS = 3
COST_DEL = 3
COST_SUB = 4

SCLITE_FALLBACK = "/usr/lib/sctk/bin/sclite"  # Debian's sctk package puts it here, off PATH.

_OP_C, _OP_S, _OP_D, _OP_I = (ord(c) for c in "CSDI")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
_MAX_CELLS = 1 << 23  # DP cells per batch: bounds the back-pointer array to 8 MiB


class Counts(NamedTuple):
    """Error counts of a set of utterances (one utterance: ``sentences == 1``)."""

    sentences: int = 0
    words: int = 0  # reference tokens
    correct: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    sentence_errors: int = 0

    @property
    def errors(self) -> int:
        """Substitutions + deletions + insertions."""
        return self.substitutions + self.deletions + self.insertions

    def plus(self, other: "Counts") -> "Counts":
        """The field-wise sum (``+`` would concatenate the tuples)."""
        return Counts(*(a + b for a, b in zip(self, other)))

    def percentages(self) -> "Percentages":
        """Percentages as sclite prints them (rounded half up to 0.1; 0.0 with no words)."""
        word_fields = (self.correct, self.substitutions, self.deletions, self.insertions, self.errors)
        return Percentages(
            *(sclite_percent(x, self.words) for x in word_fields),
            sclite_percent(self.sentence_errors, self.sentences),
        )


class Percentages(NamedTuple):
    """Percentages of the reference tokens (``sentence_errors``: of the sentences)."""

    correct: float
    substitutions: float
    deletions: float
    insertions: float
    errors: float
    sentence_errors: float


class UttScore(NamedTuple):
    """One utterance: its tokens, its alignment and its counts.

    ``ops`` has one letter per alignment column, in order: ``C`` correct, ``S`` substitution,
    ``D`` deletion (a reference token with no hypothesis token), ``I`` insertion.
    """

    utt_id: str
    speaker: str
    ref: Tuple[str, ...]
    hyp: Tuple[str, ...]
    ops: str
    counts: Counts


class Score(NamedTuple):
    """The result of :func:`score`: totals, utterances (in reference order), and the ids
    of reference utterances that had no hypothesis (scored as all deletions)."""

    unit: str
    total: Counts
    utterances: Tuple[UttScore, ...]
    missing: Tuple[str, ...] = ()
    case_sensitive: bool = False

    @property
    def metric(self) -> str:
        """``CER``, ``WER`` or ``PER``."""
        return METRICS[self.unit]

    def speakers(self) -> List[Tuple[str, Counts]]:
        """Per-speaker counts, speakers in order of first appearance."""
        by_speaker: Dict[str, Counts] = {}
        for utt in self.utterances:
            by_speaker[utt.speaker] = by_speaker.get(utt.speaker, Counts()).plus(utt.counts)
        return list(by_speaker.items())


class TokenPair(NamedTuple):
    """A tokenized reference and hypothesis of one utterance."""

    utt_id: str
    speaker: str
    ref: Tuple[str, ...]
    hyp: Tuple[str, ...]


class ScliteResult(NamedTuple):
    """What :func:`run_sclite` reads back from sclite: totals (the ``Sum`` row),
    per-utterance counts by our utterance id, and sclite's report (``-o all stdout``)."""

    total: Counts
    utterances: Dict[str, Counts]
    report: str


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


class ScliteMismatch(RuntimeError):
    """sclite's counts differ from :func:`score`'s."""


def sclite_percent(count: float, total: float) -> float:
    """``count / total`` in percent, rounded half up to one decimal like sclite; 0.0 if
    ``total`` is 0. Format the result with ``"%.1f"``."""
    if total == 0:
        return 0.0
    return math.floor(count / total * 100 * 10 + 0.5) / 10


def _round1(value: float) -> str:
    """``value`` printed with one decimal, rounded half up like sclite."""
    return "%.1f" % (math.floor(value * 10 + 0.5) / 10)


# --------------------------------------------------------------------------- reading files


def _read_lines(path) -> Iterator[Tuple[int, str]]:
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


def read_text(path) -> Dict[str, str]:
    """Read a Kaldi-style ``<uttid> <text...>`` file (an id alone means an empty text).

    Blank lines are skipped; a duplicate id or a non-UTF-8 line raises ValueError naming
    the file and line."""
    entries: Dict[str, str] = {}
    for lineno, line in _read_lines(path):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if parts[0] in entries:
            raise ValueError(f"{path}:{lineno}: duplicate utterance id {parts[0]!r}")
        entries[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return entries


def read_nlsyms(path) -> List[str]:
    """Read a non-linguistic symbol list: one symbol a line, blank lines skipped."""
    symbols = []
    for lineno, line in _read_lines(path):
        fields = line.split()
        if len(fields) > 1:
            raise ValueError(f"{path}:{lineno}: expected one symbol per line, found {line.strip()!r}")
        symbols.extend(fields)
    return symbols


def read_utt2spk(path) -> Dict[str, str]:
    """Read a Kaldi ``utt2spk`` (``<uttid> <speaker>``)."""
    utt2spk = read_text(path)
    for utt, spk in utt2spk.items():
        if len(spk.split()) != 1:
            raise ValueError(f"{path}: expected '<uttid> <speaker>' for {utt!r}, found speaker {spk!r}")
    return utt2spk


# --------------------------------------------------------------------------- tokenization


def _check_unit(unit: str) -> None:
    """ValueError unless ``unit`` is one of :data:`UNITS`."""
    if unit not in UNITS:
        raise ValueError(f"unit: expected one of {', '.join(UNITS)}, found {unit!r}")


def tokenize(
    text: str, unit: str, nlsyms: Iterable[str] = (), remove_tokens: Iterable[str] = ()
) -> List[str]:
    """Split ``text`` into scoring tokens of ``unit`` (see the module docstring).

    >>> tokenize("ab  c", "char")
    ['a', 'b', '<space>', 'c']
    >>> tokenize("你好<noise>世界", "char", nlsyms=["<noise>"])
    ['你', '好', '世', '界']
    """
    _check_unit(unit)
    drop = {*nlsyms, *remove_tokens}
    if unit != "char":
        return [t for t in text.split() if t not in drop]
    substrings = sorted((s for s in drop if s and s != SPACE), key=len, reverse=True)
    if substrings:
        text = re.sub("|".join(map(re.escape, substrings)), "", text)
    keep_space = SPACE not in drop
    tokens: List[str] = []
    for word in text.split():
        if tokens and keep_space:
            tokens.append(SPACE)
        tokens.extend(word)
    return tokens


def speaker_of(utt_id: str) -> str:
    """The speaker of an utterance id as sclite's ``-i rm`` reads it: the part before the
    first ``-`` or ``_`` (the whole id when there is none)."""
    prefix = re.split(r"[-_]", utt_id, maxsplit=1)[0]
    return prefix or utt_id


def _preview(ids: Sequence[str], limit: int = 10) -> str:
    """The first ``limit`` ids, comma-separated, and how many more there are."""
    shown = ", ".join(ids[:limit])
    return shown + (f" (and {len(ids) - limit} more)" if len(ids) > limit else "")


def prepare(
    refs: Mapping[str, str],
    hyps: Mapping[str, str],
    unit: str,
    *,
    nlsyms: Iterable[str] = (),
    remove_tokens: Iterable[str] = (),
    utt2spk: Optional[Mapping[str, str]] = None,
) -> Tuple[List[TokenPair], Tuple[str, ...]]:
    """Tokenize reference and hypothesis texts, in reference order.

    Returns the pairs and the ids of references without hypothesis (given an empty
    hypothesis, listed in a warning). A hypothesis without reference raises ValueError."""
    _check_unit(unit)
    extra = [u for u in hyps if u not in refs]
    if extra:
        raise ValueError(f"{len(extra)} hypotheses have no reference: {_preview(extra)}")
    missing = tuple(u for u in refs if u not in hyps)
    if missing:
        warnings.warn(
            f"{len(missing)} reference utterances have no hypothesis and count as deletions: "
            f"{_preview(missing)}",
            stacklevel=3,
        )
    if utt2spk is not None:
        no_spk = [u for u in refs if u not in utt2spk]
        if no_spk:
            raise ValueError(f"utt2spk: no speaker for {len(no_spk)} utterances: {_preview(no_spk)}")
    nlsyms, remove_tokens = tuple(nlsyms), tuple(remove_tokens)
    pairs = [
        TokenPair(
            utt,
            utt2spk[utt] if utt2spk is not None else speaker_of(utt),
            tuple(tokenize(text, unit, nlsyms, remove_tokens)),
            tuple(tokenize(hyps.get(utt, ""), unit, nlsyms, remove_tokens)),
        )
        for utt, text in refs.items()
    ]
    return pairs, missing


# --------------------------------------------------------------------------- folding, left out


def read_fold_map(path) -> Dict[str, Optional[str]]:
    """A token folding map from a file of rows ``<symbol> [<symbol> ...] <target>`` (e.g.
    TIMIT's ``phones.60-48-39.map``: 60-, 48- and 39-phone set): every symbol of a row, the
    target included, folds to the row's last column; a symbol alone on its row (TIMIT's
    ``q``) is deleted (``None``). ``#`` starts a comment line. A symbol folded to two
    different targets raises ValueError naming the line."""
    mapping: Dict[str, Optional[str]] = {}
    for lineno, line in _read_lines(path):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        target = fields[-1] if len(fields) > 1 else None
        for symbol in fields:
            if mapping.get(symbol, target) != target:
                raise ValueError(
                    f"{path}:{lineno}: {symbol!r} folds to {target!r} here but to {mapping[symbol]!r} before"
                )
            mapping[symbol] = target
    if not mapping:
        raise ValueError(f"{path}: expected rows '<symbol> ... <target>', found none")
    return mapping


def fold_texts(texts: Mapping[str, str], mapping: Mapping[str, Optional[str]]) -> Dict[str, str]:
    """Whitespace-separated tokens of each text folded with ``mapping`` (from
    :func:`read_fold_map`): a token mapped to None is dropped, a token the map lacks (e.g.
    ``<unk>``) is kept as it is."""
    return {
        utt: " ".join(t for t in (mapping.get(tok, tok) for tok in text.split()) if t is not None)
        for utt, text in texts.items()
    }


def left_out(source: Iterable[str], scored: Mapping[str, str], reason_files: Iterable = ()) -> Dict[str, str]:
    """The utterances of ``source`` (ids of a test set as prepared, ``data/<set>/text``)
    missing from ``scored`` (the references of what was decoded, ``dump/raw/<set>/text``),
    each with its reason from the first of ``reason_files`` (``uttid<TAB>reason``: stage 3's
    ``excluded.txt``, stage 4's ``removed.txt``; absent files are skipped) that lists it,
    else "not in the decoded set". A scored utterance missing from ``source`` raises ValueError."""
    source = list(source)
    known = set(source)
    unknown = [u for u in scored if u not in known]
    if unknown:
        raise ValueError(f"{len(unknown)} decoded utterances are not in the source set: {_preview(unknown)}")
    reasons: Dict[str, str] = {}
    for path in reason_files:
        if Path(path).is_file():
            for _, line in _read_lines(path):
                utt, _, reason = line.partition("\t")
                reasons.setdefault(utt.strip(), reason.strip() or "no reason given")
    return {u: reasons.get(u, "not in the decoded set") for u in source if u not in scored}


def write_left_out(items: Mapping[str, str], path) -> Path:
    """Write ``uttid<TAB>reason`` lines (possibly none) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{u}\t{r}\n" for u, r in items.items()), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- alignment


class _Vocab(dict):
    """Token -> integer id, tokens equal after ASCII case folding (unless case-sensitive)
    sharing an id; each distinct token is folded once."""

    def __init__(self, case_sensitive: bool):
        super().__init__()
        self.case_sensitive = case_sensitive
        self.folded: Dict[str, int] = {}

    def __missing__(self, token: str) -> int:
        key = token if self.case_sensitive else token.translate(_ASCII_LOWER)
        value = self[token] = self.folded.setdefault(key, len(self.folded))
        return value


def _encode(
    refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]], case_sensitive: bool
) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Map tokens to integer ids (see :class:`_Vocab`)."""
    vocab = _Vocab(case_sensitive)

    def ids(tokens: Sequence[str]) -> np.ndarray:
        return np.fromiter(map(vocab.__getitem__, tokens), np.int32, len(tokens))

    return [ids(r) for r in refs], [ids(h) for h in hyps]


def _batches(ref_lens: Sequence[int], hyp_lens: Sequence[int]) -> Iterator[List[int]]:
    """Group utterance indices, sorted by length, into batches of at most ``_MAX_CELLS``
    DP cells (an utterance larger than that is a batch of its own)."""
    order = sorted(range(len(ref_lens)), key=lambda k: (ref_lens[k], hyp_lens[k]))
    batch: List[int] = []
    max_n = max_m = 0
    for k in order:
        n, m = max(max_n, ref_lens[k]), max(max_m, hyp_lens[k])
        if batch and (len(batch) + 1) * (n + 1) * (m + 1) > _MAX_CELLS:
            yield batch
            batch, n, m = [], ref_lens[k], hyp_lens[k]
        batch.append(k)
        max_n, max_m = n, m
    if batch:
        yield batch


def _pad(arrays: Sequence[np.ndarray], fill: int) -> np.ndarray:
    """Stack 1-D int arrays into a (B, longest) array padded with ``fill``."""
    out = np.full((len(arrays), max((len(a) for a in arrays), default=0)), fill, np.int32)
    for row, a in zip(out, arrays):
        row[: len(a)] = a
    return out


def _backpointers(ref: np.ndarray, hyp: np.ndarray) -> np.ndarray:
    """Fill the DP for a padded batch, row by row, and return, per cell, the move the trace
    back takes there: ``_OP_C``/``_OP_S`` (diagonal), ``_OP_I`` (left) or ``_OP_D`` (up),
    preferring them in that order among moves on a minimal-cost path.

    ``ref``: (B, N) ids, ``hyp``: (B, M) ids, padded with values that never match (padding
    never changes cells inside an utterance's own (n + 1) x (m + 1) corner).
    Returns (B, N + 1, M + 1) uint8. All buffers are preallocated (``out=``): this loop is
    where the time goes.
    """
    batch, n_max = ref.shape
    m = hyp.shape[1]
    cols = np.arange(m + 1, dtype=np.int32) * np.int32(COST_INS)
    back = np.empty((batch, n_max + 1, m + 1), np.uint8)
    back[:, 0, :] = _OP_I
    back[:, 1:, 0] = _OP_D
    prev = np.broadcast_to(cols, (batch, m + 1)).copy()
    cur, best = np.empty_like(prev), np.empty_like(prev)
    diag, step = np.empty((batch, m), np.int32), np.empty((batch, m), np.int32)
    mismatch, on_diag, on_ins = (np.empty((batch, m), bool) for _ in range(3))
    diag_code = np.empty((batch, m), np.uint8)
    for i in range(1, n_max + 1):
        np.not_equal(ref[:, i - 1, None], hyp, out=mismatch)
        np.multiply(mismatch, np.int32(COST_SUB), out=diag)
        diag += prev[:, :-1]
        np.add(prev, np.int32(COST_DEL), out=best)
        np.minimum(best[:, 1:], diag, out=best[:, 1:])
        # Insertion chains: cur[j] = min(best[j], cur[j - 1] + COST_INS), as a running minimum.
        best -= cols
        np.minimum.accumulate(best, axis=1, out=cur)
        cur += cols
        np.equal(cur[:, 1:], diag, out=on_diag)
        np.subtract(cur[:, 1:], cur[:, :-1], out=step)
        np.equal(step, np.int32(COST_INS), out=on_ins)
        row = back[:, i, 1:]  # deletion, unless an insertion reaches the cell, unless the diagonal does
        np.multiply(on_ins, np.uint8(_OP_I - _OP_D), out=row)
        row += np.uint8(_OP_D)
        np.multiply(mismatch, np.uint8(_OP_S - _OP_C), out=diag_code)
        diag_code += np.uint8(_OP_C)
        np.copyto(row, diag_code, where=on_diag)
        prev, cur = cur, prev
    return back


def _trace(back: np.ndarray, ref_lens: np.ndarray, hyp_lens: np.ndarray) -> List[str]:
    """Follow the back-pointers of every utterance of a batch from (n, m) to (0, 0) at
    once; return each utterance's operations in forward order."""
    i, j = ref_lens.astype(np.int64), hyp_lens.astype(np.int64)
    rows = np.arange(len(i))
    steps = np.zeros((len(i), int((i + j).max(initial=0))), np.uint8)
    for t in range(steps.shape[1]):
        op = back[rows, i, j]
        op[(i == 0) & (j == 0)] = 0
        if not op.any():
            break
        steps[:, t] = op
        moving = op != 0
        i -= moving & (op != _OP_I)
        j -= moving & (op != _OP_D)
    lengths = np.count_nonzero(steps, axis=1)
    return [steps[b, : lengths[b]][::-1].tobytes().decode("ascii") for b in range(len(i))]


def align_many(
    refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]], case_sensitive: bool = False
) -> List[str]:
    """Align each reference token sequence with its hypothesis like sclite.

    Returns, per pair, its operations as a string over ``C S D I`` (see :class:`UttScore`).
    Utterances are batched by length and the DP runs row by row over a whole batch in
    numpy, so 10k utterances of 100 tokens take a second or so."""
    if len(refs) != len(hyps):
        raise ValueError(f"expected as many hypotheses as references, found {len(hyps)} and {len(refs)}")
    ref_ids, hyp_ids = _encode(refs, hyps, case_sensitive)
    ref_lens, hyp_lens = [len(r) for r in ref_ids], [len(h) for h in hyp_ids]
    ops = [""] * len(refs)
    for batch in _batches(ref_lens, hyp_lens):
        back = _backpointers(_pad([ref_ids[k] for k in batch], -1), _pad([hyp_ids[k] for k in batch], -2))
        traced = _trace(back, np.array([ref_lens[k] for k in batch]), np.array([hyp_lens[k] for k in batch]))
        for k, utt_ops in zip(batch, traced):
            ops[k] = utt_ops
    return ops


def align(ref: Sequence[str], hyp: Sequence[str], case_sensitive: bool = False) -> str:
    """:func:`align_many` for one pair."""
    return align_many([ref], [hyp], case_sensitive)[0]


def aligned_pairs(
    ref: Sequence[str], hyp: Sequence[str], ops: str
) -> List[Tuple[Optional[str], Optional[str], str]]:
    """The columns of an alignment: ``(ref token or None, hyp token or None, op)``."""
    columns, i, j = [], 0, 0
    for op in ops:
        r = ref[i] if op != "I" else None
        h = hyp[j] if op != "D" else None
        i, j = i + (op != "I"), j + (op != "D")
        columns.append((r, h, op))
    assert i == len(ref) and j == len(hyp), "alignment does not cover both sequences"
    return columns


def _utt_counts(n_ref: int, ops: str) -> Counts:
    """Counts of one utterance from its operations."""
    correct = ops.count("C")
    return Counts(
        1, n_ref, correct, ops.count("S"), ops.count("D"), ops.count("I"), int(correct != len(ops))
    )


def sum_counts(counts: Iterable[Counts]) -> Counts:
    """The field-wise sum of counts."""
    total = Counts()
    for c in counts:
        total = total.plus(c)
    return total


def score(
    refs: Mapping[str, str],
    hyps: Mapping[str, str],
    unit: str,
    *,
    nlsyms: Iterable[str] = (),
    remove_tokens: Iterable[str] = (),
    utt2spk: Optional[Mapping[str, str]] = None,
    case_sensitive: bool = False,
) -> Score:
    """Score hypothesis texts against reference texts (both ``{uttid: text}``).

    ``unit``: ``char`` (CER), ``word`` (WER) or ``phn`` (PER). A reference without
    hypothesis counts as all deletions and is named in a warning (and in ``Score.missing``);
    a hypothesis without reference raises ValueError. Speakers come from ``utt2spk`` or,
    without it, from the id's prefix (:func:`speaker_of`)."""
    pairs, missing = prepare(refs, hyps, unit, nlsyms=nlsyms, remove_tokens=remove_tokens, utt2spk=utt2spk)
    all_ops = align_many([p.ref for p in pairs], [p.hyp for p in pairs], case_sensitive)
    utterances = tuple(
        UttScore(p.utt_id, p.speaker, p.ref, p.hyp, ops, _utt_counts(len(p.ref), ops))
        for p, ops in zip(pairs, all_ops)
    )
    total = sum_counts(u.counts for u in utterances)
    return Score(unit, total, utterances, missing, case_sensitive)


# --------------------------------------------------------------------------- result.txt


Row = Tuple[str, List[str]]  # a table row: its label and its 8 cells (Snt, Wrd, Corr ... S.Err)
_HEADS = ["# Snt", "# Wrd", "Corr", "Sub", "Del", "Ins", "Err", "S.Err"]


def _stat_rows(values: Sequence[Sequence[float]]) -> List[Row]:
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


def _render_table(title: str, rows: Sequence[Row], total: Row, stats: Sequence[Row]) -> List[str]:
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


def _percent_cells(c: Counts, total_row: bool = False) -> List[str]:
    """Cells of the percentage table; a speaker without reference words shows its counts,
    marked ``*``, as sclite does (the total row shows 0.0 then, as sclite's does)."""
    head = [str(c.sentences), str(c.words)]
    if c.words == 0 and not total_row:
        raw = [c.correct, c.substitutions, c.deletions, c.insertions, c.errors]
        return head + [f"{x}*" for x in raw] + ["%.1f" % c.percentages().sentence_errors]
    return head + ["%.1f" % p for p in c.percentages()]


def _count_cells(c: Counts) -> List[str]:
    """Cells of the count table."""
    fields = [c.sentences, c.words, c.correct, c.substitutions, c.deletions, c.insertions, c.errors]
    return [str(x) for x in fields + [c.sentence_errors]]


def _percent_table(speakers: Sequence[Tuple[str, Counts]], total: Counts, title: str) -> List[str]:
    """"SYSTEM SUMMARY PERCENTAGES by SPEAKER", with the ``| Sum/Avg|`` row."""
    with_words = [c for _, c in speakers if c.words > 0]
    stats = _stat_rows(
        [[c.sentences, c.words, *(100.0 * x / c.words for x in (*c[2:6], c.errors)),
          100.0 * c.sentence_errors / c.sentences] for c in with_words]
    )
    rows = [(spk, _percent_cells(c)) for spk, c in speakers]
    out = ["", "SYSTEM SUMMARY PERCENTAGES by SPEAKER".center(80).rstrip(), ""]
    out += _render_table(title, rows, ("Sum/Avg", _percent_cells(total, total_row=True)), stats)
    if len(with_words) < len(speakers):
        out += ["", "* No reference words for this/these speaker(s): counts instead of percentages."]
    return out


def _count_table(speakers: Sequence[Tuple[str, Counts]], total: Counts, title: str) -> List[str]:
    """"SYSTEM SUMMARY COUNTS by SPEAKER", with a ``| Sum |`` row (no "Avg" in it, so that
    ``grep -e Avg`` still finds one line per file)."""
    stats = _stat_rows([[*c[:6], c.errors, c.sentence_errors] for _, c in speakers])
    rows = [(spk, _count_cells(c)) for spk, c in speakers]
    out = ["", "SYSTEM SUMMARY COUNTS by SPEAKER".center(80).rstrip(), ""]
    return out + _render_table(title, rows, ("Sum", _count_cells(total)), stats)


@functools.lru_cache(maxsize=1 << 16)
def _shown(token: Optional[str], table: Optional[str], width: int = 0) -> Tuple[str, int]:
    """A token as printed in an alignment (``table``: "lower", "upper" or None) and its
    display width (East Asian wide characters count 2); ``None`` is a gap of ``width``."""
    if token is None:
        return "*" * width, width
    if table is not None:
        token = token.translate(_ASCII_LOWER if table == "lower" else _ASCII_UPPER)
    if token.isascii():
        return token, len(token)
    return token, sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in token)


def alignment_lines(utt: UttScore, case_sensitive: bool = False) -> List[str]:
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


def _alignment_dump(score: Score, title: str) -> List[str]:
    """sclite's "DUMP OF SYSTEM ALIGNMENT STRUCTURE": utterances grouped by speaker."""
    groups: Dict[str, List[UttScore]] = {}
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
    path.write_text(format_result_txt(score, title), encoding="utf-8")
    return path


def read_summary(path) -> Summary:
    """Parse the ``| Sum/Avg|`` row of a ``result.txt`` written by sclite or by us."""
    for _, line in _read_lines(path):
        if "Sum/Avg" in line:
            numbers = re.findall(r"\d+(?:\.\d+)?", line.split("Sum/Avg", 1)[1])
            if len(numbers) == 8:
                return Summary(int(numbers[0]), int(numbers[1]), *map(float, numbers[2:]))
            raise ValueError(f"{path}: expected 8 numbers in the Sum/Avg row, found {line.strip()!r}")
    raise ValueError(f"{path}: expected an sclite summary with a '| Sum/Avg|' row, found none")


# --------------------------------------------------------------------------- sclite


def find_sclite() -> Optional[str]:
    """The sclite executable: on PATH, else Debian's ``/usr/lib/sctk/bin/sclite``; or None."""
    found = shutil.which("sclite")
    if found:
        return found
    return SCLITE_FALLBACK if shutil.which(SCLITE_FALLBACK) else None


def sclite_available() -> bool:
    """Whether :func:`find_sclite` finds sclite."""
    return find_sclite() is not None


def _trn_ids(pairs: Sequence[TokenPair]) -> Dict[str, str]:
    """``(spk-uttid)`` trn ids, ESPnet's form; sclite folds ids to lower case, so ids
    differing only in case cannot be told apart by it."""
    ids = {p.utt_id: f"{p.speaker}-{p.utt_id}" for p in pairs}
    seen: Dict[str, str] = {}
    for utt, trn in ids.items():
        if trn.lower() in seen:
            raise ValueError(
                f"sclite folds utterance ids to lower case: {seen[trn.lower()]!r} and {utt!r} "
                "collide; score without sclite"
            )
        seen[trn.lower()] = utt
    return ids


def write_trn(path, items: Iterable[Tuple[str, Sequence[str]]]) -> None:
    """Write ``tokens (trn_id)`` lines."""
    with open(path, "w", encoding="utf-8") as f:
        for trn_id, tokens in items:
            f.write(f"{' '.join(tokens)} ({trn_id})\n")


def _parse_sclite(report: str, trn_to_utt: Mapping[str, str]) -> Tuple[Counts, Dict[str, Counts]]:
    """Totals from the counts table's ``| Sum |`` row, per-utterance counts from the
    ``id:``/``Scores:`` lines of the alignment dump."""
    total = None
    utterances: Dict[str, Counts] = {}
    current = None
    for line in report.splitlines():
        m = re.match(r"\s*\|\s*Sum\s*\|([\d\s]+)\|([\d\s]+)\|\s*$", line)
        if m and total is None:
            n = [int(x) for x in (m.group(1) + m.group(2)).split()]
            total = Counts(n[0], n[1], n[2], n[3], n[4], n[5], n[7])
        m = re.match(r"id: \((.*)\)\s*$", line)
        if m:
            current = trn_to_utt.get(m.group(1).lower())
        m = re.match(r"Scores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)", line)
        if m and current is not None:
            c, s, d, i = map(int, m.groups())
            utterances[current] = Counts(1, c + s + d, c, s, d, i, int(s + d + i > 0))
    if total is None or len(utterances) != len(trn_to_utt):
        raise RuntimeError(
            f"could not read sclite's report: Sum row {'missing' if total is None else 'found'}, "
            f"{len(utterances)} of {len(trn_to_utt)} utterances; its end:\n{report[-2000:]}"
        )
    return total, utterances


def run_sclite(
    refs: Mapping[str, str],
    hyps: Mapping[str, str],
    unit: str,
    out_dir,
    *,
    nlsyms: Iterable[str] = (),
    remove_tokens: Iterable[str] = (),
    utt2spk: Optional[Mapping[str, str]] = None,
    case_sensitive: bool = False,
    title: Optional[str] = None,
) -> ScliteResult:
    """Score with sclite, tokenized as :func:`score` does.

    Writes ``out_dir/ref.trn`` and ``out_dir/hyp.trn`` (``tokens (spk-uttid)``; a missing
    hypothesis is an empty line), runs ``sclite -r ref.trn trn -h hyp.trn trn [title]
    -i rm -o all stdout`` (plus ``-s`` if case-sensitive) and reads its counts back."""
    exe = find_sclite()
    if exe is None:
        raise ValueError(f"sclite: expected it on PATH or at {SCLITE_FALLBACK}, found neither")
    pairs, _ = prepare(refs, hyps, unit, nlsyms=nlsyms, remove_tokens=remove_tokens, utt2spk=utt2spk)
    ids = _trn_ids(pairs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_trn(out_dir / "ref.trn", ((ids[p.utt_id], p.ref) for p in pairs))
    write_trn(out_dir / "hyp.trn", ((ids[p.utt_id], p.hyp) for p in pairs))
    cmd = [exe, "-r", str(out_dir / "ref.trn"), "trn", "-h", str(out_dir / "hyp.trn"), "trn"]
    cmd += [title] if title else []
    cmd += ["-i", "rm", "-o", "all", "stdout"] + (["-s"] if case_sensitive else [])
    proc = subprocess.run(cmd, capture_output=True)
    report = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", errors="replace")
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{(report + err)[-2000:]}")
    total, utterances = _parse_sclite(report, {trn.lower(): utt for utt, trn in ids.items()})
    return ScliteResult(total, utterances, report)


def check_same_counts(ours: Score, sclite: ScliteResult) -> None:
    """Raise :class:`ScliteMismatch`, with both counts, unless sclite's totals and
    per-utterance counts equal ours."""
    differ = [u for u in ours.utterances if sclite.utterances.get(u.utt_id) != u.counts]
    if ours.total == sclite.total and not differ:
        return
    lines = [
        f"espnet_ext and sclite disagree on {ours.metric}:",
        f"  espnet_ext: {ours.total}",
        f"  sclite:     {sclite.total}",
    ]
    for u in differ[:5]:
        theirs = sclite.utterances.get(u.utt_id)
        lines.append(
            f"  {u.utt_id} (C, S, D, I): espnet_ext {tuple(u.counts[2:6])}, "
            f"sclite {tuple(theirs[2:6]) if theirs else 'none'}"
        )
    lines.append("Tokens special to sclite's trn format ({ / } @ ;;) cause this; score with --sclite no.")
    raise ScliteMismatch("\n".join(lines))


# --------------------------------------------------------------------------- RESULTS.md

_METRIC_DIRS = {"score_cer": "CER", "score_wer": "WER", "score_per": "PER"}


def _find_results(exp_dir: Path) -> Dict[Path, Dict[str, List[Tuple[str, Path]]]]:
    """``{decode dir: {metric: [(dataset, result.txt), ...]}}``, every level sorted."""
    found: Dict[Path, Dict[str, List[Tuple[str, Path]]]] = {}
    for path in sorted(exp_dir.glob("**/score_*/result.txt")):
        metric = _METRIC_DIRS.get(path.parent.name)
        if metric is None:
            continue
        dataset_dir = path.parent.parent
        found.setdefault(dataset_dir.parent, {}).setdefault(metric, []).append((dataset_dir.name, path))
    order = list(_METRIC_DIRS.values())
    return {
        decode_dir: {m: by_metric[m] for m in sorted(by_metric, key=order.index)}
        for decode_dir, by_metric in sorted(found.items())
    }


def _environment_lines() -> List[str]:
    """Date, Python version and, when installed, the ESPnet and torch versions (read from
    package metadata: nothing is imported)."""
    lines = [
        f"- date: `{datetime.datetime.now().astimezone().strftime('%a %b %d %H:%M:%S %Z %Y')}`",
        f"- python version: `{platform.python_version()}`",
    ]
    for package in ("espnet", "torch"):
        try:
            lines.append(f"- {package} version: `{package} {metadata.version(package)}`")
        except metadata.PackageNotFoundError:
            pass
    return lines + [f"- cpu: `{_cpu_description()}`"]


def _cpu_description() -> str:
    """The CPU model and core count, and OMP_NUM_THREADS when set: trained weights (hence the
    figures) depend on the thread count and the CPU's kernels."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    threads = os.environ.get("OMP_NUM_THREADS")
    return f"{model}, {os.cpu_count()} cores" + (f", OMP_NUM_THREADS={threads}" if threads else "")


LEFT_OUT = "left_out.txt"  # beside result.txt: the test set's utterances not decoded (uttid<TAB>reason)


def _metric_table(metric: str, rows: Sequence[Tuple[str, Path]], exp_parent: Path) -> List[str]:
    """A ``### <metric>`` Markdown table, a row per ``(dataset, result.txt)``: the counts
    scored (Snt: utterances, Wrd: tokens) and, from ``left_out.txt`` beside ``result.txt``,
    how many of the set's utterances were left out before decoding ("?" when it was not
    written), followed by the files that list them."""
    out = [f"### {metric}", "", "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|Left out|", "|---" * 10 + "|"]
    listed = []
    for dataset, path in rows:
        s = read_summary(path)
        pct = "|".join("%.1f" % x for x in s[2:])
        left = path.parent / LEFT_OUT
        n_left = sum(1 for _ in _read_lines(left)) if left.is_file() else "?"
        if n_left not in (0, "?"):
            listed.append(f"{dataset}: `{left.relative_to(exp_parent).as_posix()}`")
        out.append(f"|{dataset}|{s.sentences}|{s.words}|{pct}|{n_left}|")
    if listed:
        out += ["", "Left out before decoding (excluded in stage 3 or removed in stage 4), listed in " + "; ".join(listed)]
    return out + [""]


def collect_results(exp_dir) -> str:
    """RESULTS.md text for every decode dir under ``exp_dir`` holding
    ``<test_set>/score_{cer,wer,per}/result.txt``: an environment section, then per decode
    dir (a ``##`` header: its path from ``exp_dir``'s parent, i.e. ``<asr_tag>/<decode>``)
    one table per metric (``### CER``, ``### WER``, ``### PER``), one row per test set."""
    exp_dir = Path(exp_dir).resolve()
    found = _find_results(exp_dir)
    if not found:
        raise ValueError(
            f"{exp_dir}: expected <decode>/<test_set>/score_{{cer,wer,per}}/result.txt below it, found none"
        )
    out = ["<!-- Generated by `python -m espnet_ext.bin.score collect`. -->", "# RESULTS", "## Environments"]
    out += _environment_lines() + [""]
    for decode_dir, by_metric in found.items():
        out += [f"## {decode_dir.relative_to(exp_dir.parent).as_posix()}", ""]
        for metric, rows in by_metric.items():
            out += _metric_table(metric, rows, exp_dir.parent)
    return "\n".join(out)


def write_results_md(exp_dir, out=None) -> Path:
    """Write :func:`collect_results` to ``out`` (default ``exp_dir/RESULTS.md``)."""
    path = Path(out) if out is not None else Path(exp_dir) / "RESULTS.md"
    text = collect_results(exp_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
