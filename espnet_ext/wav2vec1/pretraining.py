"""wav2vec 1.0 pre-training: the network, the step-specific prediction head and the objective.

``python -m espnet_ext.bin.presets wav2vec1`` prints the presets' parameter counts.

:class:`Wav2Vec1Pretraining` is fairseq's ``Wav2VecModel`` (without the quantizer of vq-wav2vec)
with its ``wav2vec`` criterion: ``forward(waveforms, lengths)`` returns the loss summed over
predictions, their number, and monitoring statistics (:mod:`espnet_ext.wav2vec1.loss`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from espnet_ext.wav2vec1.config import Wav2Vec1Config, preset_config
from espnet_ext.wav2vec1.loss import (
    FutureScores,
    Wav2Vec1Loss,
    Wav2Vec1Stats,
    future_logits,
    wav2vec1_loss,
    wav2vec1_stats,
)
from espnet_ext.wav2vec1.model import Wav2Vec1Model, wav2vec1_model
from espnet_ext.wav2vec2.negatives import Negatives, sample_negatives


class StepPredictor(nn.Module):
    """The step-specific affine transforms ``h_k`` (fairseq ``project_to_steps``, a
    ``ConvTranspose2d(C, D, (1, K))``: a weight per step, one bias shared by all steps).

    ``(B, T, C)`` context -> ``(B, T, K, D)``. Initialised as PyTorch initialises that
    ``ConvTranspose2d``: weight and bias uniform in ``+-1 / sqrt(D * K)``.
    """

    def __init__(self, in_dim: int, out_dim: int, num_steps: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(out_dim * num_steps)
        self.weight = nn.Parameter(torch.empty(num_steps, out_dim, in_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_dim).uniform_(-bound, bound))

    @property
    def num_steps(self) -> int:
        return self.weight.size(0)

    def forward(self, context: Tensor) -> Tensor:
        steps, out_dim, in_dim = self.weight.shape
        projected = torch.matmul(context, self.weight.reshape(steps * out_dim, in_dim).t())
        return projected.view(*context.shape[:-1], steps, out_dim) + self.bias


class PretrainingOutput(NamedTuple):
    """What :class:`Wav2Vec1Pretraining` returns: loss, statistics, the logits, the distractors
    drawn (``(B, T, N)`` frame indices per target frame) and the valid frames ``(B,)``."""

    loss: Wav2Vec1Loss
    stats: Wav2Vec1Stats
    scores: FutureScores
    negatives: Negatives
    lengths: Tensor


class Wav2Vec1Pretraining(nn.Module):
    """Network + prediction head + objective (see the module docstring).

    Args:
        backbone: the encoder and context network.
        predictor: the step-specific transforms (context width -> encoder width, K steps).
    """

    def __init__(self, backbone: Wav2Vec1Model, predictor: StepPredictor) -> None:
        super().__init__()
        config = backbone.config
        if predictor.num_steps != config.prediction_steps:
            raise ValueError(
                f"predictor: expected {config.prediction_steps} steps (prediction_steps); found {predictor.num_steps}"
            )
        self.backbone, self.predictor = backbone, predictor
        self.dropout = nn.Dropout(config.dropout)  # fairseq applies cfg.dropout after project_to_steps

    @property
    def config(self) -> Wav2Vec1Config:
        return self.backbone.config

    def forward(
        self, waveforms: Tensor, lengths: Tensor | None = None, generator: torch.Generator | None = None
    ) -> PretrainingOutput:
        """``(B, L)`` samples zero-padded after ``lengths`` ``(B,)`` (None: unpadded) -> :class:`PretrainingOutput`.

        ``generator`` draws the distractors (default: torch's global generator).
        """
        if lengths is None:
            lengths = torch.full((waveforms.size(0),), waveforms.size(1), dtype=torch.long, device=waveforms.device)
        out = self.backbone(waveforms, lengths)
        config = self.config
        predictions = self.dropout(self.predictor(out.context))
        steps = out.features.size(1)
        valid_frames = torch.arange(steps, device=waveforms.device).unsqueeze(0) < out.lengths.unsqueeze(1)
        negatives = sample_negatives(valid_frames, config.num_negatives, generator)
        scores = future_logits(predictions, out.features, negatives, out.lengths, config.offset_frames)
        loss = wav2vec1_loss(scores, config.infonce, config.balanced_classes)
        return PretrainingOutput(loss, wav2vec1_stats(scores), scores, negatives, out.lengths)


def wav2vec1_pretraining(config: Wav2Vec1Config | str) -> Wav2Vec1Pretraining:
    """A randomly initialised pre-training model from a config or preset name."""
    if isinstance(config, str):
        config = preset_config(config)
    predictor = StepPredictor(config.context_dim, config.encoder_dim, config.prediction_steps)
    return Wav2Vec1Pretraining(wav2vec1_model(config), predictor)


def parameter_count(config: Wav2Vec1Config) -> tuple[int, int]:
    """``(backbone, prediction head)`` parameter counts (built on the meta device)."""
    with torch.device("meta"):
        model = wav2vec1_pretraining(config)
    return (sum(p.numel() for p in model.backbone.parameters()), sum(p.numel() for p in model.predictor.parameters()))
