"""Span masks with fairseq's semantics, vectorized (no Python loop over utterances, no
host-device synchronization).

fairseq ``compute_mask_indices`` (``mask_type="static"``, ``no_overlap=False``, ``mask_dropout``
0): an utterance of ``L`` valid frames gets ``n = max(min_masks, floor(mask_prob * L /
mask_length + u))`` spans, ``u ~ U[0, 1)``; span starts are drawn uniformly *without
replacement* from ``[0, L - mask_length)`` (``L - mask_length`` positions: a span never ends on
the last frame), or from ``[0, n]`` when ``L - mask_length <= n`` (``n + 1`` positions); each
span covers ``mask_length`` frames, clipped at ``L``, and spans may overlap. So ``mask_prob``
is not the masked fraction: each frame starts a span with probability ``mask_prob /
mask_length`` and, with overlaps, ``mask_prob = 0.65``, ``mask_length = 10`` masks about 49% of
the frames (the wav2vec 2.0 paper's "p = 0.065 of the frames start a span"). Padding is never
masked. An utterance shorter than ``mask_length`` with ``min_masks`` > 0 is masked from its
first span's start to its end (entirely when a span starts at 0; fairseq's newest version
raises an error then, earlier ones masked it, as here).

``require_same_masks`` (fairseq's default, in pre-training and fine-tuning): every utterance
then keeps only as many masked frames as the least-masked utterance of the batch has, chosen
uniformly at random among its masked frames (the others are unmasked). With ``mask_prob`` 0.65
and spans of 10 this takes a batch of 10-s utterances from ~49% to ~44-46% masked, depending on
the batch size (:func:`espnet_ext.report.mask_stats.mask_statistics` computes it exactly). Utterances
of no valid frames do not count towards the least (fairseq fails on them).

Choosing ``n`` of ``N`` positions uniformly without replacement is done by drawing a random
score per position and keeping the ``n`` smallest (:func:`smallest`: one sort per row, no host
read of ``n``).

The same function makes channel masks: apply it to ``(B, C)`` with every length ``C``
(fairseq ``mask_channel_prob`` / ``mask_channel_length``, one channel mask per utterance;
fairseq's channel masks always use ``require_same_masks``' default, True).
"""

from __future__ import annotations

import torch
from torch import Tensor


def span_mask(
    lengths: Tensor,
    max_length: int,
    mask_prob: float,
    mask_length: int,
    min_masks: int = 0,
    generator: torch.Generator | None = None,
    require_same_masks: bool = True,
) -> Tensor:
    """``(B, max_length)`` bool mask, True at masked frames (see the module docstring).

    Args:
        lengths: ``(B,)`` valid frames per utterance (long), on the device of the result.
        max_length: ``T``, the padded length.
        mask_prob: fairseq ``mask_prob`` (in [0, 1]).
        mask_length: fairseq ``mask_length`` (>= 1), span length in frames.
        min_masks: fairseq ``min_masks``: spans per utterance at least (2 for time masks).
        generator: random generator (its device must be the lengths' device).
        require_same_masks: fairseq ``require_same_masks``: trim every utterance's mask to the
            batch's smallest masked count.
    """
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob: expected a probability in [0, 1]; found {mask_prob}")
    if mask_length < 1:
        raise ValueError(f"mask_length: expected >= 1 frames; found {mask_length}")
    device = lengths.device
    batch = lengths.numel()
    lengths = lengths.long()
    if batch == 0 or max_length == 0 or (mask_prob == 0.0 and min_masks == 0):
        return torch.zeros(batch, max_length, dtype=torch.bool, device=device)
    uniform = torch.rand(batch, device=device, generator=generator)
    num = torch.floor(mask_prob * lengths.float() / mask_length + uniform).long()
    num = torch.clamp(num, min=min_masks)
    # fairseq: starts in [0, L - mask_length), or [0, num] when that range holds num or fewer.
    # num <= max(min_masks, L), so ``width`` positions always suffice.
    starts_available = torch.where(lengths - mask_length > num, lengths - mask_length, num + 1)
    width = max(max_length, min_masks) + 1
    # Without replacement: random scores, invalid starts last; the num best scores are the starts.
    positions = torch.arange(width, device=device)
    scores = _scores((batch, width), device, generator)
    scores = scores.masked_fill(positions.unsqueeze(0) >= starts_available.unsqueeze(1), 2.0)
    starts = smallest(scores, num)
    # Span expansion: frame t is masked when a span starts in (t - mask_length, t].
    started = torch.cumsum(starts.long(), dim=1)
    before = torch.nn.functional.pad(started, (mask_length, 0))[:, :width]
    mask = ((started - before) > 0)[:, :max_length]
    mask = mask & (positions[:max_length].unsqueeze(0) < lengths.unsqueeze(1))
    if require_same_masks:
        mask = same_mask_count(mask, lengths > 0, generator)
    return mask


def same_mask_count(mask: Tensor, counted: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """fairseq's ``require_same_masks``: keep, in every row of ``mask`` ``(B, T)``, a uniformly
    random subset of its True entries as large as the smallest row count among the rows where
    ``counted`` ``(B,)`` is True (all rows' entries are kept when none is counted)."""
    counts = mask.sum(dim=1)
    target = torch.where(counted, counts, torch.full_like(counts, mask.size(1))).min()
    scores = _scores(mask.shape, mask.device, generator).masked_fill(~mask, 2.0)
    return mask & smallest(scores, target.expand(mask.size(0)))


def _scores(shape, device: torch.device, generator: torch.Generator | None) -> Tensor:
    """Uniform random scores in [0, 1), float64: two equal draws (a tie) are vanishingly rare."""
    return torch.rand(shape, device=device, generator=generator, dtype=torch.float64)


def smallest(scores: Tensor, count: Tensor) -> Tensor:
    """``(B, N)`` bool, True at the ``count[b]`` smallest ``scores`` of each row ``b`` (all of the
    row when ``count[b] >= N``; ties at the threshold all kept): one sort per row and a comparison
    with each row's ``count[b]``-th smallest score, ``count`` ``(B,)`` staying on the device."""
    ordered = scores.sort(dim=1).values
    index = (count.long().clamp(min=1, max=scores.size(1)) - 1).unsqueeze(1)
    threshold = ordered.gather(1, index)
    return (scores <= threshold) & (count > 0).unsqueeze(1)
