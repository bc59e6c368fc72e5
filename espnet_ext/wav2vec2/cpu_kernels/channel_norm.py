"""GroupNorm with one group per channel on channels-last activations, statistics over valid frames.

:class:`ConvChannelNorm` fuses the first layer's narrow convolution with its GroupNorm;
:class:`ChannelNorm` normalises a ``(B, T, C)`` convolution output. Both compute what
``espnet_ext.wav2vec2.modules._masked_channel_norm`` (``nn.GroupNorm`` without padding)
computes on ``(B, C, T)``.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from espnet_ext.wav2vec2.cpu_kernels.gemm_conv import copy_windows, strided_conv_input_grad, weight_blocks


class ConvChannelNorm(torch.autograd.Function):
    """A narrow-window ``Conv1d`` followed by GroupNorm (one group per channel, statistics over
    the first ``counts[b]`` frames), on channels-last input: one GEMM forward, one backward.

    With ``w_t`` frame ``t``'s window and a 1 (for the bias), the convolution is ``y_t = V w_t``
    (``V = [W | bias]``). Its sum and sum of squares over an utterance's valid frames are
    ``V s`` and ``diag(V G V^T)``, with ``s`` and ``G`` the windows' sum and Gram matrix (in
    float64, exact enough that no pass over ``y`` is needed), and the normalised output
    ``(y - mean) * rstd * gamma + beta`` is one GEMM with per-utterance weights. The backward
    pass needs only ``sum_t dz_t w_t^T`` (one GEMM); the rest is ``(C, K)``-sized algebra.
    Padded frames are normalised with their utterance's statistics, as in the plain path.
    """

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        stride: int,  # type: ignore[override]
        pitch: int,
        counts: list[int],
        norm_weight: Tensor | None,
        norm_bias: Tensor | None,
        eps: float,
    ) -> Tensor:
        windows = copy_windows(x, weight.size(2), stride, pitch, ones=True)  # (B, pitch, K + 1)
        valid = windows.double()
        valid_frames = _valid_frames(counts, valid)
        if valid_frames is not None:
            valid.mul_(valid_frames)
        gram = torch.bmm(valid.transpose(1, 2), valid)  # (B, K + 1, K + 1), over valid frames
        del valid
        extended = torch.cat(weight_blocks(weight, stride) + [_bias_column(weight, bias)], dim=1).double()
        count = gram[:, -1, -1].unsqueeze(1)  # (B, 1): valid frames
        inv_count = torch.where(count > 0, 1.0 / count.clamp(min=1), 0.0)
        mean = (gram[:, :, -1].unsqueeze(1) * extended).sum(-1) * inv_count  # (B, C)
        square = (torch.matmul(extended, gram) * extended).sum(-1) * inv_count
        rstd = torch.rsqrt((square - mean.square()).clamp(min=0) + eps)
        gamma = _or_ones(norm_weight, rstd)
        scale = rstd * gamma
        fused = extended * scale.unsqueeze(2)  # (B, C, K + 1): the ones column carries the shift
        fused[:, :, -1] += (0.0 if norm_bias is None else norm_bias.double()) - mean * scale
        z = torch.bmm(windows, fused.transpose(1, 2).to(x.dtype).contiguous())
        ctx.stride, ctx.has_bias, ctx.shape = stride, bias is not None, x.shape
        ctx.save_for_backward(windows, gram, extended, mean, rstd, gamma, inv_count, weight)
        return z

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        windows, gram, extended, mean, rstd, gamma, inv_count, weight = ctx.saved_tensors
        grad = grad.contiguous()
        moments = torch.bmm(windows.transpose(1, 2), grad).transpose(1, 2).double()  # (B, C, K + 1)
        sum_g = moments[:, :, -1]  # sum_t dz
        sum_g_xhat = rstd * ((moments * extended).sum(-1) - mean * sum_g)  # sum_t dz (y - mean) rstd
        # dy_t = s1 dz_t + [t valid] (s2 y_t + s3): GroupNorm's input gradient
        s1 = gamma * rstd
        s2 = -s1 * rstd * sum_g_xhat * inv_count
        s3 = -s1 * sum_g * inv_count - mean * s2
        grad_ext = None
        if any(ctx.needs_input_grad[:3]):
            # sum_t dy_t [w_t; 1]^T, with sum over valid t of y_t [w_t; 1]^T = V G
            grad_ext = (
                s1.unsqueeze(2) * moments
                + s2.unsqueeze(2) * torch.matmul(extended, gram)
                + s3.unsqueeze(2) * gram[:, -1].unsqueeze(1)
            ).sum(0)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _conv_norm_input_grad(grad, windows, extended, (s1, s2, s3), gram, weight, ctx.stride, ctx.shape)
        if ctx.needs_input_grad[1]:
            out_channels, in_channels, kernel = weight.shape
            grad_w = grad_ext[:, :-1].reshape(out_channels, kernel, in_channels).permute(0, 2, 1).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad_ext[:, -1].to(weight.dtype)
        grad_gamma = sum_g_xhat.sum(0).to(grad.dtype) if ctx.needs_input_grad[6] else None
        grad_beta = sum_g.sum(0).to(grad.dtype) if ctx.needs_input_grad[7] else None
        return grad_x, grad_w, grad_b, None, None, None, grad_gamma, grad_beta, None


def _bias_column(weight: Tensor, bias: Tensor | None) -> Tensor:
    """``(C_out, 1)``: the bias, or zeros."""
    return weight.new_zeros(weight.size(0), 1) if bias is None else bias.unsqueeze(1)


def _or_ones(weight: Tensor | None, like: Tensor) -> Tensor:
    """``weight`` as ``like``'s dtype, or ones (a norm without affine parameters)."""
    return torch.ones_like(like[0]) if weight is None else weight.to(like.dtype)


def _conv_norm_input_grad(
    grad: Tensor,
    windows: Tensor,
    extended: Tensor,
    coefs: tuple[Tensor, Tensor, Tensor],
    gram: Tensor,
    weight: Tensor,
    stride: int,
    shape: torch.Size,
) -> Tensor:
    """The input gradient of :class:`ConvChannelNorm` (rarely needed): ``dy`` explicitly, then ``dX``."""
    s1, s2, s3 = coefs
    counts = gram[:, -1, -1].round().long().tolist()
    y = torch.bmm(windows, extended.t().to(windows.dtype).expand(windows.size(0), -1, -1))
    valid = _valid_frames(counts, y)
    y = torch.addcmul(s3.unsqueeze(1).to(y.dtype), y, s2.unsqueeze(1).to(y.dtype))
    if valid is not None:
        y.mul_(valid)
    y.addcmul_(grad, s1.unsqueeze(1).to(y.dtype))
    return strided_conv_input_grad(y, weight, stride, shape, pitched=False)


def _frame_sums(x: Tensor, weights: Tensor) -> Tensor:
    """``sum_t weights[b, t] x[b, t, :]``: ``(B, T, C)``, ``(B, T)`` -> ``(B, C)``, as a GEMV.

    (A GEMV is several times faster on CPU than ``sum`` over the non-contiguous time dimension.)
    """
    return torch.bmm(weights.unsqueeze(1), x).squeeze(1)


class ChannelNorm(torch.autograd.Function):
    """``modules._masked_channel_norm`` on channels-last ``(B, T, C)``, statistics over ``counts[b]`` frames.

    Every frame (padding too) is normalised with its utterance's statistics, as in the plain
    path, and the backward pass is the closed form of that (padded frames' gradients reach the
    statistics too). ``counts[b] == 0`` gives mean 0 and variance 0, as the plain path does.
    Statistics are two-pass (mean, then mean square deviation) like the plain path's; the
    deviations are computed in the output buffer, so the only new tensor is the output.
    """

    @staticmethod
    def forward(
        ctx,
        x: Tensor,
        counts: list[int],
        weight: Tensor | None,  # type: ignore[override]
        bias: Tensor | None,
        eps: float,
    ) -> Tensor:
        valid = _valid_frames(counts, x)  # (B, T, 1), or None when nothing is padded
        average = _mean_weights(counts, x)
        mean = _frame_sums(x, average)
        out = torch.sub(x, mean.unsqueeze(1), out=torch.empty_like(x)).square_()
        rstd = torch.rsqrt(_frame_sums(out, average) + eps)
        scale = rstd if weight is None else rstd * weight
        shift = -mean * scale if bias is None else bias - mean * scale
        torch.addcmul(shift.unsqueeze(1), x, scale.unsqueeze(1), out=out)
        ctx.save_for_backward(x, mean, rstd, weight, valid, average.amax(1, keepdim=True))
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, mean, rstd, weight, valid, inv_count = ctx.saved_tensors  # inv_count: (B, 1), 1 / n (0 at n = 0)
        grad = grad.contiguous()
        ones = x.new_ones(x.shape[:2])
        sum_g = _frame_sums(grad, ones)  # over all frames: padded outputs depend on the statistics too
        grad_x = torch.mul(grad, x, out=torch.empty_like(x))
        sum_g_xhat = rstd * (_frame_sums(grad_x, ones) - mean * sum_g)
        grad_w = sum_g_xhat.sum(0) if weight is not None and ctx.needs_input_grad[2] else None
        grad_b = sum_g.sum(0) if ctx.needs_input_grad[3] else None
        if not ctx.needs_input_grad[0]:
            return None, None, grad_w, grad_b, None
        # dx = w r g - [t valid] (r / n) (sum(w g) + xhat_t sum(w g xhat)), per utterance and channel
        scale = rstd if weight is None else rstd * weight
        coef_x = -scale * rstd * sum_g_xhat * inv_count
        coef_1 = -scale * sum_g * inv_count - mean * coef_x
        torch.addcmul(coef_1.unsqueeze(1), x, coef_x.unsqueeze(1), out=grad_x)
        if valid is not None:
            grad_x.mul_(valid)
        grad_x.addcmul_(grad, scale.unsqueeze(1))
        return grad_x, None, grad_w, grad_b, None


def _valid_frames(counts: list[int], x: Tensor) -> Tensor | None:
    """``(B, T, 1)``: 1 on the first ``counts[b]`` frames, 0 after; None when no frame is padding."""
    if min(counts) >= x.size(1):
        return None
    steps = torch.arange(x.size(1), device=x.device)
    return (steps < torch.tensor(counts, device=x.device).unsqueeze(1)).to(x.dtype).unsqueeze(2)


def _mean_weights(counts: list[int], x: Tensor) -> Tensor:
    """``(B, T)``: ``1 / counts[b]`` on the first ``counts[b]`` frames, 0 after."""
    steps = torch.arange(x.size(1), device=x.device)
    count = torch.tensor(counts, device=x.device).unsqueeze(1)
    return torch.where(steps < count, 1.0 / count.clamp(min=1).to(x.dtype), 0.0).to(x.dtype)
