"""The Transformer context network of wav2vec 2.0 (torch only).

Post-LN layers (BASE, fairseq ``layer_norm_first=False``) and pre-LN layers (LARGE,
``layer_norm_first=True``), a convolutional positional embedding, layerdrop, and attention
through :func:`torch.nn.functional.scaled_dot_product_attention` with a key padding mask.
The downsampling context network (:mod:`espnet_ext.wav2vec2.downsample`) builds its encoder
and decoder from these same pieces (cross-attention through :class:`MultiheadAttention`'s
``memory``, a convolutional FFN through the layers' ``padding_mask``).

Padded frames follow fairseq: they are zeroed before the positional convolution and never
attended to as keys; their own outputs are finite but meaningless. Without a padding mask no
mask is built, and attention runs without one (flash attention on GPUs).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from espnet_ext.wav2vec2.modules import Dropout, activation, run_kernel


class ConvPositionalEmbedding(nn.Module):
    """Relative positions from a grouped convolution over time (fairseq ``encoder.pos_conv``).

    Args:
        embed_dim: channels (``encoder_embed_dim``).
        kernel_size: fairseq ``conv_pos`` (128); padded by ``kernel_size // 2`` on both
            sides, the last output frame dropped when the kernel is even, so ``T`` is kept.
        groups: fairseq ``conv_pos_groups`` (16).

    The weight is weight-normalised over the kernel dimension (``dim=2``) and initialised
    as fairseq does (normal, std ``sqrt(4 / (kernel_size * embed_dim))``, zero bias).
    """

    def __init__(self, embed_dim: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        conv = nn.Conv1d(embed_dim, embed_dim, kernel_size, padding=kernel_size // 2, groups=groups)
        nn.init.normal_(conv.weight, mean=0.0, std=math.sqrt(4.0 / (kernel_size * embed_dim)))
        nn.init.zeros_(conv.bias)
        self.conv = weight_norm(conv, name="weight", dim=2)
        self.trim = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        """``(B, T, C)`` -> ``(B, T, C)``, GELU of the convolution (to be added to ``x``)."""
        y = self.conv(x.transpose(1, 2))
        if self.trim:
            y = y[..., : -self.trim]
        return F.gelu(y).transpose(1, 2)


class MultiheadAttention(nn.Module):
    """Multi-head self- or cross-attention (fairseq ``self_attn``) via ``scaled_dot_product_attention``
    (``KERNELS["attention"]`` where one applies).

    The weights are fairseq's and Hugging Face's separate ``q_proj``, ``k_proj`` and ``v_proj``
    (so checkpoints load and save as they are); self-attention projects with one GEMM over their
    concatenation (cross-attention: ``k_proj`` and ``v_proj`` together), the same numbers up to
    float32 summation order.

    Args:
        embed_dim: ``encoder_embed_dim``; num_heads: ``encoder_attention_heads``;
        dropout: fairseq ``attention_dropout`` (on the attention weights, training only).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim: expected a multiple of num_heads ({num_heads}); found {embed_dim}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def _heads(self, x: Tensor) -> Tensor:
        """``(B, T, C)`` -> ``(B, H, T, C / H)``."""
        batch, steps, channels = x.shape
        return x.view(batch, steps, self.num_heads, channels // self.num_heads).transpose(1, 2)

    def _fused(self, x: Tensor, projections: tuple[nn.Linear, ...]) -> tuple[Tensor, ...]:
        """``projections`` of ``x`` ``(B, T, C)`` in one GEMM, each as ``(B, H, T, C / H)`` (views)."""
        weight = torch.cat([p.weight for p in projections])
        bias = torch.cat([p.bias for p in projections])
        batch, steps, _ = x.shape
        heads = F.linear(x, weight, bias).view(batch, steps, len(projections), self.num_heads, -1)
        return heads.permute(2, 0, 3, 1, 4).unbind(0)

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, memory: Tensor | None = None) -> Tensor:
        """Queries from ``x`` ``(B, T, C)``, keys and values from ``memory`` ``(B, S, C)`` (``x`` when None).

        Args:
            attn_mask: ``(B, 1, 1, S)`` bool, True where a key may be attended
                (:func:`key_padding_attn_mask`), or None.
        Returns:
            ``(B, T, C)``.
        """
        if memory is None:
            q, k, v = self._fused(x, (self.q_proj, self.k_proj, self.v_proj))
        else:
            q = self._heads(self.q_proj(x))
            k, v = self._fused(memory, (self.k_proj, self.v_proj))
        dropout = self.dropout if self.training else 0.0
        y = run_kernel("attention", self, q, k, v, attn_mask, dropout)
        if y is None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        return self.out_proj(y.transpose(1, 2).flatten(2))


class FeedForward(nn.Module):
    """``fc2(dropout(act(fc1(x))))`` (fairseq ``fc1``/``fc2``, ``activation_fn``, ``activation_dropout``)."""

    def __init__(
        self, embed_dim: int, ffn_dim: int, activation_fn: str = "gelu", activation_dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, ffn_dim)
        self.activation = activation(activation_fn)
        self.dropout = Dropout(activation_dropout)
        self.fc2 = nn.Linear(ffn_dim, embed_dim)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """``(B, T, C)`` -> ``(B, T, C)``; frame-wise, so ``padding_mask`` is unused (the layers pass it
        to every FFN, see :class:`~espnet_ext.wav2vec2.downsample.ConvFeedForward`)."""
        return self.fc2(self.dropout(self.activation(self.fc1(x))))


def residual(
    x: Tensor, fn: Callable[[Tensor], Tensor], layer_norm: nn.Module, dropout: nn.Module, layer_norm_first: bool
) -> Tensor:
    """One residual sub-layer: pre-LN ``x + dropout(fn(LN(x)))`` or post-LN ``LN(x + dropout(fn(x)))``."""
    if layer_norm_first:
        return x + dropout(fn(layer_norm(x)))
    return layer_norm(x + dropout(fn(x)))


class EncoderLayer(nn.Module):
    """One Transformer layer (fairseq ``TransformerSentenceEncoderLayer``).

    Args:
        attention: :class:`MultiheadAttention`.
        feed_forward: :class:`FeedForward` (or any module called as ``feed_forward(x, padding_mask)``).
        attn_layer_norm: fairseq ``self_attn_layer_norm``; final_layer_norm: ``final_layer_norm``.
        layer_norm_first: pre-LN (``x + f(LN(x))``, LARGE) when True; post-LN
            (``LN(x + f(x))``, BASE) when False.
        dropout: fairseq ``dropout``, on the attention and FFN outputs before the residual sum.
    """

    def __init__(
        self,
        attention: MultiheadAttention,
        feed_forward: nn.Module,
        attn_layer_norm: nn.LayerNorm,
        final_layer_norm: nn.LayerNorm,
        *,
        layer_norm_first: bool,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.attention = attention
        self.feed_forward = feed_forward
        self.attn_layer_norm = attn_layer_norm
        self.final_layer_norm = final_layer_norm
        self.layer_norm_first = layer_norm_first
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor, attn_mask: Tensor | None = None, padding_mask: Tensor | None = None) -> Tensor:
        """``(B, T, C)`` -> ``(B, T, C)``; ``attn_mask`` as in :class:`MultiheadAttention`;
        ``padding_mask`` ``(B, T)`` bool (True at padding) or None, passed to the FFN."""
        first = self.layer_norm_first
        x = residual(x, lambda h: self.attention(h, attn_mask), self.attn_layer_norm, self.dropout, first)
        return residual(x, lambda h: self.feed_forward(h, padding_mask), self.final_layer_norm, self.dropout, first)


def key_padding_attn_mask(padding_mask: Tensor | None) -> Tensor | None:
    """``(B, T)`` True-at-padding -> ``(B, 1, 1, T)`` True-where-attended, or None when nothing is padded.

    An utterance with no valid frame attends to all of them (finite output instead of NaN).
    "Nothing is padded" is checked on CPU only: on other devices reading it back would make the
    host wait for the device, so the mask is always built there (an all-True mask: same result).
    """
    if padding_mask is None or (padding_mask.device.type == "cpu" and not bool(padding_mask.any())):
        return None
    attend = ~padding_mask
    attend = attend | ~attend.any(dim=1, keepdim=True)
    return attend[:, None, None, :]


class TransformerEncoder(nn.Module):
    """Positional convolution, (input LayerNorm,) dropout, layers, (final LayerNorm).

    Args:
        pos_conv: :class:`ConvPositionalEmbedding`, or None for no positional embedding.
        layers: the :class:`EncoderLayer` s.
        layer_norm: fairseq ``encoder.layer_norm``: applied to the layers' input for post-LN
            models, to the last layer's output for pre-LN ones.
        layer_norm_first: fairseq ``layer_norm_first``.
        dropout: fairseq ``dropout``, on the layers' input.
        layerdrop: fairseq ``encoder_layerdrop``: in training, each layer is skipped with this
            probability (its hidden state then repeats its input); :meth:`layers_kept` draws
            every layer's once per forward pass. Skipped layers leave their parameters unused:
            DDP needs ``find_unused_parameters=True``.
    """

    def __init__(
        self,
        pos_conv: ConvPositionalEmbedding | None,
        layers: nn.ModuleList,
        layer_norm: nn.LayerNorm,
        *,
        layer_norm_first: bool,
        dropout: float = 0.0,
        layerdrop: float = 0.0,
    ) -> None:
        super().__init__()
        self.pos_conv = pos_conv
        self.layers = layers
        self.layer_norm = layer_norm
        self.layer_norm_first = layer_norm_first
        self.dropout = Dropout(dropout)
        self.layerdrop = layerdrop

    def layers_kept(self, count: int, device: torch.device) -> Tensor | None:
        """Which of the first ``count`` layers run in this forward pass (layerdrop), drawn at once:
        ``(count,)`` bool, or None when all run (evaluation, or no layerdrop).

        Eagerly the draw is on the host (the loop then skips layers without reading the device);
        under ``torch.compile`` it is on ``device`` and every layer is computed, its output kept
        or not by ``torch.where``, so the draw stays in the graph (same distribution; a dropped
        layer then gets zero gradients instead of none).
        """
        if not (self.training and self.layerdrop > 0 and count > 0):
            return None
        if torch.compiler.is_compiling():
            return torch.rand(count, device=device) >= self.layerdrop
        return torch.rand(count) >= self.layerdrop

    def forward(
        self, x: Tensor, padding_mask: Tensor | None = None, num_layers: int | None = None
    ) -> tuple[Tensor, ...]:
        """Run the first ``num_layers`` layers (all when None); later layers are not computed.

        Args:
            x: ``(B, T, C)`` (projected, possibly masked features).
            padding_mask: ``(B, T)`` bool, True at padding, or None.
        Returns:
            ``num_layers + 1`` tensors ``(B, T, C)``: index 0 the layers' input (after the
            positional convolution, plus the input LayerNorm for post-LN models, and dropout);
            index ``i`` the output of layer ``i``. For pre-LN models the final LayerNorm is
            applied to the last entry only when all layers run (fairseq's and Hugging Face's output).
        """
        total = len(self.layers)
        num_layers = total if num_layers is None else num_layers
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        if self.pos_conv is not None:
            x = x + self.pos_conv(x)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = self.dropout(x)
        attn_mask = key_padding_attn_mask(padding_mask)
        states: list[Tensor] = [x]
        kept = self.layers_kept(num_layers, x.device)
        in_graph = torch.compiler.is_compiling()
        kept_on_host = None if kept is None or in_graph else kept.tolist()
        for i, layer in enumerate(self.layers[:num_layers]):
            if kept is None:
                x = layer(x, attn_mask, padding_mask)
            elif in_graph:
                x = torch.where(kept[i], layer(x, attn_mask, padding_mask), x)
            elif kept_on_host[i]:
                x = layer(x, attn_mask, padding_mask)
            states.append(x)
        if self.layer_norm_first and num_layers == total:
            states[-1] = self.layer_norm(x)
        return tuple(states)


def transformer_encoder(
    *,
    embed_dim: int,
    ffn_dim: int,
    num_layers: int,
    num_heads: int,
    layer_norm_first: bool,
    conv_pos: int = 128,
    conv_pos_groups: int = 16,
    activation_fn: str = "gelu",
    dropout: float = 0.1,
    attention_dropout: float = 0.1,
    activation_dropout: float = 0.0,
    layerdrop: float = 0.0,
    layer_norm_eps: float = 1e-5,
) -> TransformerEncoder:
    """Build a :class:`TransformerEncoder` (fairseq ``encoder_*`` options, see :class:`Wav2Vec2Config`).

    Linear layers are initialised as fairseq's ``init_bert_params`` (normal, std 0.02, zero bias).
    """
    layers = nn.ModuleList()
    for _ in range(num_layers):
        layers.append(
            EncoderLayer(
                MultiheadAttention(embed_dim, num_heads, attention_dropout),
                FeedForward(embed_dim, ffn_dim, activation_fn, activation_dropout),
                nn.LayerNorm(embed_dim, eps=layer_norm_eps),
                nn.LayerNorm(embed_dim, eps=layer_norm_eps),
                layer_norm_first=layer_norm_first,
                dropout=dropout,
            )
        )
    for module in layers.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            nn.init.zeros_(module.bias)
    return TransformerEncoder(
        ConvPositionalEmbedding(embed_dim, conv_pos, conv_pos_groups),
        layers,
        nn.LayerNorm(embed_dim, eps=layer_norm_eps),
        layer_norm_first=layer_norm_first,
        dropout=dropout,
        layerdrop=layerdrop,
    )
