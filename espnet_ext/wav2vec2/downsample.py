"""The downsampling context network: Transformer encoder -> downsampler -> Transformer decoder.

A variant of wav2vec 2.0's context network (the study in ``shared/seeds``, "MyOriginalWav2Vec2.0"):

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

Only torch is imported here (no ESPnet); :func:`downsampled_length` needs no tensors.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Largest denominator used to read a float rate as a fraction (0.7 -> 7/10).
MAX_RATE_DENOMINATOR = 1000

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "swish": nn.SiLU}


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


def _zero_padding(x: Tensor, padding_mask: Optional[Tensor]) -> Tensor:
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

    def _grid(self, lengths: Tensor, num_frames: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Centre positions ``s = numer / denom`` of each output frame.

        Returns:
            numer (B, T'), denom (B, 1) (>= 1), output lengths (B,), valid (B, T') bool.
        """
        out_lengths = self.output_lengths(lengths)
        t = torch.arange(self.output_frames(num_frames), device=lengths.device)
        numer = (2 * t[None, :] + 1) * lengths[:, None] - out_lengths[:, None]
        denom = (2 * out_lengths[:, None]).clamp(min=1)
        return numer, denom, out_lengths, t[None, :] < out_lengths[:, None]

    def source_index(self, lengths: Tensor, num_frames: int) -> Tuple[Tensor, Tensor]:
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

    def forward(self, x: Tensor, lengths: Tensor) -> Tuple[Tensor, Tensor]:
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
            raise ValueError(
                f"targets: expected (B, T, D) with B = {lengths.size(0)}, found {tuple(targets.shape)}"
            )
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
# Transformer building blocks
# --------------------------------------------------------------------------------------------


class MultiheadAttention(nn.Module):
    """Multi-head attention through ``F.scaled_dot_product_attention`` with a key padding mask.

    Args:
        embed_dim: model dimension C (fairseq ``encoder_embed_dim``).
        num_heads: heads H, dividing C (fairseq ``encoder_attention_heads``).
        dropout: dropout on attention weights (fairseq ``attention_dropout``).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def _heads(self, x: Tensor) -> Tensor:
        batch, frames, channels = x.shape
        return x.view(batch, frames, self.num_heads, channels // self.num_heads).transpose(1, 2)

    def forward(self, query: Tensor, memory: Tensor, key_padding_mask: Optional[Tensor] = None) -> Tensor:
        """Attend from ``query`` (B, Tq, C) to ``memory`` (B, Tk, C).

        Args:
            key_padding_mask: (B, Tk) bool, True = padding (never attended). A query whose keys
                are all padding (an empty utterance) attends to all of them instead of producing NaN.

        Returns:
            (B, Tq, C).
        """
        attn_mask = None
        if key_padding_mask is not None:
            allowed = ~key_padding_mask
            allowed = allowed | ~allowed.any(dim=-1, keepdim=True)
            attn_mask = allowed[:, None, None, :]
        out = F.scaled_dot_product_attention(
            self._heads(self.q_proj(query)),
            self._heads(self.k_proj(memory)),
            self._heads(self.v_proj(memory)),
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        batch, _, frames, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(batch, frames, -1))


class FeedForward(nn.Module):
    """Position-wise FFN: Linear(C, F) -> activation -> dropout -> Linear(F, C) (fairseq fc1/fc2).

    Args:
        embed_dim: C.  hidden_dim: F (fairseq ``encoder_ffn_embed_dim``).
        dropout: after the activation (fairseq ``activation_dropout``).  activation: gelu, relu, swish.
    """

    def __init__(self, embed_dim: int, hidden_dim: int, dropout: float = 0.0, activation: str = "gelu") -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, hidden_dim)
        self.activation = _activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_dim, embed_dim)

    def forward(self, x: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        """(B, T, C) -> (B, T, C); frame-wise, so ``padding_mask`` is not needed."""
        return self.fc2(self.dropout(self.activation(self.fc1(x))))


class ConvFeedForward(nn.Module):
    """Convolutional FFN: Conv1d(C, F, kernel_size) -> activation -> dropout -> Conv1d(F, C, 1).

    'Same' padding; padding frames are zeroed before each convolution, so they never reach
    valid frames (the seed's FFN: kernels 5 and 1, hidden 2048 for C = 512).

    Args:
        embed_dim: C.  hidden_dim: F.  kernel_size: first kernel, odd.
        dropout: after the activation.  activation: gelu, relu, swish.
    """

    def __init__(
        self, embed_dim: int, hidden_dim: int, kernel_size: int = 5, dropout: float = 0.0, activation: str = "gelu"
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"conv FFN kernel_size: expected an odd positive integer, found {kernel_size}")
        self.conv1 = nn.Conv1d(embed_dim, hidden_dim, kernel_size, padding=kernel_size // 2)
        self.activation = _activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(hidden_dim, embed_dim, 1)

    def forward(self, x: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        """(B, T, C) with (B, T) ``padding_mask`` -> (B, T, C)."""
        hidden = self.conv1(_zero_padding(x, padding_mask).transpose(1, 2)).transpose(1, 2)
        hidden = _zero_padding(self.dropout(self.activation(hidden)), padding_mask)
        return self.conv2(hidden.transpose(1, 2)).transpose(1, 2)


def _activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation: expected one of {', '.join(_ACTIVATIONS)}, found {name!r}")
    return _ACTIVATIONS[name]()


def _sublayer(x: Tensor, norm: nn.Module, dropout: nn.Module, fn, layer_norm_first: bool) -> Tensor:
    """Residual block: pre-LN ``x + drop(fn(norm(x)))`` or post-LN ``norm(x + drop(fn(x)))``."""
    if layer_norm_first:
        return x + dropout(fn(norm(x)))
    return norm(x + dropout(fn(x)))


class EncoderLayer(nn.Module):
    """Self-attention + FFN, each residual with LayerNorm (fairseq ``TransformerSentenceEncoderLayer``).

    Args:
        attention: a :class:`MultiheadAttention`.
        feed_forward: a :class:`FeedForward` or :class:`ConvFeedForward`.
        embed_dim: C.  dropout: on each residual branch (fairseq ``dropout``).
        layer_norm_first: pre-LN if True, post-LN (BASE) if False (fairseq ``layer_norm_first``).
    """

    def __init__(
        self, attention: nn.Module, feed_forward: nn.Module, embed_dim: int, dropout: float, layer_norm_first: bool
    ) -> None:
        super().__init__()
        self.attention = attention
        self.feed_forward = feed_forward
        self.attention_norm = nn.LayerNorm(embed_dim)
        self.ffn_norm = nn.LayerNorm(embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm_first = layer_norm_first

    def forward(self, x: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        """(B, T, C) with (B, T) ``padding_mask`` -> (B, T, C)."""
        x = _sublayer(x, self.attention_norm, self.dropout, lambda h: self.attention(h, h, padding_mask),
                      self.layer_norm_first)
        return _sublayer(x, self.ffn_norm, self.dropout, lambda h: self.feed_forward(h, padding_mask),
                         self.layer_norm_first)


class DecoderLayer(nn.Module):
    """Self-attention over the target, cross-attention to the memory, FFN (no causal mask).

    Args:
        self_attention, cross_attention: :class:`MultiheadAttention` modules.
        feed_forward: a :class:`FeedForward` or :class:`ConvFeedForward`.
        embed_dim: C.  dropout: on each residual branch.  layer_norm_first: pre-LN if True.
    """

    def __init__(
        self,
        self_attention: nn.Module,
        cross_attention: nn.Module,
        feed_forward: nn.Module,
        embed_dim: int,
        dropout: float,
        layer_norm_first: bool,
    ) -> None:
        super().__init__()
        self.self_attention = self_attention
        self.cross_attention = cross_attention
        self.feed_forward = feed_forward
        self.self_attention_norm = nn.LayerNorm(embed_dim)
        self.cross_attention_norm = nn.LayerNorm(embed_dim)
        self.ffn_norm = nn.LayerNorm(embed_dim)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm_first = layer_norm_first

    def forward(self, target: Tensor, target_mask: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """``target`` (B, T', C) with mask (B, T'); ``memory`` (B, T, C) with mask (B, T) -> (B, T', C)."""
        first = self.layer_norm_first
        x = _sublayer(target, self.self_attention_norm, self.dropout,
                      lambda h: self.self_attention(h, h, target_mask), first)
        x = _sublayer(x, self.cross_attention_norm, self.dropout,
                      lambda h: self.cross_attention(h, memory, memory_mask), first)
        return _sublayer(x, self.ffn_norm, self.dropout, lambda h: self.feed_forward(h, target_mask), first)


class ConvPositionalEmbedding(nn.Module):
    """wav2vec 2.0's relative positional embedding: ``x + GELU(Conv1d(x))`` (fairseq ``pos_conv``).

    Grouped convolution over time, 'same' padding (one trailing frame removed for an even kernel,
    fairseq's ``SamePad``), padding frames zeroed first. Plain weights (no weight norm).

    Args:
        embed_dim: C.  kernel_size: fairseq ``conv_pos`` (128).  groups: ``conv_pos_groups`` (16).
    """

    def __init__(self, embed_dim: int, kernel_size: int = 128, groups: int = 16) -> None:
        super().__init__()
        if kernel_size < 1 or groups < 1 or embed_dim % groups != 0:
            raise ValueError(
                f"positional conv: expected kernel_size >= 1 and groups dividing embed_dim ({embed_dim}), "
                f"found kernel_size={kernel_size}, groups={groups}"
            )
        self.conv = nn.Conv1d(embed_dim, embed_dim, kernel_size, padding=kernel_size // 2, groups=groups)
        nn.init.normal_(self.conv.weight, mean=0.0, std=math.sqrt(4.0 / (kernel_size * embed_dim)))
        nn.init.zeros_(self.conv.bias)
        self.remove = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: Tensor, padding_mask: Optional[Tensor] = None) -> Tensor:
        """(B, T, C) with (B, T) ``padding_mask`` -> (B, T, C)."""
        x = _zero_padding(x, padding_mask)
        pos = self.conv(x.transpose(1, 2))
        if self.remove:
            pos = pos[..., : -self.remove]
        return x + F.gelu(pos).transpose(1, 2)


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
        pos_embedding: applied to the input first (e.g. :class:`ConvPositionalEmbedding`) or None.
        input_norm: LayerNorm after it for post-LN (fairseq), ``nn.Identity`` for pre-LN.
        encoder_layers: :class:`EncoderLayer` list (N_enc).
        encoder_norm: final encoder LayerNorm for pre-LN, ``nn.Identity`` for post-LN.
        downsampler: a :class:`LinearDownsampler`.
        decoder_layers: :class:`DecoderLayer` list (N_dec).
        decoder_norm: final decoder LayerNorm for pre-LN, ``nn.Identity`` for post-LN.
        dropout: on the input after the positional embedding (fairseq ``dropout``).
    """

    def __init__(
        self,
        pos_embedding: Optional[nn.Module],
        input_norm: nn.Module,
        encoder_layers: nn.ModuleList,
        encoder_norm: nn.Module,
        downsampler: LinearDownsampler,
        decoder_layers: nn.ModuleList,
        decoder_norm: nn.Module,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.pos_embedding = pos_embedding
        self.input_norm = input_norm
        self.encoder_layers = encoder_layers
        self.encoder_norm = encoder_norm
        self.downsampler = downsampler
        self.decoder_layers = decoder_layers
        self.decoder_norm = decoder_norm
        self.dropout = nn.Dropout(dropout)

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
        if self.pos_embedding is not None:
            x = self.pos_embedding(x, padding_mask)
        x = self.dropout(self.input_norm(x))
        for layer in self.encoder_layers:
            x = layer(x, padding_mask)
        return _zero_padding(self.encoder_norm(x), padding_mask)

    def decode(self, target: Tensor, target_mask: Tensor, memory: Tensor, memory_mask: Tensor) -> Tensor:
        """The decoder: target (B, T', C), memory (B, T, C) -> (B, T', C), zero at padding."""
        for layer in self.decoder_layers:
            target = layer(target, target_mask, memory, memory_mask)
        return _zero_padding(self.decoder_norm(target), target_mask)

    def forward(self, x: Tensor, padding_mask: Optional[Tensor] = None) -> ContextOutput:
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


def _feed_forward(embed_dim: int, hidden_dim: int, conv: bool, kernel: int, dropout: float, activation: str):
    if conv:
        return ConvFeedForward(embed_dim, hidden_dim, kernel, dropout, activation)
    return FeedForward(embed_dim, hidden_dim, dropout, activation)


def _norm(embed_dim: int, enabled: bool) -> nn.Module:
    return nn.LayerNorm(embed_dim) if enabled else nn.Identity()


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
    """Build a :class:`DownsamplingContextNetwork`.

    Args:
        embed_dim: C (fairseq ``encoder_embed_dim``).  num_heads: attention heads.
        ffn_dim: FFN hidden size (fairseq ``encoder_ffn_embed_dim``; the seed: 2048 for C = 512).
        num_encoder_layers, num_decoder_layers: N_enc, N_dec (the seed: 6 and 6).
        downsample_rate: r in (0, 1] (the seed: 0.7); T' = ceil(r * T).
        conv_ffn: two 1-D convolutions (kernels ``conv_ffn_kernel`` and 1) instead of the linear FFN.
        dropout, attention_dropout, activation_dropout: fairseq's three dropouts.
        layer_norm_first: pre-LN (True) or post-LN (False, fairseq BASE).
        pos_conv_kernel, pos_conv_groups: the convolutional positional embedding (0 kernel: none).
        activation: FFN activation, gelu (fairseq), relu or swish.
    """
    for name, value in (("num_encoder_layers", num_encoder_layers), ("num_decoder_layers", num_decoder_layers)):
        if value < 0:
            raise ValueError(f"{name}: expected a non-negative integer, found {value}")

    def ffn() -> nn.Module:
        return _feed_forward(embed_dim, ffn_dim, conv_ffn, conv_ffn_kernel, activation_dropout, activation)

    def attention() -> MultiheadAttention:
        return MultiheadAttention(embed_dim, num_heads, attention_dropout)

    encoder = [
        EncoderLayer(attention(), ffn(), embed_dim, dropout, layer_norm_first) for _ in range(num_encoder_layers)
    ]
    decoder = [
        DecoderLayer(attention(), attention(), ffn(), embed_dim, dropout, layer_norm_first)
        for _ in range(num_decoder_layers)
    ]
    pos = ConvPositionalEmbedding(embed_dim, pos_conv_kernel, pos_conv_groups) if pos_conv_kernel > 0 else None
    return DownsamplingContextNetwork(
        pos_embedding=pos,
        input_norm=_norm(embed_dim, not layer_norm_first),
        encoder_layers=nn.ModuleList(encoder),
        encoder_norm=_norm(embed_dim, layer_norm_first),
        downsampler=LinearDownsampler(downsample_rate),
        decoder_layers=nn.ModuleList(decoder),
        decoder_norm=_norm(embed_dim, layer_norm_first),
        dropout=dropout,
    )
