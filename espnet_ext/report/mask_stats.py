"""Exact expectations of fairseq's span masks (``compute_mask_indices``), for the planner's rows.

fairseq's ``compute_mask_indices`` (``fairseq/data/data_utils.py``, ``mask_type static``, overlaps
allowed), which this project's :func:`espnet_ext.wav2vec2.masking.span_mask` implements, draws
``max(min_masks, floor(mask_prob x T / mask_length + U))`` spans per utterance (``min_masks`` 2 for
wav2vec 2.0's time masks, 0 for channel masks). :func:`mask_statistics` evaluates what that masks,
exactly, for an utterance of ``T`` frames: the masked fraction, the spans, the contiguous runs, and
the fraction left once ``require_same_masks`` (fairseq's default; channel masks always) trims every
utterance of a GPU's batch to the least masked count: ``E[min over B utterances] / T``, with ``B``
from :func:`mask_batch`, as if all had the same length.

numpy only: no torch (the planner reads configs, it builds no model).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np


class MaskStats(NamedTuple):
    """Expectations of fairseq's span masks on utterances of ``frames`` frames."""

    spans: float  # spans drawn (``max(min_masks, floor(p T / l + U))``)
    fraction: float  # masked frames / frames, one utterance
    runs: float  # contiguous masked runs (overlapping spans merge), one utterance
    run_frames: float  # frames per run (ratio of the expectations), one utterance
    same_fraction: float  # with require_same_masks over ``batch`` utterances: E[least count] / frames


def _starts(frames: int, num: int, length: int) -> int:
    """Start positions fairseq's ``compute_mask_indices`` (and ``span_mask``) draw ``num`` from:
    ``np.random.choice(sz - min_len, num_mask)``; the last frame is never a start + l - 1."""
    return frames - length if frames - length > num else num + 1


def _unmasked_probability(free: np.ndarray, starts: int, num: int) -> np.ndarray:
    """P(no start among ``num`` drawn without replacement from ``starts`` lies in a set of
    ``starts - free`` positions), per element of ``free`` (the positions outside the set)."""
    out = np.ones(free.shape, dtype=float)
    for i in range(num):
        out *= np.clip(free - i, 0, None) / (starts - i)
    return out


def _stats_given_spans(frames: int, num: int, length: int) -> tuple[float, float]:
    """(expected masked frames, expected runs) for exactly ``num`` spans requested."""
    starts = _starts(frames, num, length)
    if num <= 0 or starts <= 0:
        return 0.0, 0.0
    t = np.arange(frames)
    cover = np.clip(np.minimum(t, starts - 1) - np.maximum(t - length + 1, 0) + 1, 0, None)
    unmasked = _unmasked_probability(starts - cover, starts, num)
    cover2 = np.clip(np.minimum(t[1:], starts - 1) - np.maximum(t[1:] - length, 0) + 1, 0, None)
    both = _unmasked_probability(starts - cover2, starts, num)  # frames t-1 and t unmasked
    runs = float(1.0 - unmasked[0]) + float(np.sum(unmasked[:-1] - both))
    return float(np.sum(1.0 - unmasked)), runs


def masked_count_distribution(frames: int, num: int, length: int) -> np.ndarray:
    """``P(masked frames = c)``, ``c = 0..min(frames, num x length)``, for exactly ``num`` spans of
    ``length`` drawn as fairseq does (starts without replacement from :func:`_starts` positions,
    spans clipped at ``frames``). Exact: a scan over the frames with the state (starts drawn,
    frames the latest span still covers, masked so far); at frame ``t`` a start is drawn with
    probability ``(num - drawn) / (positions - t)`` (sequential sampling without replacement)."""
    return _count_distribution(int(frames), int(num), int(length)).copy()


@functools.lru_cache(maxsize=64)
def _count_distribution(frames: int, num: int, length: int) -> np.ndarray:
    starts = _starts(frames, num, length)
    if num <= 0 or frames <= 0:
        return np.ones(1)
    top = min(frames, num * length)
    p = np.zeros((num + 1, length + 1, top + 1))  # (starts drawn, frames still covered, masked)
    p[0, 0, 0] = 1.0
    left = np.arange(num, -1, -1, dtype=float)  # num - drawn
    for t in range(frames):
        if t < starts:
            pick = left / (starts - t)
            drawn = np.einsum("jdc,j->jc", p, pick)
            p *= (1.0 - pick)[:, None, None]
            p[1:, length, :] += drawn[:-1]
        p[:, 0, 1:] += p[:, 1, :-1]  # frame t masked by a span ending here
        p[:, 1:length, 1:] = p[:, 2:, :-1]  # ... or by one that goes on
        p[:, 1:length, 0] = 0.0
        p[:, length, :] = 0.0
    return p.sum(axis=(0, 1))


def mask_statistics(frames: int, mask_prob: float, mask_length: int, min_masks: int = 0, batch: int = 1) -> MaskStats:
    """Exact expectations of fairseq's ``compute_mask_indices`` (this project's ``span_mask``).

    fairseq draws ``n = max(min_masks, floor(mask_prob * T / mask_length + U))`` spans
    (``U ~ U[0, 1)``), their starts without replacement from ``[0, T - mask_length)`` (``[0, n]``
    when that is too short), each ``mask_length`` frames, clipped at ``T``; spans may overlap.
    So ``mask_prob`` is the expected *spans x length* per frame, not the masked fraction
    (0.65 and 10 mask ~49%). ``require_same_masks`` then keeps, in each of the ``batch``
    utterances, as many masked frames as the least masked one has: ``same_fraction`` is
    ``E[min of batch independent counts] / T`` (``batch`` 1: ``fraction``).

    Args:
        frames: ``T``, the utterance's frames (channels, for channel masks).
        mask_prob, mask_length, min_masks: fairseq's ``mask_prob``, ``mask_length``,
            ``min_masks`` (2 for wav2vec 2.0's time masks, 0 for channel masks).
        batch: utterances (all of ``T`` frames) whose masks are trimmed together.
    """
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob: expected a probability in [0, 1]; found {mask_prob}")
    if mask_length < 1 or frames < 1 or batch < 1:
        raise ValueError(
            f"expected mask_length >= 1, frames >= 1 and batch >= 1; found {mask_length}, {frames}, {batch}"
        )
    x = mask_prob * frames / mask_length
    low = math.floor(x)
    spans = masked = runs = 0.0
    counts = np.zeros(frames + 1)
    for n, weight in ((low, 1.0 - (x - low)), (low + 1, x - low)):
        if weight <= 0.0:
            continue
        n = max(min_masks, n)
        m, r = _stats_given_spans(frames, n, mask_length)
        spans, masked, runs = spans + weight * n, masked + weight * m, runs + weight * r
        if batch > 1:
            dist = _count_distribution(frames, n, mask_length)
            counts[: len(dist)] += weight * dist
    same = masked
    if batch > 1:  # E[min] = sum over k >= 1 of P(count >= k) ** batch
        at_least = np.clip(1.0 - np.cumsum(counts)[:-1], 0.0, 1.0)
        same = float(np.sum(at_least**batch))
    return MaskStats(spans, masked / frames, runs, masked / runs if runs else 0.0, same / frames)


def wav2vec2_frames(samples: int) -> int:
    """Frames of the standard wav2vec 2.0 extractor (receptive field 400, hop 320 samples)."""
    return (samples - 400) // 320 + 1 if samples >= 400 else 0


def mask_batch(
    audio_per_gpu_batch_s: float | None, utterance_s: float, cap: int | None = None, multiple: int = 1
) -> int:
    """Utterances of ``utterance_s`` in a GPU's micro-batch (the masks ``require_same_masks``
    trims together): ``floor(audio / utterance)``, at most ``cap`` (utterances per GPU), cut to a
    multiple of ``multiple`` when there are at least that many (fairseq's
    ``required_batch_size_multiple``), at least 1; 1 when the audio is unknown."""
    if audio_per_gpu_batch_s is None or utterance_s <= 0:
        return 1
    count = max(1, int(math.floor(audio_per_gpu_batch_s / utterance_s + 1e-9)))
    count = count if cap is None else min(count, int(cap))
    return count // multiple * multiple or count
