"""The downsampling context network: Transformer encoder -> downsampler -> Transformer decoder.

A variant of wav2vec 2.0's context network from "MyOriginalWav2Vec2.0"
(github.com/toshiouchi/MyOriginalWav2Vec2.0):

1. a Transformer **encoder** (``N_enc`` layers) runs over the full-rate input (``T`` frames);
2. a **downsampler** resamples the encoder output in time to ``T' = ceil(r * T)`` frames
   (``0 < r <= 1``, e.g. 0.7);
3. a Transformer **decoder** (``N_dec`` layers, no causal mask) whose target input is the
   downsampled encoder output and whose memory (cross-attention) is the full encoder output.

The network's output has ``T'`` frames, so a CTC layer on top sees fewer frames (fine-tuning)
and pre-training must map its frame-level masks and targets to the output rate
(:func:`downsample_mask`, :func:`downsample_targets`).

Downsampling rule (exact, per utterance, computed in integers)
----------------------------------------------------------------
The rate is read as the fraction ``p / q = Fraction(r).limit_denominator(1000)`` (so the float
``0.7`` is exactly ``7 / 10``). An utterance of ``L`` valid frames gives

    ``L' = ceil(L * p / q) = (L * p + q - 1) // q``         (:func:`downsampled_length`)

output frames. Output frame ``t'`` covers the input interval ``[t' L / L', (t' + 1) L / L')``;
its value is the **linear interpolation** of the input at the interval's centre, in frame
coordinates ``s = (t' + 1/2) L / L' - 1/2`` (the ``align_corners=False`` convention), between
frames ``floor(s)`` and ``floor(s) + 1``. ``0 <= s <= L - 1`` always holds, so only valid frames
are read and padding never leaks. With ``r = 1`` the downsampler is the identity.

Frame-level things (pre-training masks, targets) take the **nearest** input frame instead: the
input frame that contains the output frame's centre, ``(2 t' + 1) L // (2 L')`` (equal to
``floor(s + 1/2)``: the frame with the larger interpolation weight, the later one on a tie).
A downsampled frame is masked iff that source frame is masked.

A padded batch of ``T`` frames gives ``ceil(r * T)`` output frames (no host synchronisation);
frames at or after an utterance's ``L'`` are padding, zero in the output.

Padding convention: ``padding_mask`` is ``(B, T)`` bool, ``True`` = padding, right-padded
(an utterance's valid frames are its first ``L``). Padding is never attended (key padding masks
on self- and cross-attention), zeroed before every convolution, and never read by the
downsampler, so a padded batch gives each utterance's own output on its valid frames.

The encoder is :mod:`espnet_ext.wav2vec2.transformer`'s :class:`TransformerEncoder` and the
decoder is built from its blocks (attention, FFN, residual sub-layers); only the convolutional
FFN, the decoder layer's cross-attention sub-layer and the downsampler are this module's own.
Only torch is imported here (no ESPnet); :func:`downsampled_length` needs no tensors.
"""

from __future__ import annotations

import numbers
from fractions import Fraction
from typing import NamedTuple

import torch
from torch import Tensor, nn

from espnet_ext.wav2vec2.modules import Dropout
from espnet_ext.wav2vec2.modules import activation as activation_module
from espnet_ext.wav2vec2.transformer import (
    ConvPositionalEmbedding,
    EncoderLayer,
    FeedForward,
    MultiheadAttention,
    TransformerEncoder,
    key_padding_attn_mask,
    residual,
)

#: Largest denominator used to read a float rate as a fraction (0.7 -> 7/10).
MAX_RATE_DENOMINATOR = 1000


# --------------------------------------------------------------------------------------------
# Length arithmetic (pure Python)
# --------------------------------------------------------------------------------------------


def rate_fraction(rate: numbers.Real) -> Fraction:
    """The downsampling rate as an exact fraction ``p / q`` (denominator at most 1000).

    Raises:
        ValueError: if ``rate`` is not a number in (0, 1] (at least 1/1000).
    """
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise ValueError(f"downsample_rate: expected a number in (0, 1], found {rate!r}")
    value = float(rate)
    if not 0.0 < value <= 1.0:  # also rejects nan
        raise ValueError(f"downsample_rate: expected a number in (0, 1], found {rate!r}")
    exact = rate if isinstance(rate, numbers.Rational) else Fraction(value)
    frac = Fraction(exact).limit_denominator(MAX_RATE_DENOMINATOR)
    if frac.numerator == 0:
        raise ValueError(f"downsample_rate: expected at least 1/{MAX_RATE_DENOMINATOR}, found {rate!r}")
    return frac


def downsampled_length(num_frames: int, rate: numbers.Real) -> int:
    """Output frames for ``num_frames`` input frames: ``ceil(num_frames * p / q)``, exactly.

    Pure integer arithmetic (no torch tensors): usable by data filters. ``p / q`` is
    :func:`rate_fraction` of ``rate``. 0 frames give 0; at least 1 frame gives at least 1.

    Raises:
        ValueError: for a negative or non-integer ``num_frames`` or a bad ``rate``.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, numbers.Integral) or num_frames < 0:
        raise ValueError(f"num_frames: expected a non-negative integer, found {num_frames!r}")
    frac = rate_fraction(rate)
    return -(-int(num_frames) * frac.numerator // frac.denominator)


def make_padding_mask(lengths: Tensor, max_length: int) -> Tensor:
    """``(B,)`` lengths -> ``(B, max_length)`` bool mask, ``True`` at padding frames."""
    positions = torch.arange(max_length, device=lengths.device)
    return positions[None, :] >= lengths[:, None]


def _zero_padding(x: Tensor, padding_mask: Tensor | None) -> Tensor:
    """Zero the padding frames of ``x`` (B, T, C)."""
    if padding_mask is None:
        return x
    return x.masked_fill(padding_mask[..., None], 0.0)


# --------------------------------------------------------------------------------------------
# Downsampler
# --------------------------------------------------------------------------------------------


class LinearDownsampler(nn.Module):
    """Per-utterance linear interpolation over time to ``ceil(rate * L)`` frames (no parameters).

    See the module docstring for the exact rule.

    Args:
        rate: output/input frame ratio in (0, 1], read as :func:`rate_fraction`.
    """

    def __init__(self, rate: numbers.Real) -> None:
        super().__init__()
        frac = rate_fraction(rate)
        self.rate = float(frac)
        self.numerator = frac.numerator
        self.denominator = frac.denominator

    def extra_repr(self) -> str:
        return f"rate={self.numerator}/{self.denominator}"

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """``(B,)`` int lengths -> ``(B,)`` ``ceil(L * p / q)`` (same as :func:`downsampled_length`)."""
        return torch.div(lengths * self.numerator + self.denominator - 1, self.denominator, rounding_mode="floor")

    def output_frames(self, num_frames: int) -> int:
        """Output frames of a padded batch of ``num_frames`` frames: ``ceil(rate * num_frames)``."""
        return downsampled_length(num_frames, Fraction(self.numerator, self.denominator))

    def _grid(self, lengths: Tensor, num_frames: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Centre positions ``s = numer / denom`` of each output frame.

        Returns:
            numer (B, T'), denom (B, 1) (>= 1), output lengths (B,), valid (B, T') bool.
        """
        out_lengths = self.output_lengths(lengths)
        t = torch.arange(self.output_frames(num_frames), device=lengths.device)
        numer = (2 * t[None, :] + 1) * lengths[:, None] - out_lengths[:, None]
        denom = (2 * out_lengths[:, None]).clamp(min=1)
        return numer, denom, out_lengths, t[None, :] < out_lengths[:, None]

    def source_index(self, lengths: Tensor, num_frames: int) -> tuple[Tensor, Tensor]:
        """Nearest input frame of each output frame, ``(2 t' + 1) L // (2 L')``.

        Args:
            lengths: (B,) valid input frames.
            num_frames: padded input frames T.

        Returns:
            index (B, T') in ``[0, max(L - 1, 0)]``, valid (B, T') bool (``t' < L'``).
        """
        numer, denom, out_lengths, valid = self._grid(lengths, num_frames)
        index = torch.div(numer + out_lengths[:, None], denom, rounding_mode="floor")
        index = torch.minimum(index, (lengths - 1).clamp(min=0)[:, None])
        return index, valid

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Downsample ``x`` (B, T, C) with valid ``lengths`` (B,).

        Returns:
            (B, ceil(rate * T), C) output, zero at padding; (B,) output lengths.
        """
        numer, denom, out_lengths, valid = self._grid(lengths, x.size(1))
        low = torch.div(numer, denom, rounding_mode="floor")
        weight = ((numer - low * denom).to(x.dtype) / denom.to(x.dtype))[..., None]
        last = (lengths - 1).clamp(min=0)[:, None]
        low = torch.minimum(low, last)
        high = torch.minimum(low + 1, last)
        channels = x.size(-1)
        x_low = x.gather(1, low[..., None].expand(-1, -1, channels))
        x_high = x.gather(1, high[..., None].expand(-1, -1, channels))
        out = x_low + weight * (x_high - x_low)
        return out.masked_fill(~valid[..., None], 0.0), out_lengths

    def downsample_mask(self, mask: Tensor, lengths: Tensor) -> Tensor:
        """Frame mask (B, T) bool -> (B, T'): the nearest source frame's value; False at padding."""
        if mask.dim() != 2 or mask.size(0) != lengths.size(0):
            raise ValueError(f"mask: expected (B, T) with B = {lengths.size(0)}, found {tuple(mask.shape)}")
        index, valid = self.source_index(lengths, mask.size(1))
        return mask.gather(1, index) & valid

    def downsample_targets(self, targets: Tensor, lengths: Tensor) -> Tensor:
        """Frame targets (B, T, D) -> (B, T', D): the nearest source frame's; zero at padding."""
        if targets.dim() != 3 or targets.size(0) != lengths.size(0):
            raise ValueError(f"targets: expected (B, T, D) with B = {lengths.size(0)}, found {tuple(targets.shape)}")
        index, valid = self.source_index(lengths, targets.size(1))
        picked = targets.gather(1, index[..., None].expand(-1, -1, targets.size(-1)))
        return picked.masked_fill(~valid[..., None], 0)


def downsample_mask(mask: Tensor, lengths: Tensor, rate: numbers.Real) -> Tensor:
    """(B, T) bool mask -> (B, ceil(rate * T)): see :meth:`LinearDownsampler.downsample_mask`."""
    return LinearDownsampler(rate).downsample_mask(mask, lengths)


def downsample_targets(targets: Tensor, lengths: Tensor, rate: numbers.Real) -> Tensor:
    """(B, T, D) -> (B, ceil(rate * T), D): see :meth:`LinearDownsampler.downsample_targets`."""
    return LinearDownsampler(rate).downsample_targets(targets, lengths)


# --------------------------------------------------------------------------------------------
# Transformer blocks beyond transformer.py's: the conv FFN and the decoder layer
# --------------------------------------------------------------------------------------------


class ConvFeedForward(nn.Module):
    """Convolutional FFN: Conv1d(C, F, kernel_size) -> activation -> dropout -> Conv1d(F, C, 1).

    'Same' padding; padding frames are zeroed before each convolution, so they never reach
    valid frames (MyOriginalWav2Vec2.0's FFN: kernels 5 and 1, hidden 2048 for C = 512). Called as
    :class:`~espnet_ext.wav2vec2.transformer.FeedForward` is, ``feed_forward(x, padding_mask)``.

    Args:
        embed_dim: C.  hidden_dim: F.  kernel_size: first kernel, odd.
        dropout: after the activation.  activation: fairseq ``activation_fn`` (gelu, relu, swish, ...).
    """

    def __init__(
        self, embed_dim: int, hidden_dim: int, kernel_size: int = 5, dropout: float = 0.0, activation: str = "gelu"
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"conv FFN kernel_size: expected an odd positive integer, found {kernel_size}")
        self.conv1 = nn.Conv1d(embed_dim, hidden_dim, kernel_size, padding=kernel_size // 2)
        self.activation = activation_module(activation)
        self.dropout = Dropout(dropout)
        self.conv2 = nn.Conv1d(hidden_dim, embed_dim, 1)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """(B, T, C) with (B, T) ``padding_mask`` -> (B, T, C)."""
        hidden = self.conv1(_zero_padding(x, padding_mask).transpose(1, 2)).transpose(1, 2)
        hidden = _zero_padding(self.dropout(self.activation(hidden)), padding_mask)
        return self.conv2(hidden.transpose(1, 2)).transpose(1, 2)


class DecoderLayer(EncoderLayer):
    """Self-attention over the target, cross-attention to the memory, FFN (no causal mask).

    An :class:`~espnet_ext.wav2vec2.transformer.EncoderLayer` with a cross-attention sub-layer
    between its two; each sub-layer is a :func:`~espnet_ext.wav2vec2.transformer.residual`.

    Args:
        attention, cross_attention: :class:`~espnet_ext.wav2vec2.transformer.MultiheadAttention`.
        feed_forward: :class:`~espnet_ext.wav2vec2.transformer.FeedForward` or :class:`ConvFeedForward`.
        attn_layer_norm, cross_attn_layer_norm, final_layer_norm: one LayerNorm per sub-layer.
        layer_norm_first: pre-LN if True, post-LN if False.  dropout: on each residual branch.
    """

    def __init__(
        self,
        attention: MultiheadAttention,
        cross_attention: MultiheadAttention,
        feed_forward: nn.Module,
        attn_layer_norm: nn.LayerNorm,
        cross_attn_layer_norm: nn.LayerNorm,
        final_layer_norm: nn.LayerNorm,
        *,
        layer_norm_first: bool,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(
            attention,
            feed_forward,
            attn_layer_norm,
            final_layer_norm,
            layer_norm_first=layer_norm_first,
            dropout=dropout,
        )
        self.cross_attention = cross_attention
        self.cross_attn_layer_norm = cross_attn_layer_norm

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None,
        padding_mask: Tensor | None,
        memory: Tensor,
        memory_attn_mask: Tensor | None,
    ) -> Tensor:
        """Target ``x`` (B, T', C), ``memory`` (B, T, C) -> (B, T', C).

        Args:
            attn_mask, memory_attn_mask: ``(B, 1, 1, T')`` and ``(B, 1, 1, T)`` from
                :func:`~espnet_ext.wav2vec2.transformer.key_padding_attn_mask`, or None.
            padding_mask: (B, T') bool, True at the target's padding (for the FFN), or None.
        """
        first, drop = self.layer_norm_first, self.dropout
        x = residual(x, lambda h: self.attention(h, attn_mask), self.attn_layer_norm, drop, first)
        x = residual(
            x, lambda h: self.cross_attention(h, memory_attn_mask, memory), self.cross_attn_layer_norm, drop, first
        )
        return residual(x, lambda h: self.feed_forward(h, padding_mask), self.final_layer_norm, drop, first)


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------


class ContextOutput(NamedTuple):
    """What :class:`DownsamplingContextNetwork` returns."""

    output: Tensor  #: (B, T', C) decoder output, zero at padding
    padding_mask: Tensor  #: (B, T') bool, True = padding
    lengths: Tensor  #: (B,) valid output frames, ceil(r * L)
    encoder_output: Tensor  #: (B, T, C) full-rate encoder output (the decoder's memory), zero at padding


class DownsamplingContextNetwork(nn.Module):
    """Transformer encoder -> :class:`LinearDownsampler` -> Transformer decoder.

    Build one with :func:`downsampling_context_network`.

    Args:
        encoder: a :class:`~espnet_ext.wav2vec2.transformer.TransformerEncoder` (positional
            convolution or none, input LayerNorm for post-LN, dropout, N_enc layers, final
            LayerNorm for pre-LN), no layerdrop.
        downsampler: a :class:`LinearDownsampler`.
        decoder_layers: :class:`DecoderLayer` list (N_dec).
        decoder_norm: final decoder LayerNorm for pre-LN, ``nn.Identity`` for post-LN.
    """

    def __init__(
        self,
        encoder: TransformerEncoder,
        downsampler: LinearDownsampler,
        decoder_layers: nn.ModuleList,
        decoder_norm: nn.Module,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.downsampler = downsampler
        self.decoder_layers = decoder_layers
        self.decoder_norm = decoder_norm

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """(B,) input lengths -> (B,) output lengths, ``ceil(r * L)`` (see :func:`downsampled_length`)."""
        return self.downsampler.output_lengths(lengths)

    def downsample_mask(self, mask: Tensor, lengths: Tensor) -> Tensor:
        """(B, T) bool frame mask -> (B, T'): a frame is masked iff its nearest source frame is."""
        return self.downsampler.downsample_mask(mask, lengths)

    def downsample_targets(self, targets: Tensor, lengths: Tensor) -> Tensor:
        """(B, T, D) frame targets -> (B, T', D): each output frame takes its nearest source frame's."""
        return self.downsampler.downsample_targets(targets, lengths)

    def encode(self, x: Tensor, padding_mask: Tensor) -> Tensor:
        """The full-rate encoder: (B, T, C) -> (B, T, C), zero at padding."""
        return _zero_padding(self.encoder(x, padding_mask)[-1], padding_mask)

    def decode(self, target: Tensor, target_mask: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """The decoder: target (B, T', C) with mask (B, T'), memory (B, T, C) with mask (B, T)
        (True at padding) -> (B, T', C), zero at padding."""
        attn_mask, memory_attn_mask = key_padding_attn_mask(target_mask), key_padding_attn_mask(memory_mask)
        for layer in self.decoder_layers:
            target = layer(target, attn_mask, target_mask, memory, memory_attn_mask)
        return _zero_padding(self.decoder_norm(target), target_mask)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> ContextOutput:
        """Run encoder, downsampler and decoder.

        Args:
            x: (B, T, C) input features.
            padding_mask: (B, T) bool, True = padding (right-padded), or None for no padding.

        Returns:
            :class:`ContextOutput` with T' = ceil(r * T).
        """
        if x.dim() != 3:
            raise ValueError(f"x: expected (B, T, C), found shape {tuple(x.shape)}")
        if padding_mask is None:
            padding_mask = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
        elif padding_mask.shape != x.shape[:2] or padding_mask.dtype != torch.bool:
            raise ValueError(
                f"padding_mask: expected bool {tuple(x.shape[:2])}, "
                f"found {padding_mask.dtype} {tuple(padding_mask.shape)}"
            )
        lengths = (~padding_mask).sum(dim=1)
        memory = self.encode(x, padding_mask)
        target, out_lengths = self.downsampler(memory, lengths)
        target_mask = make_padding_mask(out_lengths, target.size(1))
        output = self.decode(target, target_mask, memory, padding_mask)
        return ContextOutput(output, target_mask, out_lengths, memory)


def _check_sizes(
    num_encoder_layers: int, num_decoder_layers: int, embed_dim: int, pos_conv_kernel: int, pos_conv_groups: int
) -> None:
    """Raise ``ValueError`` for negative layer counts or positional-conv groups that do not divide C."""
    for name, value in (("num_encoder_layers", num_encoder_layers), ("num_decoder_layers", num_decoder_layers)):
        if value < 0:
            raise ValueError(f"{name}: expected a non-negative integer, found {value}")
    if pos_conv_kernel > 0 and (pos_conv_groups < 1 or embed_dim % pos_conv_groups):
        raise ValueError(
            f"pos_conv_groups: expected a positive divisor of embed_dim ({embed_dim}), found {pos_conv_groups}"
        )


def downsampling_context_network(
    embed_dim: int = 768,
    num_heads: int = 12,
    ffn_dim: int = 3072,
    num_encoder_layers: int = 6,
    num_decoder_layers: int = 6,
    downsample_rate: numbers.Real = 0.7,
    conv_ffn: bool = False,
    conv_ffn_kernel: int = 5,
    dropout: float = 0.1,
    attention_dropout: float = 0.1,
    activation_dropout: float = 0.0,
    layer_norm_first: bool = False,
    pos_conv_kernel: int = 128,
    pos_conv_groups: int = 16,
    activation: str = "gelu",
) -> DownsamplingContextNetwork:
    """Build a :class:`DownsamplingContextNetwork` from :mod:`~espnet_ext.wav2vec2.transformer`'s blocks.

    Args:
        embed_dim: C (fairseq ``encoder_embed_dim``).  num_heads: attention heads.
        ffn_dim: FFN hidden size (fairseq ``encoder_ffn_embed_dim``; MyOriginalWav2Vec2.0: 2048 for C = 512).
        num_encoder_layers, num_decoder_layers: N_enc, N_dec (MyOriginalWav2Vec2.0: 6 and 6).
        downsample_rate: r in (0, 1] (MyOriginalWav2Vec2.0: 0.7); T' = ceil(r * T).
        conv_ffn: two 1-D convolutions (kernels ``conv_ffn_kernel`` and 1) instead of the linear FFN.
        dropout, attention_dropout, activation_dropout: fairseq's three dropouts.
        layer_norm_first: pre-LN (True) or post-LN (False, fairseq BASE).
        pos_conv_kernel, pos_conv_groups: wav2vec 2.0's weight-normalised convolutional positional
            embedding (fairseq ``conv_pos``, ``conv_pos_groups``; 0 kernel: none).
        activation: FFN activation, fairseq ``activation_fn`` (gelu, relu, swish, ...).

    Linear and convolution layers keep PyTorch's default initialisation (the positional
    convolution: fairseq's).
    """
    _check_sizes(num_encoder_layers, num_decoder_layers, embed_dim, pos_conv_kernel, pos_conv_groups)

    def ffn() -> nn.Module:
        if conv_ffn:
            return ConvFeedForward(embed_dim, ffn_dim, conv_ffn_kernel, activation_dropout, activation)
        return FeedForward(embed_dim, ffn_dim, activation, activation_dropout)

    def attention() -> MultiheadAttention:
        return MultiheadAttention(embed_dim, num_heads, attention_dropout)

    def norm() -> nn.LayerNorm:
        return nn.LayerNorm(embed_dim)

    encoder_layers = [
        EncoderLayer(attention(), ffn(), norm(), norm(), layer_norm_first=layer_norm_first, dropout=dropout)
        for _ in range(num_encoder_layers)
    ]
    decoder_layers = [
        DecoderLayer(
            attention(), attention(), ffn(), norm(), norm(), norm(), layer_norm_first=layer_norm_first, dropout=dropout
        )
        for _ in range(num_decoder_layers)
    ]
    pos_conv = ConvPositionalEmbedding(embed_dim, pos_conv_kernel, pos_conv_groups) if pos_conv_kernel > 0 else None
    encoder = TransformerEncoder(
        pos_conv, nn.ModuleList(encoder_layers), norm(), layer_norm_first=layer_norm_first, dropout=dropout
    )
    return DownsamplingContextNetwork(
        encoder,
        LinearDownsampler(downsample_rate),
        nn.ModuleList(decoder_layers),
        norm() if layer_norm_first else nn.Identity(),
    )
