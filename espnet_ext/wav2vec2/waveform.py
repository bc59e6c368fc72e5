"""Waveform normalization shared by pre-training and the fine-tuning frontend."""

from __future__ import annotations

import torch
from torch import Tensor


def normalize_waveforms(speech: Tensor, lengths: Tensor) -> Tensor:
    """Zero mean, unit variance per utterance over its valid samples; padding stays 0 (fairseq
    ``task.normalize``, ``F.layer_norm`` of each waveform).

    Args:
        speech: ``(B, L)`` float samples, zero-padded after ``lengths``.
        lengths: ``(B,)`` valid samples.
    """
    valid = (torch.arange(speech.size(1), device=speech.device) < lengths.unsqueeze(1)).to(speech.dtype)
    count = valid.sum(dim=1, keepdim=True).clamp(min=1)
    mean = (speech * valid).sum(dim=1, keepdim=True) / count
    var = (((speech - mean) * valid) ** 2).sum(dim=1, keepdim=True) / count
    return (speech - mean) * torch.rsqrt(var + 1e-5) * valid
