"""The wav2vec 2.0 pre-training loss, as pure functions (fairseq ``Wav2Vec2Model.compute_preds``
and ``Wav2vecCriterion``).

Contrastive logits (:func:`contrastive_logits`): for a frame with context-network prediction
``c`` (after ``final_proj``), positive target ``q`` (its quantized, ``project_q``-ed feature) and
``K`` negatives ``q~_k``: ``[cos(c, q), cos(c, q~_1), ..., cos(c, q~_K)] / kappa`` (``kappa``:
fairseq ``logit_temp``, 0.1), computed in float32. fairseq's rule: a negative *identical* to
the positive gets ``-inf`` (it is not a distractor). Here "identical" is decided on the
quantizer's codes (equal codes in every group <=> equal target vectors; fairseq compares the
vectors bitwise, which gives the same answer since the straight-through one-hots are exactly
0 and 1), and sampling-invalid negatives (see :mod:`espnet_ext.wav2vec2.negatives`) get
``-inf`` too.

Loss (:func:`wav2vec2_loss`), exactly fairseq's ``Wav2vecCriterion`` with ``infonce=True`` and
``loss_weights = [alpha, beta]`` (BASE: ``[0.1, 10]``)::

    sample_size = M                                  (masked frames in the batch: target.numel())
    L_m   = sum over masked frames of CE(logits, 0)  (cross-entropy, positive at index 0, summed)
    L_d   = (G*V - prob_perplexity) / (G*V)          (model.get_extra_losses, first term)
    pen   = mean(features ** 2)                      (``features_pen``, second term)
    loss  = L_m + alpha * L_d * M + beta * pen * M

fairseq's trainer then divides the gradient by ``sample_size``; :attr:`PretrainingLoss.per_frame`
is ``loss / M`` (``= L_m / M + alpha * L_d + beta * pen``), what an ESPnet model returns with
weight ``M`` (ESPnet's distributed training then normalises by the total ``M`` over workers,
as fairseq). Hugging Face's ``Wav2Vec2ForPreTraining.loss`` is ``L_m + 0.1 * L_d * M``:
the same without the feature penalty.

Only torch is imported here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from espnet_ext.wav2vec2.negatives import Negatives


class ContrastiveLogits(NamedTuple):
    """What :func:`contrastive_logits` returns.

    Attributes:
        logits: ``(B, T, K + 1)`` float32, positive at index 0, ``-inf`` at excluded negatives.
        cosine: ``(B, T, K + 1)`` float32 cosine similarities (no temperature, no ``-inf``).
        negative_used: ``(B, T, K)`` bool, the negatives that are in the logits (not ``-inf``).
    """

    logits: Tensor
    cosine: Tensor
    negative_used: Tensor


def same_codes(codes: Tensor, indices: Tensor) -> Tensor:
    """``(B, T, K)`` bool: negative ``k`` of frame ``t`` has the same codes as frame ``t``.

    Args:
        codes: ``(B, T, G)`` quantizer codes (:attr:`QuantizerOutput.codes`).
        indices: ``(B, T, K)`` negative frames (:attr:`Negatives.indices`).
    """
    batch, steps, num = indices.shape
    groups = codes.size(-1)
    flat = indices.reshape(batch, steps * num, 1).expand(-1, -1, groups)
    picked = codes.gather(1, flat).view(batch, steps, num, groups)
    return (picked == codes.unsqueeze(2)).all(dim=-1)


def contrastive_logits(
    predictions: Tensor,
    targets: Tensor,
    negatives: Negatives,
    logit_temp: float = 0.1,
    same_as_positive: Tensor | None = None,
) -> ContrastiveLogits:
    """Cosine-similarity logits of every frame against its positive and its negatives.

    Args:
        predictions: ``(B, T, D)`` context-network outputs after ``final_proj`` (fairseq ``x``).
        targets: ``(B, T, D)`` targets after ``project_q`` (fairseq ``y``); negatives are
            other frames of the same utterance, ``targets[b, negatives.indices[b, t, k]]``.
        negatives: :class:`~espnet_ext.wav2vec2.negatives.Negatives`.
        logit_temp: ``kappa`` (fairseq ``logit_temp``).
        same_as_positive: ``(B, T, K)`` bool, negatives identical to the positive (-> ``-inf``),
            e.g. :func:`same_codes`; None: none.
    The similarities are one batched ``(B, T, T)`` product of unit vectors, gathered at the
    negatives' indices (not a ``(B, T, K, D)`` copy of the negatives), in float32 with autocast off.
    """
    if predictions.shape != targets.shape or predictions.dim() != 3:
        raise ValueError(
            f"predictions, targets: expected equal (B, T, D) shapes; found "
            f"{tuple(predictions.shape)} and {tuple(targets.shape)}"
        )
    if negatives.indices.shape[:2] != predictions.shape[:2]:
        raise ValueError(
            f"negatives: expected (B, T, K) with (B, T) = {tuple(predictions.shape[:2])}; "
            f"found {tuple(negatives.indices.shape)}"
        )
    with torch.autocast(device_type=predictions.device.type, enabled=False):
        pred = F.normalize(predictions.float(), dim=-1, eps=1e-8)
        targ = F.normalize(targets.float(), dim=-1, eps=1e-8)
        similarity = torch.bmm(pred, targ.transpose(1, 2))  # (B, T, T): frame t against target t'
        positive = similarity.diagonal(dim1=1, dim2=2).unsqueeze(-1)
        cosine = torch.cat([positive, similarity.gather(2, negatives.indices)], dim=-1)
    used = negatives.valid if same_as_positive is None else negatives.valid & ~same_as_positive
    excluded = torch.cat([torch.zeros_like(used[..., :1]), ~used], dim=-1)
    logits = (cosine / logit_temp).masked_fill(excluded, float("-inf"))
    return ContrastiveLogits(logits, cosine, used)


def contrastive_loss(logits: Tensor, mask: Tensor) -> Tensor:
    """``L_m``: cross-entropy with the positive at index 0, summed over frames where ``mask`` is True.

    Args:
        logits: ``(B, T, K + 1)`` from :func:`contrastive_logits`.
        mask: ``(B, T)`` bool, the frames scored (the masked frames).
    """
    nll = -torch.log_softmax(logits.float(), dim=-1)[..., 0]
    return torch.where(mask, nll, torch.zeros_like(nll)).sum()


def diversity_loss(prob_perplexity: Tensor, num_vars: int) -> Tensor:
    """``L_d = (G*V - prob_perplexity) / (G*V)`` (fairseq ``get_extra_losses``, first term)."""
    return (num_vars - prob_perplexity) / num_vars


class PretrainingLoss(NamedTuple):
    """What :func:`wav2vec2_loss` returns (fairseq's scaling, see the module docstring).

    Attributes:
        loss: scalar, ``L_m + alpha * L_d * M + beta * pen * M`` (fairseq's summed loss).
        contrastive: scalar, ``L_m`` summed over masked frames.
        diversity: scalar, ``L_d`` (unweighted, unscaled).
        feature_penalty: scalar, ``pen`` (unweighted, unscaled).
        sample_size: scalar long tensor, ``M`` (masked frames).
    """

    loss: Tensor
    contrastive: Tensor
    diversity: Tensor
    feature_penalty: Tensor
    sample_size: Tensor

    @property
    def per_frame(self) -> Tensor:
        """``loss / M`` (``M`` at least 1): the gradient fairseq applies, normalised by sample size."""
        return self.loss / self.sample_size.clamp(min=1)

    @property
    def contrastive_per_frame(self) -> Tensor:
        """``L_m / M`` (``log(K + 1)`` for uninformative predictions)."""
        return self.contrastive / self.sample_size.clamp(min=1)


def wav2vec2_loss(
    logits: Tensor,
    mask: Tensor,
    prob_perplexity: Tensor,
    num_vars: int,
    feature_penalty: Tensor,
    diversity_weight: float = 0.1,
    feature_penalty_weight: float = 10.0,
) -> PretrainingLoss:
    """fairseq's ``Wav2vecCriterion`` loss (see the module docstring).

    Args:
        logits: ``(B, T, K + 1)`` contrastive logits.
        mask: ``(B, T)`` bool, the masked frames (``sample_size`` is their count).
        prob_perplexity, num_vars: from the quantizer.
        feature_penalty: scalar, mean square of the extractor output.
        diversity_weight: ``alpha`` (fairseq ``loss_weights[0]``, BASE 0.1).
        feature_penalty_weight: ``beta`` (fairseq ``loss_weights[1]``, BASE 10).
    """
    sample_size = mask.sum()
    contrastive = contrastive_loss(logits, mask)
    diversity = diversity_loss(prob_perplexity.float(), num_vars)
    penalty = feature_penalty.float()
    scale = sample_size.to(contrastive.dtype)
    loss = contrastive + diversity_weight * diversity * scale + feature_penalty_weight * penalty * scale
    return PretrainingLoss(loss, contrastive, diversity, penalty, sample_size)


class ContrastiveStats(NamedTuple):
    """Monitoring values over the masked frames (fairseq's ``correct / count`` and more).

    Attributes:
        accuracy: fraction of masked frames whose positive has the highest logit (fairseq counts
            a frame where all logits are equal, argmax = argmin = 0, as wrong).
        sim_pos: mean cosine similarity of prediction and positive.
        sim_neg: mean cosine similarity of prediction and the negatives in the logits.
    """

    accuracy: Tensor
    sim_pos: Tensor
    sim_neg: Tensor


def contrastive_stats(scores: ContrastiveLogits, mask: Tensor) -> ContrastiveStats:
    """:class:`ContrastiveStats` of :func:`contrastive_logits` output over ``mask`` (no gradient)."""
    with torch.no_grad():
        logits = scores.logits
        frames = mask.to(logits.dtype)
        count = frames.sum().clamp(min=1)
        best = logits.argmax(dim=-1) == 0
        worst = logits.argmin(dim=-1) == 0
        accuracy = ((best & ~worst).to(logits.dtype) * frames).sum() / count
        sim_pos = (scores.cosine[..., 0] * frames).sum() / count
        used = scores.negative_used.to(logits.dtype) * frames.unsqueeze(-1)
        sim_neg = (scores.cosine[..., 1:] * used).sum() / used.sum().clamp(min=1)
    return ContrastiveStats(accuracy, sim_pos, sim_neg)
