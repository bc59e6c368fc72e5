"""Convolutions as GEMMs on strided views of channels-last activations, with a fused input GELU.

:class:`StridedConv` is ``Conv1d`` (no padding, dilation 1) of ``x`` or ``GELU(x)`` on
``(B, T, C)`` activations; the extractor kernel (:mod:`.extractor`) chains one per layer.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

#: Values of ``GELU(x)`` computed at a time inside a convolution (see ``_activated_views``):
#: bounds the memory of large activations; small ones take one GELU (fewer ops).
_GELU_CHUNK = 1 << 22

#: Layers whose window (``in_channels * kernel``) is at most this many values copy their
#: windows into one matrix (the first layer: one GEMM, a small copy); wider ones use
#: strided views.
_IM2COL_MAX_WINDOW = 16


def _frame_views(x: Tensor, kernel: int, stride: int, frames: int) -> list[Tensor]:
    """Windows of ``x`` ``(B, L, C)`` (contiguous) as strided views, without copying.

    Output frame ``t`` reads samples ``t * stride + j`` for taps ``j < kernel``; taps are
    grouped in blocks of ``stride`` consecutive ones, so block ``q`` of every frame is
    ``taps_q * C`` contiguous values and one ``(B, frames, taps_q * C)`` view (row stride
    ``stride * C``, a valid GEMM leading dimension) holds it for all frames.
    """
    batch, length, channels = x.shape
    views = []
    for first in range(0, kernel, stride):
        taps = min(stride, kernel - first)
        views.append(
            x.as_strided(
                (batch, frames, taps * channels),
                (length * channels, stride * channels, 1),
                x.storage_offset() + first * channels,
            )
        )
    return views


def weight_blocks(weight: Tensor, stride: int) -> list[Tensor]:
    """``(C_out, C_in, K)`` -> per tap block of :func:`_frame_views`, contiguous ``(C_out, taps_q * C_in)``."""
    taps_last = weight.permute(0, 2, 1)  # (C_out, K, C_in): a window's values in memory order
    return [
        taps_last[:, first : first + stride].reshape(weight.size(0), -1) for first in range(0, weight.size(2), stride)
    ]


def narrow(x: Tensor, weight: Tensor) -> bool:
    """Whether a window (``C_in * K`` values) is narrow enough to copy (see ``_IM2COL_MAX_WINDOW``)."""
    return x.size(2) * weight.size(2) <= _IM2COL_MAX_WINDOW


def copy_windows(x: Tensor, kernel: int, stride: int, pitch: int, ones: bool = False) -> Tensor:
    """``(B, pitch, C_in * K)``: a copy of every window of ``x`` ``(B, L, C_in)`` (tap-major), then
    zero rows; with a last column of ones (zero on those rows) if ``ones``."""
    frames = (x.size(1) - kernel) // stride + 1
    views = _frame_views(x.contiguous(), kernel, stride, frames)
    if ones:
        views.append(x.new_ones(1, 1, 1).expand(x.size(0), frames, 1))
    windows = x.new_zeros(x.size(0), pitch, sum(view.size(2) for view in views))
    column = 0
    for view in views:
        windows[:, :frames, column : column + view.size(2)] = view
        column += view.size(2)
    return windows


def _pitched_views(x: Tensor, kernel: int, stride: int) -> list[Tensor]:
    """Per tap block (as :func:`_frame_views`), a 2-D view of the windows of a pitched ``x``, without copying.

    ``x`` is ``(B, P, C)`` with ``P`` a multiple of ``stride`` (utterance ``b``'s frames are rows
    ``b * P ...``, its valid ones first). Row ``r = b * P / stride + t`` of block ``q``'s
    ``(B * P / stride - q, taps_q * C)`` view holds output frame ``t``'s taps ``q * stride ...``:
    one GEMM covers the whole batch. Output frames past an utterance's last full window
    read into the next utterance: they are junk, like every frame past ``T_k`` of a layer.
    """
    batch, pitch, channels = x.shape
    rows = batch * pitch // stride
    views = []
    for q, first in enumerate(range(0, kernel, stride)):
        taps = min(stride, kernel - first)
        views.append(
            x.as_strided((rows - q, taps * channels), (stride * channels, 1), x.storage_offset() + first * channels)
        )
    return views


class StridedConv(torch.autograd.Function):
    """``Conv1d`` (no padding, dilation 1) on channels-last, pitched activations, of ``GELU(x)``
    when ``gelu_input`` (the previous layer's activation, fused here).

    ``x`` is ``(B, stride * pitch, C_in)`` (pitched: see :func:`_pitched_views`), or any
    ``(B, L, C_in)`` when the window is narrow (the first layer: windows are copied, zero
    rows after the last frame); the output is ``(B, pitch, C_out)``. Per tap block ``q``,
    ``Y += X_q W_q``, ``dW_q = X_q^T dY`` and ``dX_q += dY W_q^T`` are single GEMMs over the
    batch, the last written through the views of ``dX``, which is then multiplied by GELU's
    derivative in place. Rows past an utterance's frames get zero gradients (the extractor
    drops them), so the junk they hold never reaches ``dW``.

    Memory is what costs on CPU (a new activation-sized tensor costs about as much in page
    faults as a GELU does to compute): for large ``x`` only ``x`` is kept for the backward
    pass, which recomputes ``GELU(x)`` chunk by chunk; small ones keep ``GELU(x)`` too.
    Operands are laid out as MKL's fast kernels want them (a transposed weight view, or
    ``dY^T X`` instead of ``(X^T dY)^T``, costs up to 8x here).
    """

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        stride: int,  # type: ignore[override]
        gelu_input: bool,
        pitch: int,
    ) -> Tensor:
        x = x.contiguous()
        kernel, out_channels = weight.size(2), weight.size(0)
        activated = None  # GELU(x), when kept for the backward pass
        if narrow(x, weight):
            windows = copy_windows(F.gelu(x) if gelu_input else x, kernel, stride, pitch).view(x.size(0) * pitch, -1)
            y = F.linear(windows, torch.cat(weight_blocks(weight, stride), dim=1), bias)
        else:
            assert x.size(1) == stride * pitch, "pitched input expected"
            blocks = [block.t().contiguous() for block in weight_blocks(weight, stride)]
            y = x.new_empty(x.size(0) * pitch, out_channels)
            if gelu_input and x.numel() <= _GELU_CHUNK:  # small: GELU(x) at once, and kept
                activated = F.gelu(x)
            for first, views in _activated_views(
                x if activated is None else activated, kernel, stride, gelu_input and activated is None
            ):
                for q, view in enumerate(views):
                    y[first : first + view.size(0)].addmm_(view, blocks[q], beta=0.0 if q == 0 else 1.0)
            if bias is not None:
                y += bias
        ctx.stride, ctx.has_bias, ctx.gelu_input = stride, bias is not None, gelu_input
        ctx.save_for_backward(x, weight, activated)
        return y.view(x.size(0), pitch, out_channels)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, weight, activated = ctx.saved_tensors
        stride, (out_channels, in_channels, kernel) = ctx.stride, weight.shape
        grad = grad.contiguous()
        rows = grad.view(-1, out_channels)
        grad_x = grad_w = grad_b = None
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = torch.mv(rows.t(), rows.new_ones(rows.size(0)))
        if ctx.needs_input_grad[1]:
            if narrow(x, weight):
                windows = copy_windows(F.gelu(x) if ctx.gelu_input else x, kernel, stride, grad.size(1))
                taps = torch.mm(windows.view(rows.size(0), -1).t(), rows)
            else:
                blocks = [
                    rows.new_zeros(min(stride, kernel - first) * in_channels, out_channels)
                    for first in range(0, kernel, stride)
                ]
                for first, views in _activated_views(
                    x if activated is None else activated, kernel, stride, ctx.gelu_input and activated is None
                ):
                    for block, view in zip(blocks, views):
                        block.addmm_(view.t(), rows[first : first + view.size(0)])
                taps = torch.cat(blocks)
            grad_w = taps.t().reshape(out_channels, kernel, in_channels).permute(0, 2, 1)
        if ctx.needs_input_grad[0]:
            grad_x = strided_conv_input_grad(grad, weight, stride, x.shape, pitched=not narrow(x, weight))
            if ctx.gelu_input:
                torch.ops.aten.gelu_backward.grad_input(grad_x, x, grad_input=grad_x)
        return grad_x, grad_w, grad_b, None, None, None


def _activated_views(x: Tensor, kernel: int, stride: int, gelu: bool) -> Iterator[tuple[int, list[Tensor]]]:
    """``(first, views)``: :func:`_pitched_views` of ``GELU(x)`` (or ``x``), a few output rows at a time.

    ``views[q]`` covers output rows ``first ...`` (fewer rows for later blocks at the very
    end). For large activations ``GELU(x)`` is computed chunk by chunk into one buffer
    (``_GELU_CHUNK`` values): it never exists whole.
    """
    if not gelu:
        yield 0, _pitched_views(x, kernel, stride)
        return
    batch, pitch, channels = x.shape
    rows, blocks = batch * pitch // stride, -(-kernel // stride)
    source = x.view(-1, stride * channels)  # row r: samples r * stride ... of the flattened batch
    chunk = max(1, _GELU_CHUNK // (stride * channels))
    buffer = x.new_empty(min(rows, chunk + blocks - 1), stride * channels)
    for first in range(0, rows, chunk):
        last = min(rows, first + chunk + blocks - 1)
        slab = torch.ops.aten.gelu.out(source[first:last], out=buffer[: last - first])
        views = [
            view[: min(chunk, view.size(0))] for view in _pitched_views(slab.view(1, -1, channels), kernel, stride)
        ]
        yield first, views


def strided_conv_input_grad(grad: Tensor, weight: Tensor, stride: int, shape: torch.Size, pitched: bool) -> Tensor:
    """``dX`` of :class:`StridedConv` (``grad``: ``(B, pitch, C_out)``), block by block into views of ``dX``."""
    grad_x = grad.new_empty(shape)
    blocks = weight_blocks(weight, stride)  # (C_out, taps_q * C_in)
    kernel = weight.size(2)
    if kernel < stride:  # the first tap block leaves gaps
        grad_x.zero_()
    if pitched:
        rows = grad.reshape(-1, grad.size(2))
        for q, view in enumerate(_pitched_views(grad_x, kernel, stride)):
            view.addmm_(rows[: view.size(0)], blocks[q], beta=0.0 if q == 0 and kernel >= stride else 1.0)
        return grad_x
    frames = (shape[1] - kernel) // stride + 1
    if kernel >= stride:  # the first tap block writes every sample up to stride * frames
        grad_x[:, stride * frames :].zero_()
    for b in range(shape[0]):
        views = _frame_views(grad_x[b : b + 1], kernel, stride, frames)
        for q, view in enumerate(views):
            view[0].addmm_(grad[b, :frames], blocks[q], beta=0.0 if q == 0 and kernel >= stride else 1.0)
    return grad_x
