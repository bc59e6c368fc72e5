"""Dropout with a faster CPU path (the backbone's dropout layers use it).

On CPU, ``torch.nn.functional.dropout`` draws its mask with ``bernoulli_``, which costs about
twice what drawing uniforms and comparing them does (both are single-threaded: one generator);
in a BASE fine-tuning step on 2 cores the dropout layers took ~10% of the time. Here a unit is
kept when a uniform draw is at least ``p`` (the same Bernoulli(1 - p) distribution) and the
kept units are scaled by ``1 / (1 - p)``; the scaled mask is saved for the backward pass, which
is one multiplication. The draws differ from ``F.dropout``'s for the same seed; on other devices,
for ``inplace`` or ``p`` of 0 or 1, and inside ``torch.compile``, ``nn.Dropout`` runs unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _ScaledMask(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, p: float) -> Tensor:  # type: ignore[override]
        scale = (torch.rand(x.shape, device=x.device) >= p).to(x.dtype).mul_(1.0 / (1.0 - p))
        ctx.save_for_backward(scale)
        return x * scale

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (scale,) = ctx.saved_tensors
        return grad * scale, None


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments, same state) with the CPU path described in the module docstring."""

    def forward(self, x: Tensor) -> Tensor:
        if (not self.training or self.inplace or not 0.0 < self.p < 1.0 or x.device.type != "cpu"
                or torch.compiler.is_compiling()):  # a compiled graph fuses nn.Dropout's draws itself
            return super().forward(x)
        return _ScaledMask.apply(x, self.p)
