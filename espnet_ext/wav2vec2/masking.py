"""Span masks with fairseq's semantics, vectorized (no Python loop over utterances, no
host-device synchronization).

fairseq ``compute_mask_indices`` (``mask_type="static"``, ``no_overlap=False``): an utterance
of ``L`` valid frames gets ``n = floor(mask_prob * L / mask_length + u)`` spans, ``u ~ U[0, 1)``,
at least ``min_masks``; span starts are drawn uniformly *without replacement* from
``[0, L - mask_length]``; each span covers ``mask_length`` frames and spans may overlap. So
``mask_prob`` is not the masked fraction: each frame starts a span with probability
``mask_prob / mask_length`` and, with overlaps, ``mask_prob = 0.65``, ``mask_length = 10``
masks about 49% of the frames (the wav2vec 2.0 paper's "p = 0.065 of the frames start a
span"). Padding is never masked. Utterances shorter than ``mask_length`` get no span unless
``min_masks`` > 0, in which case (as fairseq clamps the span) their whole length is masked.

The same function makes channel masks: apply it to ``(B, C)`` with every length ``C``
(fairseq ``mask_channel_prob`` / ``mask_channel_length``, one channel mask per utterance).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def span_mask(
    lengths: Tensor,
    max_length: int,
    mask_prob: float,
    mask_length: int,
    min_masks: int = 0,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """``(B, max_length)`` bool mask, True at masked frames (see the module docstring).

    Args:
        lengths: ``(B,)`` valid frames per utterance (long), on the device of the result.
        max_length: ``T``, the padded length.
        mask_prob: fairseq ``mask_prob`` (in [0, 1]).
        mask_length: fairseq ``mask_length`` (>= 1), span length in frames.
        min_masks: fairseq ``mask_min_space``-free ``min_masks``: spans per utterance at least.
        generator: random generator (its device must be the lengths' device).
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
    span = torch.clamp(torch.clamp(lengths, max=mask_length), min=1)  # (B,) clamped span
    uniform = torch.rand(batch, device=device, generator=generator)
    num = torch.floor(mask_prob * lengths.float() / mask_length + uniform).long()
    num = torch.clamp(num, min=min_masks)
    starts_available = torch.clamp(lengths - span + 1, min=0)  # start positions per utterance
    num = torch.minimum(num, starts_available)
    # Without replacement: random scores, invalid starts last; the n best scores are the starts.
    positions = torch.arange(max_length, device=device)
    scores = torch.rand(batch, max_length, device=device, generator=generator)
    scores = scores.masked_fill(positions.unsqueeze(0) >= starts_available.unsqueeze(1), 2.0)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    starts = ranks < num.unsqueeze(1)
    # Span expansion: frame t is masked when a span starts in (t - span, t].
    started = torch.cumsum(starts.long(), dim=1)
    idx = positions.unsqueeze(0) - span.unsqueeze(1)  # (B, T)
    before = torch.where(idx >= 0, started.gather(1, idx.clamp(min=0)), torch.zeros_like(started))
    mask = (started - before) > 0
    return mask & (positions.unsqueeze(0) < lengths.unsqueeze(1))
