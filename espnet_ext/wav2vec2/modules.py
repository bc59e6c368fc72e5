"""Feature extractor and feature projection of wav2vec 2.0, and the arithmetic of their lengths (torch only).

fairseq's ``ConvFeatureExtractionModel`` and the projection after it (``layer_norm``,
``post_extract_proj``, ``dropout_input``) in ``fairseq/models/wav2vec/wav2vec2.py``, shaped as
torchaudio's ``models/wav2vec2/components.py``: a waveform ``(B, L)`` gives frames ``(B, C, T)``,
``T = conv_output_lengths(L)``. Also the pieces the Transformer shares (:class:`Dropout`,
:func:`activation`, :func:`scale_grad`) and :data:`KERNELS`, the hook through which
:mod:`espnet_ext.wav2vec2.cpu_kernels` runs faster CPU code.

Deviation from fairseq (padded batches only): with ``lengths``, the first layer's GroupNorm
(``extractor_mode="default"``) takes its statistics over each utterance's valid frames, so a
padded batch gives each utterance's own output on its valid frames; fairseq and Hugging Face
take them over the padded length. Without padding the result is fairseq's.

Unpadded batches (``lengths`` None, what a batch cropped to one length gives): no mask is built
and the first layer runs ``nn.GroupNorm`` itself, one fused kernel (float32 under autocast, as
fairseq's ``Fp32GroupNorm``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

# the length arithmetic (ints or tensors), re-exported beside the modules whose lengths it gives
from espnet_ext.core.frames import ConvLayer, conv_output_lengths, receptive_field  # noqa: F401

# ---------------------------------------------------------------------------- kernel hook
#: Faster implementations of this package's modules, by name (``"conv_feature_extractor"``,
#: ``"dropout"``, ``"attention"``): ``KERNELS[name](module, *inputs)`` returns the module's output,
#: or None where it does not apply. Empty (as importing any module of the package leaves it), the
#: modules compute everything as written here; ``espnet_ext.wav2vec2.cpu_kernels.enable()`` fills it
#: (the ESPnet tasks' ``--cpu_kernels``, on by default when training on CPU, calls it).
KERNELS: dict[str, Callable[..., Tensor | None]] = {}


def run_kernel(name: str, module: nn.Module, *inputs: Any) -> Tensor | None:
    """``KERNELS[name](module, *inputs)``, or None when no kernel is registered under ``name``."""
    kernel = KERNELS.get(name)
    return None if kernel is None else kernel(module, *inputs)


# ---------------------------------------------------------------------------- lengths
def lengths_to_padding_mask(lengths: Tensor, max_length: int) -> Tensor:
    """``(B,)`` lengths -> ``(B, max_length)`` bool mask, True at padding (``t >= lengths[b]``)."""
    steps = torch.arange(max_length, device=lengths.device)
    return steps.unsqueeze(0) >= lengths.unsqueeze(1)


def known_unpadded(lengths: Tensor | None, max_length: int) -> bool:
    """Whether a batch of ``max_length`` steps is known to have no padding: ``lengths`` is None, or
    on the CPU with every value ``max_length``. Lengths on another device are not read (that would
    make the host wait for the device): the padded path runs, with the same result."""
    if lengths is None:
        return True
    return lengths.device.type == "cpu" and bool((lengths >= max_length).all())


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


# ---------------------------------------------------------------------------- activations, dropout
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


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same arguments, same state) that runs ``KERNELS["dropout"]`` where one applies."""

    def forward(self, x: Tensor) -> Tensor:
        out = run_kernel("dropout", self, x)
        return super().forward(x) if out is None else out


# ---------------------------------------------------------------------------- feature extractor
def _masked_channel_norm(x: Tensor, lengths: Tensor, norm: nn.GroupNorm) -> Tensor:
    """GroupNorm with one group per channel, statistics over the first ``lengths[b]`` frames.

    Args:
        x: ``(B, C, T)``; lengths: ``(B,)`` valid frames (0 gives finite, meaningless output).
    Statistics are computed in float32 whatever ``x``'s dtype (as fairseq's ``Fp32GroupNorm``),
    outside autocast: the masked sums are batched matrix-vector products with the ``(B, T, 1)``
    valid-frame indicator (no masked copy of ``x``), the variance is taken about the mean (no
    cancellation in float32), and the affine map is one fused multiply-add.
    """
    device = x.device.type
    no_autocast = torch.autocast(device, enabled=False) if torch.amp.is_autocast_available(device) else nullcontext()
    with no_autocast:
        xf = x.float()
        steps = torch.arange(x.size(-1), device=x.device)
        valid = (steps.unsqueeze(0) < lengths.unsqueeze(1)).to(torch.float32).unsqueeze(-1)  # (B, T, 1)
        count = lengths.clamp(min=1, max=x.size(-1)).to(torch.float32).view(-1, 1, 1)
        mean = torch.bmm(xf, valid) / count  # (B, C, 1)
        centered = xf - mean
        var = torch.bmm(centered.square(), valid) / count
        scale = torch.rsqrt(var + norm.eps)
        if norm.affine:
            scale = scale * norm.weight.float().view(1, -1, 1)
            out = torch.addcmul(norm.bias.float().view(1, -1, 1), centered, scale)
        else:
            out = centered * scale
    return out.to(x.dtype)


class ConvLayerBlock(nn.Module):
    """One feature-extractor layer: Conv1d -> optional norm -> GELU.

    Args:
        conv: ``nn.Conv1d(in, dim, kernel, stride)`` (fairseq ``conv_feature_layers`` entry, ``conv_bias``).
        norm: ``None``; ``nn.GroupNorm(dim, dim)`` (``extractor_mode="default"``, first layer), which
            normalises each channel over time (over valid frames when ``lengths`` are given); or
            ``nn.LayerNorm(dim)`` (``extractor_mode="layer_norm"``), over channels per frame.
    """

    def __init__(self, conv: nn.Conv1d, norm: nn.Module | None) -> None:
        super().__init__()
        if norm is not None and not isinstance(norm, (nn.GroupNorm, nn.LayerNorm)):
            raise ValueError(f"norm: expected None, nn.GroupNorm or nn.LayerNorm; found {type(norm).__name__}")
        if isinstance(norm, nn.GroupNorm) and norm.num_groups != norm.num_channels:
            raise ValueError(
                f"norm: expected GroupNorm(dim, dim); found {norm.num_groups} groups for {norm.num_channels} channels"
            )
        self.conv = conv
        self.norm = norm

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, C_in, L)`` -> ``(B, C, T)``; ``lengths``: ``(B,)`` valid output frames, or None."""
        x = self.conv(x)
        if isinstance(self.norm, nn.LayerNorm):
            x = self.norm(x.transpose(1, 2)).transpose(1, 2)
        elif isinstance(self.norm, nn.GroupNorm):
            x = self.norm(x) if known_unpadded(lengths, x.size(-1)) else _masked_channel_norm(x, lengths, self.norm)
        return F.gelu(x)


class ConvFeatureExtractor(nn.Module):
    """Waveform -> frames (fairseq's ``ConvFeatureExtractionModel``).

    Args:
        conv_layers: the :class:`ConvLayerBlock` s, first to last.
    """

    def __init__(self, conv_layers: nn.ModuleList) -> None:
        super().__init__()
        if len(conv_layers) == 0:
            raise ValueError("conv_layers: expected at least one ConvLayerBlock; found none")
        self.conv_layers = conv_layers

    @property
    def layer_specs(self) -> list[ConvLayer]:
        """``(dim, kernel, stride)`` per layer."""
        return [(b.conv.out_channels, b.conv.kernel_size[0], b.conv.stride[0]) for b in self.conv_layers]

    def forward(self, waveforms: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, L)`` samples (``lengths``: ``(B,)`` valid samples, or None: nothing padded) -> ``(B, C, T)``.

        ``KERNELS["conv_feature_extractor"]`` computes it where it applies.
        """
        out = run_kernel("conv_feature_extractor", self, waveforms, lengths)
        if out is not None:
            return out
        x = waveforms.unsqueeze(1)
        specs = self.layer_specs
        for i, block in enumerate(self.conv_layers):
            # only a GroupNorm reads the lengths: they are computed for its layer alone
            needs_lengths = lengths is not None and isinstance(block.norm, nn.GroupNorm)
            x = block(x, conv_output_lengths(lengths, specs[: i + 1]) if needs_lengths else None)
        return x


def conv_feature_extractor(
    conv_layers: Sequence[ConvLayer], mode: str = "default", conv_bias: bool = False
) -> ConvFeatureExtractor:
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
            norm: nn.Module | None = nn.LayerNorm(dim)
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

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, T, conv_dim)`` -> (projected ``(B, T, encoder_embed_dim)``, normalised ``(B, T, conv_dim)``)."""
        normalized = self.layer_norm(features)
        return self.dropout(self.projection(normalized)), normalized
