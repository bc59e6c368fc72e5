"""sclite's alignment of a reference and a hypothesis token sequence, batched in numpy.

sclite 2.10's default (no ``-d``): Levenshtein with insertion and deletion cost 3,
substitution 4, match 0; among minimal-cost alignments the trace back from the ends prefers
the diagonal (match or substitution), then an insertion, then a deletion. Tokens compare with
ASCII letters folded to lower case unless ``case_sensitive`` (sclite's ``-s``).
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Sequence

import numpy as np

COST_INS = 3
COST_DEL = 3
COST_SUB = 4

_OP_C, _OP_S, _OP_D, _OP_I = (ord(c) for c in "CSDI")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_MAX_CELLS = 1 << 23  # DP cells per batch: bounds the back-pointer array to 8 MiB


class _Vocab(dict):
    """Token -> integer id, tokens equal after ASCII case folding (unless case-sensitive)
    sharing an id; each distinct token is folded once."""

    def __init__(self, case_sensitive: bool):
        super().__init__()
        self.case_sensitive = case_sensitive
        self.folded: dict[str, int] = {}

    def __missing__(self, token: str) -> int:
        key = token if self.case_sensitive else token.translate(_ASCII_LOWER)
        value = self[token] = self.folded.setdefault(key, len(self.folded))
        return value


def _encode(
    refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]], case_sensitive: bool
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Map tokens to integer ids (see :class:`_Vocab`)."""
    vocab = _Vocab(case_sensitive)

    def ids(tokens: Sequence[str]) -> np.ndarray:
        return np.fromiter(map(vocab.__getitem__, tokens), np.int32, len(tokens))

    return [ids(r) for r in refs], [ids(h) for h in hyps]


def _batches(ref_lens: Sequence[int], hyp_lens: Sequence[int]) -> Iterator[list[int]]:
    """Group utterance indices, sorted by length, into batches of at most ``_MAX_CELLS``
    DP cells (an utterance larger than that is a batch of its own)."""
    order = sorted(range(len(ref_lens)), key=lambda k: (ref_lens[k], hyp_lens[k]))
    batch: list[int] = []
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


def _trace(back: np.ndarray, ref_lens: np.ndarray, hyp_lens: np.ndarray) -> list[str]:
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


def align_many(refs: Sequence[Sequence[str]], hyps: Sequence[Sequence[str]], case_sensitive: bool = False) -> list[str]:
    """Align each reference token sequence with its hypothesis like sclite.

    Returns, per pair, its operations as a string over ``C S D I`` (correct, substitution,
    deletion: a reference token alone, insertion: a hypothesis token alone).
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


def aligned_pairs(ref: Sequence[str], hyp: Sequence[str], ops: str) -> list[tuple[str | None, str | None, str]]:
    """The columns of an alignment: ``(ref token or None, hyp token or None, op)``."""
    columns, i, j = [], 0, 0
    for op in ops:
        r = ref[i] if op != "I" else None
        h = hyp[j] if op != "D" else None
        i, j = i + (op != "I"), j + (op != "D")
        columns.append((r, h, op))
    assert i == len(ref) and j == len(hyp), "alignment does not cover both sequences"
    return columns
