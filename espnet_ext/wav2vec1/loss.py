"""The wav2vec 1.0 objective as pure functions (fairseq ``Wav2VecPredictionsModel`` + ``wav2vec`` criterion).

For a context frame ``t`` and prediction step ``k`` (1..K), the step-``k`` transform of ``c[t]``,
``h_k(c[t])``, is scored against the encoder output at ``u = t + offset + k - 1`` (the positive)
and against ``N`` distractors ``z[u']``, ``u'`` drawn uniformly from the *other* valid frames
of the same utterance (:func:`espnet_ext.wav2vec2.negatives.sample_negatives` with the valid
frames as candidates; as in fairseq, one draw per *target* frame, shared by the K predictions of
that frame). A logit is a plain dot product ``h_k(c[t]) . z`` (no cosine, no temperature).

Loss (fairseq's defaults: ``infonce=False``, ``balanced_classes=False``)::

    per prediction:  -log s(l_pos) - sum_n w * log(1 - s(l_n))   (s: sigmoid; w = 1, or 1/N balanced)
    sample_size   =  number of predictions (positives): sum_k max(0, T_b - offset - k + 1) per utterance
    loss          =  sum over predictions (fairseq's criterion; its trainer divides the gradient by sample_size)

so ``loss / sample_size`` is the paper's ``L_k`` averaged over steps, with ``lambda = N``
(the expectation over distractors estimated by their sum). With ``infonce=True``: cross-entropy
over ``[l_pos, l_1..l_N]`` with the positive at 0, same ``sample_size``. Reference values
(nats; fairseq logs bits, divided by ``log 2``): all logits 0 (about the initial value,
:func:`zero_logit_loss`) ``(1 + N w) log 2``, 7.62 for N = 10; chance, the best a model that
cannot tell positives from distractors reaches by learning the class prior
(:func:`chance_loss`), 3.35 for N = 10; 1.39 for both with ``balanced_classes``.

Vectorised: predictions are regrouped by *target* frame (a gather of the ``(B, T, K, D)``
predictions, not a Python loop over steps or utterances), then one batched product with the
``1 + N`` candidate vectors of each target gives all logits ``(B, T, K, 1 + N)``; shapes depend
only on input shapes (no host synchronisation). Only torch is imported here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from espnet_ext.wav2vec2.negatives import Negatives


class FutureScores(NamedTuple):
    """What :func:`future_logits` returns, indexed by *target* frame ``u`` and step ``k``.

    Attributes:
        logits: ``(B, T, K, 1 + N)`` float32: positive at index 0, then the N distractors of ``u``.
        valid: ``(B, T, K)`` bool: ``u`` is a valid frame and has a context frame
            ``u - offset - k + 1 >= 0`` (the predictions that exist, fairseq's ``tsz - offset`` per step).
        negative_valid: ``(B, T, 1, N)`` bool: the distractor exists (False only for an
            utterance with a single valid frame, which has no prediction anyway).
    """

    logits: Tensor
    valid: Tensor
    negative_valid: Tensor


def regroup_by_target(predictions: Tensor, offset: int) -> Tensor:
    """``(B, T, K, D)`` predictions by context frame -> by target frame.

    Entry ``[b, u, k]`` of the result is ``predictions[b, u - offset - k, k]`` (step ``k + 1``
    from context frame ``u - offset - k``), or ``predictions[b, 0, k]`` where that frame is < 0
    (an invalid entry, see :attr:`FutureScores.valid`).
    """
    batch, steps, num_steps, dim = predictions.shape
    u = torch.arange(steps, device=predictions.device).view(steps, 1)
    k = torch.arange(num_steps, device=predictions.device).view(1, num_steps)
    source = (u - offset - k).clamp(min=0) * num_steps + k  # (T, K) into the flattened (T * K) axis
    flat = predictions.reshape(batch, steps * num_steps, dim)
    return flat.index_select(1, source.reshape(-1)).view(batch, steps, num_steps, dim)


def prediction_mask(lengths: Tensor, steps: int, num_steps: int, offset: int) -> Tensor:
    """``(B, T, K)`` bool: target frame ``u`` valid (``u < lengths[b]``) with a context frame for step ``k``."""
    u = torch.arange(steps, device=lengths.device).view(1, steps, 1)
    k = torch.arange(num_steps, device=lengths.device).view(1, 1, num_steps)
    return (u < lengths.view(-1, 1, 1)) & (u - offset - k >= 0)


def future_logits(
    predictions: Tensor, targets: Tensor, negatives: Negatives, lengths: Tensor, offset: int
) -> FutureScores:
    """Logits of every prediction against its positive and its target's distractors.

    Args:
        predictions: ``(B, T, K, D)``: step ``k`` transform of the context at frame ``t``
            (fairseq ``project_to_steps`` output, after dropout).
        targets: ``(B, T, D)`` encoder output ``z`` (fairseq ``y``, not detached).
        negatives: distractor frames per target frame ``(B, T, N)``
            (:func:`~espnet_ext.wav2vec2.negatives.sample_negatives` over the valid frames).
        lengths: ``(B,)`` valid frames.
        offset: frames between a context frame and its step-1 target (fairseq ``offset``).
    Computed in float32 with autocast off.
    """
    if (
        predictions.dim() != 4
        or targets.dim() != 3
        or predictions.shape[:2] != targets.shape[:2]
        or predictions.size(-1) != targets.size(-1)
    ):
        raise ValueError(
            f"predictions, targets: expected (B, T, K, D) and (B, T, D); found "
            f"{tuple(predictions.shape)} and {tuple(targets.shape)}"
        )
    batch, steps, num_steps, _ = predictions.shape
    with torch.autocast(device_type=predictions.device.type, enabled=False):
        by_target = regroup_by_target(predictions.float(), offset)
        z = targets.float()
        rows = torch.arange(batch, device=z.device).view(batch, 1, 1)
        candidates = torch.cat([z.unsqueeze(2), z[rows, negatives.indices]], dim=2)  # (B, T, 1 + N, D)
        logits = torch.matmul(by_target, candidates.transpose(2, 3))  # (B, T, K, 1 + N)
    valid = prediction_mask(lengths, steps, num_steps, offset)
    return FutureScores(logits, valid, negatives.valid.unsqueeze(2))


class Wav2Vec1Loss(NamedTuple):
    """What :func:`wav2vec1_loss` returns.

    Attributes:
        loss: scalar, summed over predictions (fairseq's criterion output).
        sample_size: scalar long, the number of predictions (fairseq's ``sample_size``).
    """

    loss: Tensor
    sample_size: Tensor

    @property
    def per_prediction(self) -> Tensor:
        """``loss / sample_size`` (``sample_size`` at least 1): what fairseq's gradient is normalised to."""
        return self.loss / self.sample_size.clamp(min=1)


def wav2vec1_loss(scores: FutureScores, infonce: bool = False, balanced_classes: bool = False) -> Wav2Vec1Loss:
    """fairseq's ``wav2vec`` criterion over the valid predictions (see the module docstring)."""
    logits, negative_valid = scores.logits, scores.negative_valid
    if infonce:
        masked = torch.cat([logits[..., :1], logits[..., 1:].masked_fill(~negative_valid, float("-inf"))], dim=-1)
        per_prediction = -torch.log_softmax(masked, dim=-1)[..., 0]
    else:
        weight = 1.0 / (logits.size(-1) - 1) if balanced_classes else 1.0
        positive = F.softplus(-logits[..., 0])  # -log sigmoid(l)
        negative = (F.softplus(logits[..., 1:]) * negative_valid).sum(dim=-1)  # -log(1 - sigmoid(l))
        per_prediction = positive + weight * negative
    loss = torch.where(scores.valid, per_prediction, torch.zeros_like(per_prediction)).sum()
    return Wav2Vec1Loss(loss, scores.valid.sum())


def zero_logit_loss(num_negatives: int, infonce: bool = False, balanced_classes: bool = False) -> float:
    """Loss per prediction when every logit is 0 (nats): about the value at initialisation."""
    if infonce:
        return math.log(num_negatives + 1)
    return (1.0 + (1.0 if balanced_classes else float(num_negatives))) * math.log(2.0)


def chance_loss(num_negatives: int, infonce: bool = False, balanced_classes: bool = False) -> float:
    """The lowest loss per prediction without telling a positive from its distractors (nats).

    InfoNCE: ``log(N + 1)``. Binary cross-entropy: the best *constant* logit ``b``, where
    ``sigmoid(b) = 1 / (1 + w N)`` (the class prior), gives ``log(1 + w N) + w N log(1 + 1 / (w N))``:
    3.35 for N = 10 with fairseq's weight ``w = 1`` (well below the 7.62 of zero logits, so a
    loss falling from 7.6 to 3.4 has learnt nothing but the prior), ``2 log 2`` with
    ``balanced_classes`` (``w = 1 / N``).
    """
    if infonce:
        return math.log(num_negatives + 1)
    negatives = 1.0 if balanced_classes else float(num_negatives)
    return math.log1p(negatives) + negatives * math.log1p(1.0 / negatives)


class Wav2Vec1Stats(NamedTuple):
    """Monitoring values over the valid predictions (no gradient).

    Attributes:
        accuracy: fraction of predictions whose positive logit is above every distractor's
            (chance ``1 / (N + 1)``).
        step_accuracy: ``(K,)`` the same per prediction step.
        prob_pos: mean ``sigmoid(l_pos)``; prob_neg: mean ``sigmoid(l_n)`` over distractors.
    """

    accuracy: Tensor
    step_accuracy: Tensor
    prob_pos: Tensor
    prob_neg: Tensor


def wav2vec1_stats(scores: FutureScores) -> Wav2Vec1Stats:
    """:class:`Wav2Vec1Stats` of :func:`future_logits` output."""
    with torch.no_grad():
        logits, valid = scores.logits, scores.valid.float()
        best_negative = logits[..., 1:].masked_fill(~scores.negative_valid, float("-inf")).amax(dim=-1)
        correct = (logits[..., 0] > best_negative).float() * valid
        per_step = valid.sum(dim=(0, 1))
        step_accuracy = correct.sum(dim=(0, 1)) / per_step.clamp(min=1)
        count = valid.sum().clamp(min=1)
        prob = torch.sigmoid(logits)
        prob_pos = (prob[..., 0] * valid).sum() / count
        negatives = valid.unsqueeze(-1) * scores.negative_valid
        prob_neg = (prob[..., 1:] * negatives).sum() / negatives.sum().clamp(min=1)
    return Wav2Vec1Stats(correct.sum() / count, step_accuracy, prob_pos, prob_neg)
