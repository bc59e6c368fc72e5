"""Negative (distractor) sampling for wav2vec 2.0's contrastive task, vectorized over the batch.

fairseq semantics (``Wav2Vec2Model.sample_negatives`` with ``negatives_from_everywhere=False``,
``cross_sample_negatives=0``): the targets are gathered at the *masked* frames only
(``y = unmasked_features[mask_indices]``), then each masked frame draws ``K = num_negatives``
distractors uniformly, with replacement, from the *other* masked frames of the *same*
utterance (``randint(0, M - 1)`` shifted by one at and above the frame's own index). So a
negative is never the positive, never a padding frame, never from another utterance;
identical *values* can still occur (two frames with the same codes), which the logits handle
(see :func:`espnet_ext.wav2vec2.losses.contrastive_logits`). With
``negatives_from_everywhere=True`` fairseq draws from all frames of the utterance instead:
pass the non-padding frames as ``candidates``.

Differences from fairseq, both forced by its ``(B, M, C)`` reshape and not by the method:
fairseq needs the same number ``M`` of masked frames in every utterance
(``require_same_masks``, which the masks here follow by default too) and at least 2 of them
(an assertion); here utterances may have different counts, and a frame whose utterance has no
other candidate gets no valid negative (its loss then has only the positive: 0).

No host-device synchronisation: the sampler works on the dense ``(B, T)`` grid. Every frame
(masked or not) gets ``K`` indices; the caller uses those of the frames it scores. Output
shapes depend only on the input shapes; there is no ``.item()``, ``.tolist()``, ``nonzero``,
boolean indexing or Python loop over utterances. Uniformity: a 62-bit random integer modulo
the candidate count (bias below ``T / 2**62``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class Negatives(NamedTuple):
    """What :func:`sample_negatives` returns.

    Attributes:
        indices: ``(B, T, K)`` long: for frame ``t`` of utterance ``b``, the frames (of the same
            utterance, indices into its ``T`` frames) of its ``K`` negatives.
        valid: ``(B, T, K)`` bool: False where the frame has no candidate other than itself
            (the index is then the frame itself and must not be used as a negative).
    """

    indices: Tensor
    valid: Tensor


def sample_negatives(candidates: Tensor, num_negatives: int, generator: torch.Generator | None = None) -> Negatives:
    """Draw ``num_negatives`` distractors per frame from the other candidate frames of its utterance.

    Args:
        candidates: ``(B, T)`` bool, frames negatives may come from: fairseq's masked frames
            (or all non-padding frames for ``negatives_from_everywhere``). Must exclude padding.
        num_negatives: ``K`` (fairseq ``num_negatives``), at least 1.
        generator: random generator on the device of ``candidates``.
    Returns:
        :class:`Negatives`; for a candidate frame the draws exclude the frame itself, for a
        non-candidate frame they range over all candidates.
    Raises:
        ValueError: ``candidates`` not a 2-D bool tensor, ``num_negatives`` below 1.
    """
    if candidates.dim() != 2 or candidates.dtype != torch.bool:
        raise ValueError(
            f"candidates: expected a (B, T) bool tensor; found {candidates.dtype} {tuple(candidates.shape)}"
        )
    if not isinstance(num_negatives, int) or num_negatives < 1:
        raise ValueError(f"num_negatives: expected a positive integer; found {num_negatives!r}")
    batch, steps = candidates.shape
    device = candidates.device
    is_candidate = candidates.long()
    # Candidate frames first, in time order: order[b, r] is the r-th candidate of utterance b.
    order = torch.argsort(1 - is_candidate, dim=1, stable=True)
    rank = torch.cumsum(is_candidate, dim=1) - is_candidate  # candidates strictly before t
    choices = is_candidate.sum(dim=1, keepdim=True) - is_candidate  # (B, T): candidates other than t
    draws = torch.randint(0, 2**62, (batch, steps, num_negatives), device=device, generator=generator)
    pick = draws % choices.clamp(min=1).unsqueeze(-1)
    pick = pick + (candidates.unsqueeze(-1) & (pick >= rank.unsqueeze(-1))).long()  # skip the frame itself
    indices = order.gather(1, pick.clamp(max=max(steps - 1, 0)).view(batch, -1)).view(batch, steps, num_negatives)
    valid = (choices > 0).unsqueeze(-1).expand(-1, -1, num_negatives)
    frames = torch.arange(steps, device=device).view(1, steps, 1)
    return Negatives(torch.where(valid, indices, frames), valid)
