"""Attention with dropout on CPU: the kernel of :class:`~espnet_ext.wav2vec2.transformer.MultiheadAttention`.

``scaled_dot_product_attention`` has no fused CPU kernel with dropout; its math path checks for
fully masked rows and draws the mask with ``bernoulli_``. Here the same computation is written
out with :func:`~espnet_ext.wav2vec2.cpu_kernels.dropout.scaled_mask_dropout` (the same
distribution, other draws, ~3x cheaper); without the dropout the numbers are SDPA's math
path's, bit for bit.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from espnet_ext.wav2vec2.cpu_kernels.dropout import scaled_mask_dropout


def attention_with_dropout(q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None, dropout: float) -> Tensor:
    """SDPA's math path with this project's dropout; ``attn_mask`` must let every row attend to some key."""
    scale = math.sqrt(1.0 / math.sqrt(q.size(-1)))  # on q and on k, as SDPA's math path scales them
    scores = torch.matmul(q * scale, k.transpose(-2, -1) * scale)
    if attn_mask is not None:
        scores = scores.masked_fill_(~attn_mask, float("-inf"))
    return torch.matmul(scaled_mask_dropout(torch.softmax(scores, dim=-1), dropout), v)


def attention_kernel(
    module: nn.Module, q: Tensor, k: Tensor, v: Tensor, attn_mask: Tensor | None, dropout: float
) -> Tensor | None:
    """``(B, H, T, D)`` attention of ``q`` over ``k``, ``v`` with dropout on CPU, or None where the
    kernel does not apply (no dropout, other devices, ``torch.compile``, a row with no key)."""
    if (
        dropout > 0
        and q.device.type == "cpu"
        and not torch.compiler.is_compiling()
        and (attn_mask is None or bool(attn_mask.any(-1).all()))
    ):
        return attention_with_dropout(q, k, v, attn_mask, dropout)
    return None
