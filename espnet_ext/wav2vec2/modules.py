"""Feature extractor of wav2vec 2.0 and the arithmetic of its output lengths (torch only).

The convolutional feature extractor turns a waveform ``(B, L)`` into frames ``(B, T, C)``;
:func:`conv_output_lengths` is the one place that computes ``T`` from ``L`` (per layer
``(L - kernel) // stride + 1``, 0 once the input is shorter than the kernel), and
:func:`lengths_to_padding_mask` turns lengths into fairseq's padding mask (frame ``t`` of
utterance ``b`` is padding iff ``t >= lengths[b]``).

**Deviation from fairseq (padded batches only).** In ``"default"`` mode the first layer's
GroupNorm (one group per channel) normalises each channel over time. fairseq (and Hugging
Face) take those statistics over the whole padded length, so an utterance's features
depend on how much padding its batch has. Here, when ``lengths`` are given and some
utterance is padded, the statistics are taken over that utterance's valid frames only:
a padded batch gives, on the valid frames, exactly the per-utterance output (which is
what a model pre-trained on unpadded crops saw). Without padding the result is fairseq's.

**CPU fast path.** For float32 CPU input (outside autocast) :class:`ConvFeatureExtractor`
computes the same function (every frame, padding included, and every gradient, up to
float32 summation order) through channels-last GEMMs with fused GELUs and a fused first
layer + GroupNorm, and runs zero-padded utterances on trimmed waveforms when that saves
enough work; see the "CPU fast path" section below and ``python -m espnet_ext.bench
extractor``. ``extractor.fast_path = False`` forces the plain path (CUDA always uses it).
"""

from __future__ import annotations

from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from espnet_ext.wav2vec2.dropout import Dropout

ConvLayer = Tuple[int, int, int]


# ---------------------------------------------------------------------------- lengths
def conv_output_lengths(lengths: Union[Tensor, int], conv_layers: Sequence[ConvLayer]) -> Union[Tensor, int]:
    """Number of frames the feature extractor gives for ``lengths`` samples.

    Args:
        lengths: sample counts, a ``(B,)`` integer tensor or an ``int``.
        conv_layers: ``(dim, kernel, stride)`` per layer (fairseq's ``conv_feature_layers``).
    Returns:
        Frame counts, same type (and for tensors, shape) as ``lengths``: per layer
        ``(L - kernel) // stride + 1``, clamped at 0 (fairseq's ``_get_feat_extract_output_lengths``
        for inputs at least one receptive field long).
    """
    for _, kernel, stride in conv_layers:
        if isinstance(lengths, Tensor):
            lengths = torch.clamp(torch.div(lengths - kernel, stride, rounding_mode="floor") + 1, min=0)
        else:
            lengths = max(0, (lengths - kernel) // stride + 1)
    return lengths


def receptive_field(conv_layers: Sequence[ConvLayer]) -> int:
    """Samples one output frame sees: the shortest input that yields a frame (400 for fairseq's stack)."""
    field, jump = 1, 1
    for _, kernel, stride in conv_layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field


def lengths_to_padding_mask(lengths: Tensor, max_length: int) -> Tensor:
    """``(B,)`` lengths -> ``(B, max_length)`` bool mask, True at padding (``t >= lengths[b]``)."""
    steps = torch.arange(max_length, device=lengths.device)
    return steps.unsqueeze(0) >= lengths.unsqueeze(1)


# ---------------------------------------------------------------------------- gradient scaling
class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return grad * ctx.scale, None


def scale_grad(x: Tensor, scale: float) -> Tensor:
    """Identity in the forward pass; multiplies the gradient by ``scale`` (fairseq's ``GradMultiply``)."""
    if scale == 1.0 or not x.requires_grad:
        return x
    return _ScaleGrad.apply(x, scale)


# ---------------------------------------------------------------------------- activations
def activation(name: str) -> nn.Module:
    """fairseq's ``activation_fn`` by name (``gelu`` is exact; ``gelu_accurate`` the tanh form)."""
    if name == "gelu":
        return nn.GELU()
    if name in ("gelu_accurate", "gelu_fast", "gelu_new"):
        return nn.GELU(approximate="tanh")
    modules = {"relu": nn.ReLU, "swish": nn.SiLU, "silu": nn.SiLU, "tanh": nn.Tanh, "linear": nn.Identity}
    if name not in modules:
        raise ValueError(f"activation_fn: expected one of gelu, gelu_accurate, {', '.join(modules)}; found {name!r}")
    return modules[name]()


# ---------------------------------------------------------------------------- feature extractor
def _masked_channel_norm(x: Tensor, lengths: Tensor, norm: nn.GroupNorm) -> Tensor:
    """GroupNorm with one group per channel, statistics over the first ``lengths[b]`` frames.

    Args:
        x: ``(B, C, T)``; lengths: ``(B,)`` valid frames (0 gives finite, meaningless output).
    Statistics are computed in float32 whatever ``x``'s dtype (as fairseq's ``Fp32GroupNorm``).
    """
    xf = x.float()
    valid = (~lengths_to_padding_mask(lengths, x.size(-1))).unsqueeze(1).float()  # (B, 1, T)
    count = valid.sum(-1, keepdim=True).clamp(min=1)
    mean = (xf * valid).sum(-1, keepdim=True) / count
    centered = xf - mean
    var = (centered.square() * valid).sum(-1, keepdim=True) / count
    out = centered * torch.rsqrt(var + norm.eps)
    if norm.affine:
        out = out * norm.weight.float().view(1, -1, 1) + norm.bias.float().view(1, -1, 1)
    return out.to(x.dtype)


# ---------------------------------------------------------------------------- CPU fast path
# On CPU the extractor dominates a wav2vec 2.0 step, and the plain path is slow there:
# oneDNN runs the first layer (one input channel) and every input gradient of a strided
# Conv1d poorly (the latter ~10x its forward), and each new activation-sized tensor costs
# as much in page faults as the arithmetic on it. The fast path keeps activations
# channels-last ``(B, T, C)``, runs each convolution as GEMMs on strided views of its input
# (no im2col copy), fuses every layer's GELU into the next layer's convolution (its
# derivative is applied in place to the convolution's input gradient), and fuses the
# first layer's convolution with its GroupNorm into one GEMM each way (statistics from the
# windows' Gram matrix). It computes the plain path's function (summation order aside) and
# is used for float32 CPU tensors outside autocast; on CUDA, cuDNN's convolutions are fast,
# and the plain path stays.

#: Padded utterances run on trimmed waveforms only when each extra run saves at least this
#: many forward multiply-adds (see ``ConvFeatureExtractor._trimmed_groups``).
_TRIM_MIN_MACS = 2e8

#: Values of ``GELU(x)`` computed at a time inside a convolution (see ``_activated_views``):
#: bounds the memory of large activations; small ones take one GELU (fewer ops).
_GELU_CHUNK = 1 << 22

#: Layers whose window (``in_channels * kernel``) is at most this many values copy their
#: windows into one matrix (the first layer: one GEMM, a small copy); wider ones use
#: strided views.
_IM2COL_MAX_WINDOW = 16


def _fast_path_applies(x: Tensor) -> bool:
    """Whether the channels-last GEMM path is used for ``x`` (float32 on CPU, no autocast)."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")


def _frame_views(x: Tensor, kernel: int, stride: int, frames: int) -> List[Tensor]:
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
        views.append(x.as_strided((batch, frames, taps * channels), (length * channels, stride * channels, 1),
                                  x.storage_offset() + first * channels))
    return views


def _weight_blocks(weight: Tensor, stride: int) -> List[Tensor]:
    """``(C_out, C_in, K)`` -> per tap block of :func:`_frame_views`, contiguous ``(C_out, taps_q * C_in)``."""
    taps_last = weight.permute(0, 2, 1)  # (C_out, K, C_in): a window's values in memory order
    return [taps_last[:, first:first + stride].reshape(weight.size(0), -1)
            for first in range(0, weight.size(2), stride)]


def _narrow(x: Tensor, weight: Tensor) -> bool:
    """Whether a window (``C_in * K`` values) is narrow enough to copy (see ``_IM2COL_MAX_WINDOW``)."""
    return x.size(2) * weight.size(2) <= _IM2COL_MAX_WINDOW


def _windows(x: Tensor, kernel: int, stride: int, pitch: int, ones: bool = False) -> Tensor:
    """``(B, pitch, C_in * K)``: a copy of every window of ``x`` ``(B, L, C_in)`` (tap-major), then
    zero rows; with a last column of ones (zero on those rows) if ``ones``."""
    frames = (x.size(1) - kernel) // stride + 1
    views = _frame_views(x.contiguous(), kernel, stride, frames)
    if ones:
        views.append(x.new_ones(1, 1, 1).expand(x.size(0), frames, 1))
    windows = x.new_zeros(x.size(0), pitch, sum(view.size(2) for view in views))
    column = 0
    for view in views:
        windows[:, :frames, column:column + view.size(2)] = view
        column += view.size(2)
    return windows


def _pitched_views(x: Tensor, kernel: int, stride: int) -> List[Tensor]:
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
        views.append(x.as_strided((rows - q, taps * channels), (stride * channels, 1),
                                  x.storage_offset() + first * channels))
    return views


class _StridedConv(torch.autograd.Function):
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
    def forward(ctx, x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: int,  # type: ignore[override]
                gelu_input: bool, pitch: int) -> Tensor:
        x = x.contiguous()
        kernel, out_channels = weight.size(2), weight.size(0)
        activated = None  # GELU(x), when kept for the backward pass
        if _narrow(x, weight):
            windows = _windows(F.gelu(x) if gelu_input else x, kernel, stride, pitch).view(x.size(0) * pitch, -1)
            y = F.linear(windows, torch.cat(_weight_blocks(weight, stride), dim=1), bias)
        else:
            assert x.size(1) == stride * pitch, "pitched input expected"
            blocks = [block.t().contiguous() for block in _weight_blocks(weight, stride)]
            y = x.new_empty(x.size(0) * pitch, out_channels)
            if gelu_input and x.numel() <= _GELU_CHUNK:  # small: GELU(x) at once, and kept
                activated = F.gelu(x)
            for first, views in _activated_views(x if activated is None else activated, kernel, stride,
                                                 gelu_input and activated is None):
                for q, view in enumerate(views):
                    y[first:first + view.size(0)].addmm_(view, blocks[q], beta=0.0 if q == 0 else 1.0)
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
            if _narrow(x, weight):
                windows = _windows(F.gelu(x) if ctx.gelu_input else x, kernel, stride, grad.size(1))
                taps = torch.mm(windows.view(rows.size(0), -1).t(), rows)
            else:
                blocks = [rows.new_zeros(min(stride, kernel - first) * in_channels, out_channels)
                          for first in range(0, kernel, stride)]
                for first, views in _activated_views(x if activated is None else activated, kernel, stride,
                                                     ctx.gelu_input and activated is None):
                    for block, view in zip(blocks, views):
                        block.addmm_(view.t(), rows[first:first + view.size(0)])
                taps = torch.cat(blocks)
            grad_w = taps.t().reshape(out_channels, kernel, in_channels).permute(0, 2, 1)
        if ctx.needs_input_grad[0]:
            grad_x = _strided_conv_input_grad(grad, weight, stride, x.shape, pitched=not _narrow(x, weight))
            if ctx.gelu_input:
                torch.ops.aten.gelu_backward.grad_input(grad_x, x, grad_input=grad_x)
        return grad_x, grad_w, grad_b, None, None, None


def _activated_views(x: Tensor, kernel: int, stride: int, gelu: bool) -> Iterator[Tuple[int, List[Tensor]]]:
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
        slab = torch.ops.aten.gelu.out(source[first:last], out=buffer[:last - first])
        views = [view[:min(chunk, view.size(0))] for view in _pitched_views(slab.view(1, -1, channels), kernel, stride)]
        yield first, views


def _strided_conv_input_grad(grad: Tensor, weight: Tensor, stride: int, shape: torch.Size, pitched: bool) -> Tensor:
    """``dX`` of :class:`_StridedConv` (``grad``: ``(B, pitch, C_out)``), block by block into views of ``dX``."""
    grad_x = grad.new_empty(shape)
    blocks = _weight_blocks(weight, stride)  # (C_out, taps_q * C_in)
    kernel = weight.size(2)
    if kernel < stride:  # the first tap block leaves gaps
        grad_x.zero_()
    if pitched:
        rows = grad.reshape(-1, grad.size(2))
        for q, view in enumerate(_pitched_views(grad_x, kernel, stride)):
            view.addmm_(rows[:view.size(0)], blocks[q], beta=0.0 if q == 0 and kernel >= stride else 1.0)
        return grad_x
    frames = (shape[1] - kernel) // stride + 1
    if kernel >= stride:  # the first tap block writes every sample up to stride * frames
        grad_x[:, stride * frames:].zero_()
    for b in range(shape[0]):
        views = _frame_views(grad_x[b:b + 1], kernel, stride, frames)
        for q, view in enumerate(views):
            view[0].addmm_(grad[b, :frames], blocks[q], beta=0.0 if q == 0 and kernel >= stride else 1.0)
    return grad_x


class _ConvChannelNorm(torch.autograd.Function):
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
    def forward(ctx, x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: int,  # type: ignore[override]
                pitch: int, counts: List[int], norm_weight: Optional[Tensor], norm_bias: Optional[Tensor],
                eps: float) -> Tensor:
        windows = _windows(x, weight.size(2), stride, pitch, ones=True)  # (B, pitch, K + 1)
        valid = windows.double()
        valid_frames = _valid_frames(counts, valid)
        if valid_frames is not None:
            valid.mul_(valid_frames)
        gram = torch.bmm(valid.transpose(1, 2), valid)  # (B, K + 1, K + 1), over valid frames
        del valid
        extended = torch.cat(_weight_blocks(weight, stride) + [_bias_column(weight, bias)], dim=1).double()
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
            grad_ext = (s1.unsqueeze(2) * moments + s2.unsqueeze(2) * torch.matmul(extended, gram)
                        + s3.unsqueeze(2) * gram[:, -1].unsqueeze(1)).sum(0)
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


def _bias_column(weight: Tensor, bias: Optional[Tensor]) -> Tensor:
    """``(C_out, 1)``: the bias, or zeros."""
    return weight.new_zeros(weight.size(0), 1) if bias is None else bias.unsqueeze(1)


def _or_ones(weight: Optional[Tensor], like: Tensor) -> Tensor:
    """``weight`` as ``like``'s dtype, or ones (a norm without affine parameters)."""
    return torch.ones_like(like[0]) if weight is None else weight.to(like.dtype)


def _conv_norm_input_grad(grad: Tensor, windows: Tensor, extended: Tensor, coefs: Tuple[Tensor, Tensor, Tensor],
                          gram: Tensor, weight: Tensor, stride: int, shape: torch.Size) -> Tensor:
    """The input gradient of :class:`_ConvChannelNorm` (rarely needed): ``dy`` explicitly, then ``dX``."""
    s1, s2, s3 = coefs
    counts = gram[:, -1, -1].round().long().tolist()
    y = torch.bmm(windows, extended.t().to(windows.dtype).expand(windows.size(0), -1, -1))
    valid = _valid_frames(counts, y)
    y = torch.addcmul(s3.unsqueeze(1).to(y.dtype), y, s2.unsqueeze(1).to(y.dtype))
    if valid is not None:
        y.mul_(valid)
    y.addcmul_(grad, s1.unsqueeze(1).to(y.dtype))
    return _strided_conv_input_grad(y, weight, stride, shape, pitched=False)


def _frame_sums(x: Tensor, weights: Tensor) -> Tensor:
    """``sum_t weights[b, t] x[b, t, :]``: ``(B, T, C)``, ``(B, T)`` -> ``(B, C)``, as a GEMV.

    (A GEMV is several times faster on CPU than ``sum`` over the non-contiguous time dimension.)
    """
    return torch.bmm(weights.unsqueeze(1), x).squeeze(1)


class _ChannelNorm(torch.autograd.Function):
    """:func:`_masked_channel_norm` on channels-last ``(B, T, C)``, statistics over ``counts[b]`` frames.

    Every frame (padding too) is normalised with its utterance's statistics, as in the plain
    path, and the backward pass is the closed form of that (padded frames' gradients reach the
    statistics too). ``counts[b] == 0`` gives mean 0 and variance 0, as the plain path does.
    Statistics are two-pass (mean, then mean square deviation) like the plain path's; the
    deviations are computed in the output buffer, so the only new tensor is the output.
    """

    @staticmethod
    def forward(ctx, x: Tensor, counts: List[int], weight: Optional[Tensor],  # type: ignore[override]
                bias: Optional[Tensor], eps: float) -> Tensor:
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


def _valid_frames(counts: List[int], x: Tensor) -> Optional[Tensor]:
    """``(B, T, 1)``: 1 on the first ``counts[b]`` frames, 0 after; None when no frame is padding."""
    if min(counts) >= x.size(1):
        return None
    steps = torch.arange(x.size(1), device=x.device)
    return (steps < torch.tensor(counts, device=x.device).unsqueeze(1)).to(x.dtype).unsqueeze(2)


def _mean_weights(counts: List[int], x: Tensor) -> Tensor:
    """``(B, T)``: ``1 / counts[b]`` on the first ``counts[b]`` frames, 0 after."""
    steps = torch.arange(x.size(1), device=x.device)
    count = torch.tensor(counts, device=x.device).unsqueeze(1)
    return torch.where(steps < count, 1.0 / count.clamp(min=1).to(x.dtype), 0.0).to(x.dtype)


class ConvLayerBlock(nn.Module):
    """One feature-extractor layer: Conv1d -> optional norm -> GELU.

    Args:
        conv: ``nn.Conv1d(in, dim, kernel, stride)`` (fairseq ``conv_feature_layers`` entry, ``conv_bias``).
        norm: ``None``; ``nn.GroupNorm(dim, dim)`` (``extractor_mode="default"``, first layer), which
            normalises each channel over time (over valid frames when ``lengths`` are given); or
            ``nn.LayerNorm(dim)`` (``extractor_mode="layer_norm"``), over channels per frame.
    """

    def __init__(self, conv: nn.Conv1d, norm: Optional[nn.Module]) -> None:
        super().__init__()
        if norm is not None and not isinstance(norm, (nn.GroupNorm, nn.LayerNorm)):
            raise ValueError(f"norm: expected None, nn.GroupNorm or nn.LayerNorm; found {type(norm).__name__}")
        if isinstance(norm, nn.GroupNorm) and norm.num_groups != norm.num_channels:
            raise ValueError(f"norm: expected GroupNorm(dim, dim); found {norm.num_groups} groups "
                             f"for {norm.num_channels} channels")
        self.conv = conv
        self.norm = norm

    def forward(self, x: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """``(B, C_in, L)`` -> ``(B, C, T)``; ``lengths``: ``(B,)`` valid output frames, or None."""
        x = self.conv(x)
        if isinstance(self.norm, nn.LayerNorm):
            x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        elif isinstance(self.norm, nn.GroupNorm):
            # on CPU, plain GroupNorm when nothing is padded; elsewhere the masked norm always (equal
            # then): reading the check back would make the host wait for the device
            if lengths is not None and (lengths.device.type != "cpu" or bool((lengths < x.size(-1)).any())):
                x = _masked_channel_norm(x, lengths, self.norm)
            else:
                x = self.norm(x)
        return F.gelu(x)

    def forward_channels_last(self, x: Tensor, counts: List[int], gelu_input: bool, pitch: int) -> Tensor:
        """CPU fast path of :meth:`forward` (float32, no autocast), with the GELU moved one layer on.

        Args:
            x: the waveform ``(B, L, 1)`` (``gelu_input=False``), or the previous layer's output
                before its GELU, which is applied here (fused with this convolution), pitched:
                ``(B, stride * pitch, C_in)``, each utterance's frames first, then junk rows.
            counts: valid output frames per utterance (host ints).
            pitch: output rows per utterance (at least the output's frames).
        Returns:
            ``(B, pitch, C)``: this layer's output before its GELU, pitched.
        """
        weight, bias, stride = self.conv.weight, self.conv.bias, self.conv.stride[0]
        if isinstance(self.norm, nn.GroupNorm) and not gelu_input and _narrow(x, weight):
            return _ConvChannelNorm.apply(x, weight, bias, stride, pitch, counts, self.norm.weight, self.norm.bias,
                                          self.norm.eps)
        x = _StridedConv.apply(x, weight, bias, stride, gelu_input, pitch)
        if isinstance(self.norm, nn.LayerNorm):
            return self.norm(x)
        if isinstance(self.norm, nn.GroupNorm):
            return _ChannelNorm.apply(x, counts, self.norm.weight, self.norm.bias, self.norm.eps)
        return x


class ConvFeatureExtractor(nn.Module):
    """Waveform -> frames (fairseq's ``ConvFeatureExtractionModel``).

    Args:
        conv_layers: the :class:`ConvLayerBlock` s, first to last.

    Attributes:
        fast_path: run float32 CPU input through the channels-last GEMM path (see
            :meth:`ConvLayerBlock.forward_channels_last`); False always runs the plain
            ``Conv1d`` path. Same numbers either way (up to summation order).
    """

    def __init__(self, conv_layers: nn.ModuleList) -> None:
        super().__init__()
        if len(conv_layers) == 0:
            raise ValueError("conv_layers: expected at least one ConvLayerBlock; found none")
        self.conv_layers = conv_layers
        self.fast_path = True

    @property
    def layer_specs(self) -> List[ConvLayer]:
        """``(dim, kernel, stride)`` per layer."""
        return [(b.conv.out_channels, b.conv.kernel_size[0], b.conv.stride[0]) for b in self.conv_layers]

    def forward(self, waveforms: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """``(B, L)`` samples (``lengths``: ``(B,)`` valid samples, or None) -> ``(B, C, T)``.

        On the fast path the result is a transposed view of a channels-last ``(B, T, C)`` tensor.
        """
        if self.fast_path and _fast_path_applies(waveforms):
            return self._forward_channels_last(waveforms, lengths)
        x = waveforms.unsqueeze(1)
        for block in self.conv_layers:
            if lengths is not None:
                lengths = conv_output_lengths(lengths, [(0, block.conv.kernel_size[0], block.conv.stride[0])])
            x = block(x, lengths)
        return x

    def _forward_channels_last(self, waveforms: Tensor, lengths: Optional[Tensor]) -> Tensor:
        """The fast path; padded utterances run on a trimmed waveform (see :meth:`_trimmed_groups`)."""
        groups = self._trimmed_groups(waveforms, lengths)
        if groups is None:
            return self._run_channels_last(waveforms, lengths).transpose(1, 2)
        assert lengths is not None
        frames = int(conv_output_lengths(waveforms.size(1), self.layer_specs))
        pieces: List[Optional[Tensor]] = [None] * waveforms.size(0)
        for indices, samples in groups:
            rows = torch.tensor(indices, device=waveforms.device)
            out = self._run_channels_last(waveforms[rows, :samples], lengths[rows])
            for row, index in zip(out, indices):  # frames past the trim all equal the last one
                pieces[index] = torch.cat([row, row[-1:].expand(frames - row.size(0), -1)])
        return torch.stack(pieces).transpose(1, 2)  # type: ignore[arg-type]

    def _run_channels_last(self, waveforms: Tensor, lengths: Optional[Tensor]) -> Tensor:
        """``(B, L)`` -> ``(B, T, C)`` through every block's fast path, then the last GELU.

        Activations are pitched: layer ``k``'s are ``(B, P_k, C)`` with ``P_{k-1} = stride_k * P_k``
        and ``P_k`` at least its frames, so that each convolution is one GEMM over the batch
        (see :func:`_pitched_views`); the rows past an utterance's frames are dropped at the end.
        """
        counts = [waveforms.size(1)] * waveforms.size(0) if lengths is None else lengths.tolist()
        specs = self.layer_specs
        frames, after = [], [1] * len(specs)
        for _, kernel, stride in specs:
            frames.append(max(0, ((frames[-1] if frames else waveforms.size(1)) - kernel) // stride + 1))
        for i in range(len(specs) - 2, -1, -1):
            after[i] = after[i + 1] * specs[i + 1][2]
        jump = after[0] * specs[0][2]
        last_pitch = max([-(-n // step) for n, step in zip(frames, after)] + [-(-waveforms.size(1) // jump), 1])
        x = waveforms.unsqueeze(2)
        if not _narrow(x, self.conv_layers[0].conv.weight):  # the first convolution reads it pitched too
            x = F.pad(x, (0, 0, 0, last_pitch * jump - waveforms.size(1)))
        in_place = not torch.is_grad_enabled()  # a frozen extractor: the activations are ours to overwrite
        for i, (block, (_, kernel, stride)) in enumerate(zip(self.conv_layers, specs)):
            counts = [max(0, (n - kernel) // stride + 1) for n in counts]
            if i > 0 and in_place:
                x = torch.ops.aten.gelu_(x)
            x = block.forward_channels_last(x, counts, gelu_input=i > 0 and not in_place, pitch=last_pitch * after[i])
        return torch.ops.aten.gelu_(x[:, :frames[-1]]) if in_place else F.gelu(x[:, :frames[-1]])

    def _trimmed_groups(self, waveforms: Tensor, lengths: Optional[Tensor]) -> Optional[List[Tuple[List[int], int]]]:
        """Groups of utterances and the samples to run each on, or None to run the batch as it is.

        An output frame whose receptive field lies wholly in an utterance's (zero) padding is a
        function of zeros and of the utterance's GroupNorm statistics only, the same for every
        such frame. So an utterance zero-padded after ``n`` samples needs only the frames up to
        the first such one (``ceil(n / J)``, ``J`` the total stride), i.e. ``ceil(n / J) * J + R``
        samples (``R`` the receptive field); the later frames repeat it (and their gradients
        add up on it, exactly). Utterances whose needs are within 10% are run together.

        Not used when the waveform needs a gradient (its padding would get a different one),
        when it would save less than 10% of the samples, or less than
        ``_TRIM_MIN_MACS`` multiply-adds per extra run (small models: the extra, smaller
        runs cost more than they save).
        """
        if lengths is None or (waveforms.requires_grad and torch.is_grad_enabled()):
            return None
        batch, samples = waveforms.shape
        jump, macs_per_sample, in_channels = 1, 0.0, 1
        for channels, kernel, stride in self.layer_specs:
            jump *= stride
            macs_per_sample += in_channels * kernel * channels / jump
            in_channels = channels
        field = receptive_field(self.layer_specs)
        needed = [min(samples, -(-n // jump) * jump + field) for n in lengths.tolist()]
        if sum(needed) > 0.9 * batch * samples or (batch * samples - sum(needed)) * macs_per_sample < _TRIM_MIN_MACS:
            return None  # not worth checking the padding
        padding = torch.arange(samples, device=waveforms.device) >= lengths.unsqueeze(1)
        dirty = ((waveforms != 0) & padding).any(1).tolist()
        needed = [samples if bad else n for n, bad in zip(needed, dirty)]
        groups: List[Tuple[List[int], int]] = []
        for index in sorted(range(batch), key=lambda b: -needed[b]):
            if groups and needed[index] >= 0.9 * groups[-1][1]:
                groups[-1][0].append(index)
            else:
                groups.append(([index], needed[index]))
        saved = batch * samples - sum(len(members) * length for members, length in groups)
        if saved < 0.1 * batch * samples or saved * macs_per_sample < _TRIM_MIN_MACS * (len(groups) - 1):
            return None
        return groups


def conv_feature_extractor(conv_layers: Sequence[ConvLayer], mode: str = "default",
                           conv_bias: bool = False) -> ConvFeatureExtractor:
    """Build the extractor (fairseq ``conv_feature_layers``, ``extractor_mode``, ``conv_bias``).

    Weights are initialised as fairseq does (Kaiming normal convolutions).
    """
    if mode not in ("default", "layer_norm"):
        raise ValueError(f"extractor_mode: expected 'default' or 'layer_norm'; found {mode!r}")
    blocks, in_dim = [], 1
    for i, (dim, kernel, stride) in enumerate(conv_layers):
        conv = nn.Conv1d(in_dim, dim, kernel, stride=stride, bias=conv_bias)
        nn.init.kaiming_normal_(conv.weight)
        if mode == "layer_norm":
            norm: Optional[nn.Module] = nn.LayerNorm(dim)
        else:
            norm = nn.GroupNorm(dim, dim) if i == 0 else None
        blocks.append(ConvLayerBlock(conv, norm))
        in_dim = dim
    return ConvFeatureExtractor(nn.ModuleList(blocks))


# ---------------------------------------------------------------------------- feature projection
class FeatureProjection(nn.Module):
    """LayerNorm over the extractor's channels, then ``post_extract_proj`` and ``dropout_input``.

    Args:
        layer_norm: ``nn.LayerNorm(conv_dim)`` (fairseq's top-level ``layer_norm``).
        projection: ``nn.Linear(conv_dim, encoder_embed_dim)`` (fairseq ``post_extract_proj``),
            or ``nn.Identity()`` where fairseq has none.
        dropout: fairseq ``dropout_input``.
    """

    def __init__(self, layer_norm: nn.LayerNorm, projection: nn.Module, dropout: float = 0.0) -> None:
        super().__init__()
        self.layer_norm = layer_norm
        self.projection = projection
        self.dropout = Dropout(dropout)

    def forward(self, features: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, T, conv_dim)`` -> (projected ``(B, T, encoder_embed_dim)``, normalised ``(B, T, conv_dim)``)."""
        normalized = self.layer_norm(features)
        return self.dropout(self.projection(normalized)), normalized
