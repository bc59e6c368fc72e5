"""Dropout drawn from 16 random bits per unit: the CPU kernel of :class:`~espnet_ext.wav2vec2.modules.Dropout`.

Each unit is kept when its 16 bits (a quarter of a 64-bit word from the global generator) are
at least ``p`` of the way up their range: Bernoulli(1 - p) with ``p`` rounded to a multiple of
2^-16 (off by less than 8e-6), at ~1/5 of the cost of ``F.dropout``'s ``bernoulli_`` on CPU.
Kept units are scaled by ``1 / (1 - p)``. The draws differ from ``F.dropout``'s for the same seed
(seeding repeats them). Not used on other devices, for ``inplace``, in eval mode, inside
``torch.compile``; ``p`` of 0 or 1 (or within 2^-17 of them) falls back to ``F.dropout``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

_LEVELS = 1 << 16  # 16 random bits per unit


def _drop_level(p: float) -> int:
    """``p`` in units of 2^-16; 0 or 2^16 when the 16-bit path cannot draw it."""
    return min(max(round(p * _LEVELS), 0), _LEVELS)


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> Tensor:
    """Bool ``shape``, True with probability ``1 - p`` (``p`` rounded to a multiple of 2^-16)."""
    count = math.prod(shape)
    words = torch.empty((count + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(1 << 63), None)  # all 64 bits uniform (the default range leaves the top bit 0)
    bits = words.view(torch.int16)[:count].view(shape)
    return bits >= _drop_level(p) - _LEVELS // 2


class _ScaledMask(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, p: float) -> Tensor:  # type: ignore[override]
        scale = keep_mask(x.shape, p, x.device).to(x.dtype).mul_(1.0 / (1.0 - p))
        ctx.save_for_backward(scale)
        return x * scale

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (scale,) = ctx.saved_tensors
        return grad * scale, None


def scaled_mask_dropout(x: Tensor, p: float) -> Tensor:
    """Training-mode dropout of ``x`` with this module's mask (``F.dropout`` where it cannot draw ``p``)."""
    if not 0 < _drop_level(p) < _LEVELS:
        return F.dropout(x, p, training=True)
    return _ScaledMask.apply(x, p)


def dropout_kernel(module: nn.Dropout, x: Tensor) -> Tensor | None:
    """``module(x)`` with this module's mask, or None where the kernel does not apply."""
    if (
        not module.training or module.inplace or x.device.type != "cpu" or torch.compiler.is_compiling()
    ):  # a compiled graph fuses nn.Dropout's draws itself
        return None
    return scaled_mask_dropout(x, module.p)  # F.dropout for a p the 16 bits cannot draw
