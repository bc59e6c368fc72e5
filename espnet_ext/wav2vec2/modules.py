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
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn
from torch.nn import functional as F

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
# On CPU the extractor dominates a wav2vec 2.0 step, and oneDNN handles its shapes poorly: the
# first layer (one input channel) and every backward pass (the input gradient of a strided
# Conv1d costs ~10x its forward). The fast path keeps activations channels-last ``(B, T, C)``
# and runs each layer as GEMMs on strided views of the input (no im2col copy), the
# padding-aware GroupNorm as one autograd function (a few passes instead of ~15 temporaries).
# It is numerically the plain path (summation order aside) and is used for float32 CPU
# tensors outside autocast; CUDA keeps cuDNN's convolutions (fast there, and the plain path
# is what they are tuned for).

#: Layers whose window (``in_channels * kernel``) is at most this many values copy their
#: windows into one matrix (one GEMM, a small copy); wider ones use strided views.
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
    """``(C_out, C_in, K)`` -> per tap block of :func:`_frame_views`, ``(taps_q * C_in, C_out)``."""
    taps_last = weight.permute(0, 2, 1)  # (C_out, K, C_in): a window's values in memory order
    return [taps_last[:, first:first + stride].reshape(weight.size(0), -1).t()
            for first in range(0, weight.size(2), stride)]


class _StridedConv(torch.autograd.Function):
    """``Conv1d`` (no padding, dilation 1) on channels-last ``(B, L, C_in)`` -> ``(B, T, C_out)``.

    Forward and backward are batched GEMMs: per tap block ``q``, ``y += X_q W_q``,
    ``dW_q = sum_b X_q^T dy``, ``dX_q += dy W_q^T`` (written through the same strided views).
    Narrow windows (the first layer) are copied into one ``(B * T, C_in * K)`` matrix instead.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: int) -> Tensor:  # type: ignore[override]
        x = x.contiguous()
        batch, length, _ = x.shape
        frames = (length - weight.size(2)) // stride + 1
        if x.size(2) * weight.size(2) <= _IM2COL_MAX_WINDOW:
            windows = torch.cat(_frame_views(x, weight.size(2), stride, frames), dim=2).reshape(batch * frames, -1)
            w = weight.permute(0, 2, 1).reshape(weight.size(0), -1).t()
            y = torch.mm(windows, w) if bias is None else torch.addmm(bias, windows, w)
            y = y.view(batch, frames, -1)
        else:
            windows = None
            blocks = zip(_frame_views(x, weight.size(2), stride, frames), _weight_blocks(weight, stride))
            y = None
            for view, w in blocks:
                w = w.expand(batch, -1, -1)
                y = torch.bmm(view, w) if y is None else y.baddbmm_(view, w)
            if bias is not None:
                y += bias
        ctx.stride = stride
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x, weight, windows)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, weight, windows = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _strided_conv_input_grad(grad, weight, ctx.stride, x.shape)
        if ctx.needs_input_grad[1]:
            grad_w = _strided_conv_weight_grad(grad, x, windows, weight.shape, ctx.stride)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum((0, 1))
        return grad_x, grad_w, grad_b, None


def _strided_conv_input_grad(grad: Tensor, weight: Tensor, stride: int, shape: torch.Size) -> Tensor:
    """``dX`` of :class:`_StridedConv`, accumulated block by block into the strided views of ``dX``."""
    grad_x = torch.empty(shape, dtype=grad.dtype, device=grad.device)
    batch, frames, _ = grad.shape
    kernel = weight.size(2)
    covered = stride * frames  # samples the first tap block writes (all of them when kernel >= stride)
    if kernel < stride:
        grad_x.zero_()
    else:
        grad_x[:, covered:].zero_()
    for i, (view, w) in enumerate(zip(_frame_views(grad_x, kernel, stride, frames), _weight_blocks(weight, stride))):
        w = w.t().expand(batch, -1, -1)
        if i == 0:
            torch.bmm(grad, w, out=view)
        else:
            view.baddbmm_(grad, w)
    return grad_x


def _strided_conv_weight_grad(grad: Tensor, x: Tensor, windows: Optional[Tensor], shape: torch.Size,
                              stride: int) -> Tensor:
    """``dW`` ``(C_out, C_in, K)`` of :class:`_StridedConv` from the saved windows or input views."""
    out_channels, in_channels, kernel = shape
    if windows is not None:
        taps_last = torch.mm(grad.view(-1, out_channels).t(), windows)
    else:
        grad_t = grad.transpose(1, 2)
        blocks = [torch.bmm(grad_t, view).sum(0) for view in _frame_views(x, kernel, stride, grad.size(1))]
        taps_last = torch.cat(blocks, dim=1)
    return taps_last.view(out_channels, kernel, in_channels).permute(0, 2, 1)


def _frame_sums(x: Tensor, weights: Tensor) -> Tensor:
    """``sum_t weights[b, t] x[b, t, :]``: ``(B, T, C)``, ``(B, T)`` -> ``(B, C)``, as a GEMV.

    (A GEMV is several times faster on CPU than ``sum`` over the non-contiguous time dimension.)
    """
    return torch.bmm(weights.unsqueeze(1), x).squeeze(1)


class _ChannelNorm(torch.autograd.Function):
    """:func:`_masked_channel_norm` on channels-last ``(B, T, C)``, statistics over ``counts[b]`` frames.

    Every frame (padding too) is normalised with its utterance's statistics, as in the plain
    path; the backward pass is the closed form of that (padded frames' gradients reach the
    statistics too). ``counts[b] == 0`` gives mean 0 and variance 0, as the plain path does.
    Statistics are two-pass (mean, then mean square deviation), as in the plain path.
    """

    @staticmethod
    def forward(ctx, x: Tensor, counts: List[int], weight: Optional[Tensor], bias: Optional[Tensor],  # type: ignore[override]
                eps: float) -> Tensor:
        valid = _valid_weights(counts, x)
        mean = _frame_sums(x, valid)
        var = torch.empty_like(mean)
        deviation = torch.empty_like(x[0])
        for b, n in enumerate(counts):
            torch.sub(x[b, :n], mean[b], out=deviation[:n]).square_()
            torch.mv(deviation[:n].t(), valid[b, :n], out=var[b])
        rstd = torch.rsqrt(var + eps)
        scale = rstd if weight is None else rstd * weight
        shift = -mean * scale if bias is None else bias - mean * scale
        ctx.counts = counts
        ctx.save_for_backward(x, mean, rstd, weight)
        return torch.addcmul(shift.unsqueeze(1), x, scale.unsqueeze(1))

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, mean, rstd, weight = ctx.saved_tensors
        grad = grad.contiguous()
        ones = x.new_ones(x.shape[:2])
        sum_g = _frame_sums(grad, ones)  # over all frames: padded outputs depend on the statistics too
        sum_gx = torch.empty_like(sum_g)
        product = torch.empty_like(x[0])
        for b in range(x.size(0)):
            torch.mv(torch.mul(grad[b], x[b], out=product).t(), ones[b], out=sum_gx[b])
        sum_g_xhat = rstd * (sum_gx - mean * sum_g)
        grad_w = sum_g_xhat.sum(0) if weight is not None and ctx.needs_input_grad[2] else None
        grad_b = sum_g.sum(0) if ctx.needs_input_grad[3] else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = _channel_norm_input_grad(grad, x, mean, rstd, weight, sum_g, sum_g_xhat, ctx.counts)
        return grad_x, None, grad_w, grad_b, None


def _valid_weights(counts: List[int], x: Tensor) -> Tensor:
    """``(B, T)``: ``1 / counts[b]`` on the first ``counts[b]`` frames, 0 after (mean weights)."""
    steps = torch.arange(x.size(1), device=x.device)
    count = torch.tensor(counts, device=x.device)
    return (steps < count.unsqueeze(1)).to(x.dtype) / count.clamp(min=1).to(x.dtype).unsqueeze(1)


def _channel_norm_input_grad(grad: Tensor, x: Tensor, mean: Tensor, rstd: Tensor, weight: Optional[Tensor],
                             sum_g: Tensor, sum_g_xhat: Tensor, counts: List[int]) -> Tensor:
    """``dx = w r g - [t valid] (r / n) (sum(w g) + xhat_t sum(w g xhat))`` per utterance and channel."""
    if weight is not None:
        sum_g, sum_g_xhat = sum_g * weight, sum_g_xhat * weight
    count = torch.tensor(counts, dtype=x.dtype, device=x.device).clamp(min=1).unsqueeze(1)
    scale = rstd if weight is None else rstd * weight
    coef_x = -rstd.square() * sum_g_xhat / count
    coef_1 = -rstd * sum_g / count - mean * coef_x
    grad_x = torch.empty_like(x)
    for b, n in enumerate(counts):
        valid = grad_x[b, :n]
        torch.addcmul(coef_1[b], x[b, :n], coef_x[b], out=valid)
        valid.addcmul_(grad[b, :n], scale[b])
        torch.mul(grad[b, n:], scale[b], out=grad_x[b, n:])
    return grad_x


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
            if lengths is not None and bool((lengths < x.size(-1)).any()):
                x = _masked_channel_norm(x, lengths, self.norm)
            else:
                x = self.norm(x)
        return F.gelu(x)

    def forward_channels_last(self, x: Tensor, counts: Optional[List[int]] = None) -> Tensor:
        """CPU fast path of :meth:`forward`: ``(B, L, C_in)`` -> ``(B, T, C)``, float32, no autocast.

        ``counts``: valid output frames per utterance (host ints), or None (all frames).
        """
        x = _StridedConv.apply(x, self.conv.weight, self.conv.bias, self.conv.stride[0])
        if isinstance(self.norm, nn.LayerNorm):
            x = self.norm(x)
        elif isinstance(self.norm, nn.GroupNorm):
            counts = [x.size(1)] * x.size(0) if counts is None else counts
            x = _ChannelNorm.apply(x, counts, self.norm.weight, self.norm.bias, self.norm.eps)
        return F.gelu(x)


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
        counts = None if lengths is None else [int(n) for n in lengths.tolist()]
        x = waveforms.unsqueeze(2)
        for block in self.conv_layers:
            kernel, stride = block.conv.kernel_size[0], block.conv.stride[0]
            if counts is not None:
                counts = [max(0, (n - kernel) // stride + 1) for n in counts]
            x = block.forward_channels_last(x, counts)
        return x.transpose(1, 2)


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
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: Tensor) -> Tuple[Tensor, Tensor]:
        """``(B, T, conv_dim)`` -> (projected ``(B, T, encoder_embed_dim)``, normalised ``(B, T, conv_dim)``)."""
        normalized = self.layer_norm(features)
        return self.dropout(self.projection(normalized)), normalized
