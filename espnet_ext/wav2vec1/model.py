"""The wav2vec 1.0 network (torch only): causal convolutional encoder and context network.

``waveform (B, L) -> encoder -> z (B, T, C) -> context network -> c (B, T, C')``, one frame
per 160 samples (10 ms at 16 kHz) for the paper's encoder (fairseq ``ConvFeatureExtractionModel``
and ``ConvAggegator`` in ``models/wav2vec/wav2vec.py``, whose parameter layout the module
names follow, see :mod:`espnet_ext.wav2vec1.checkpoint`).

Frame counts: ``T`` is :func:`espnet_ext.core.frames.conv_output_lengths` of the encoder
layers (per layer ``(L - kernel) // stride + 1``); no padding, so frame ``t`` sees samples
``[t * S, t * S + R)`` and only those. The context network pads ``kernel - 1`` frames on the
left of each layer, so ``c[t]`` sees ``z[<= t]``.

Padded batches: with ``lengths``, the ``group`` norm takes its statistics over each utterance's
valid frames only (fairseq takes them over the padded length), so that a padded batch gives on
the valid frames exactly the output of each utterance alone; right padding never reaches a
valid frame otherwise (the convolutions are causal). Without ``lengths`` the result is fairseq's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from espnet_ext.core.frames import ConvLayer, conv_output_lengths
from espnet_ext.wav2vec1.config import Wav2Vec1Config, preset_config
from espnet_ext.wav2vec2.modules import lengths_to_padding_mask


class FrameNorm(nn.Module):
    """fairseq's ``Fp32GroupNorm(1, C)`` (``kind="group"``) or per-frame LayerNorm (``"layer"``).

    ``group``: one mean and variance per utterance over all channels and its valid frames
    (``lengths``; all frames when None). ``layer``: one per frame, over the channels.
    Statistics in float32 whatever the input dtype; ``eps`` 1e-5; optional affine per channel.
    """

    def __init__(self, channels: int, kind: str = "group", affine: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.kind, self.eps = kind, eps
        self.weight = nn.Parameter(torch.ones(channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(channels)) if affine else None

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, C, T)`` -> ``(B, C, T)``; ``lengths`` ``(B,)`` valid frames (``group`` only)."""
        xf = x.float()
        if self.kind == "layer":
            mean = xf.mean(dim=1, keepdim=True)
            var = (xf - mean).square().mean(dim=1, keepdim=True)
        elif lengths is None:
            mean = xf.mean(dim=(1, 2), keepdim=True)
            var = (xf - mean).square().mean(dim=(1, 2), keepdim=True)
        else:
            valid = (~lengths_to_padding_mask(lengths, x.size(-1))).unsqueeze(1).float()  # (B, 1, T)
            count = (valid.sum(dim=2, keepdim=True) * x.size(1)).clamp(min=1)
            mean = (xf * valid).sum(dim=(1, 2), keepdim=True) / count
            var = ((xf - mean).square() * valid).sum(dim=(1, 2), keepdim=True) / count
        out = (xf - mean) * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            out = out * self.weight.float().view(1, -1, 1) + self.bias.float().view(1, -1, 1)
        return out.to(x.dtype)


def _activation(name: str) -> nn.Module:
    return nn.GELU() if name == "gelu" else nn.ReLU()


class ConvBlock(nn.Module):
    """Left padding (context network only) -> Conv1d -> dropout -> :class:`FrameNorm` -> activation."""

    def __init__(
        self,
        conv: nn.Conv1d,
        norm: FrameNorm,
        activation: nn.Module,
        left_pad: int = 0,
        zero_pad: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv, self.norm, self.activation = conv, norm, activation
        self.left_pad, self.zero_pad = left_pad, zero_pad
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, lengths: Tensor | None) -> Tensor:
        """``(B, C, T_in)`` -> ``(B, C', T_out)``; ``lengths``: valid frames of the *output*."""
        if self.left_pad:
            x = F.pad(x, (self.left_pad, 0), mode="constant" if self.zero_pad else "replicate")
        return self.activation(self.norm(self.dropout(self.conv(x)), lengths))


class ConvFeatureEncoder(nn.Module):
    """The encoder network ``f: X -> Z`` (fairseq ``ConvFeatureExtractionModel``).

    Args:
        conv_layers: :class:`ConvBlock` per layer (convolutions without bias or padding).
        strides: ``(kernel, stride)`` per layer, for the frame counts.
        log_compression: ``log(1 + |z|)`` on the output.
        skip_connections: residual connections between equal-width layers (the input
            subsampled to the output's length), scaled by ``sqrt(residual_scale)``.
    """

    def __init__(
        self,
        conv_layers: Sequence[ConvBlock],
        geometry: Sequence[ConvLayer],
        log_compression: bool = True,
        skip_connections: bool = False,
        residual_scale: float = 0.5,
    ) -> None:
        super().__init__()
        self.conv_layers = nn.ModuleList(conv_layers)
        self.geometry = [tuple(layer) for layer in geometry]
        self.log_compression, self.skip_connections = log_compression, skip_connections
        self.residual_scale = math.sqrt(residual_scale)

    def forward(self, waveforms: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, L)`` samples -> ``(B, C, T)``; ``lengths`` ``(B,)`` valid samples or None."""
        x = waveforms.unsqueeze(1)
        for block, layer in zip(self.conv_layers, self.geometry):
            lengths = None if lengths is None else conv_output_lengths(lengths, [layer])
            residual = x
            x = block(x, lengths)
            if self.skip_connections and x.size(1) == residual.size(1):
                steps = x.size(2)
                residual = residual[..., :: residual.size(2) // steps][..., :steps]
                x = (x + residual) * self.residual_scale
        if self.log_compression:
            x = torch.log1p(x.abs())
        return x


class ConvContextNetwork(nn.Module):
    """The context network ``g: Z -> C`` (fairseq ``ConvAggegator``): causal, stride 1.

    Args:
        conv_layers: :class:`ConvBlock` per layer, each padding ``kernel - 1`` frames on the left.
        residual_proj: per layer, None (no skip connection), ``nn.Identity`` or a 1x1
            convolution without bias (where the width changes).
        residual_scale: skip connections give ``(x + residual) * sqrt(residual_scale)``.
    """

    def __init__(
        self,
        conv_layers: Sequence[ConvBlock],
        residual_proj: Sequence[nn.Module | None],
        residual_scale: float = 0.5,
    ) -> None:
        super().__init__()
        self.conv_layers = nn.ModuleList(conv_layers)
        self.residual_proj = nn.ModuleList(residual_proj)
        self.residual_scale = math.sqrt(residual_scale)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B, C, T)`` -> ``(B, C', T)``; ``lengths`` ``(B,)`` valid frames or None."""
        for block, proj in zip(self.conv_layers, self.residual_proj):
            residual = x
            x = block(x, lengths)
            if proj is not None:
                x = (x + proj(residual)) * self.residual_scale
        return x


class Wav2Vec1Output(NamedTuple):
    """What :class:`Wav2Vec1Model` returns.

    Attributes:
        features: ``(B, T, C)`` encoder output ``z`` (the prediction targets).
        context: ``(B, T, C')`` context network output ``c`` (what downstream models use), or
            None (``features_only``).
        lengths: ``(B,)`` valid frames, or None when no ``lengths`` were given.
    """

    features: Tensor
    context: Tensor | None
    lengths: Tensor | None


class Wav2Vec1Model(nn.Module):
    """wav2vec 1.0 encoder + context network (no prediction head; see
    :class:`espnet_ext.wav2vec1.pretraining.Wav2Vec1Pretraining`)."""

    def __init__(
        self, config: Wav2Vec1Config, feature_extractor: ConvFeatureEncoder, feature_aggregator: ConvContextNetwork
    ) -> None:
        super().__init__()
        self.config = config
        self.feature_extractor, self.feature_aggregator = feature_extractor, feature_aggregator
        self.dropout_feats = nn.Dropout(config.dropout_features)
        self.dropout_agg = nn.Dropout(config.dropout_agg)

    def output_size(self) -> int:
        """Channels of the context features ``c``."""
        return self.config.context_dim

    def output_lengths(self, lengths: Tensor | int) -> Tensor | int:
        """Frames for ``lengths`` samples (tensor or int): the encoder's conv arithmetic."""
        return conv_output_lengths(lengths, self.config.conv_feature_layers)

    def forward(self, waveforms: Tensor, lengths: Tensor | None = None, features_only: bool = False) -> Wav2Vec1Output:
        """``(B, L)`` samples, zero-padded after ``lengths`` ``(B,)`` -> :class:`Wav2Vec1Output`.

        ``features_only``: run the encoder only (``context`` is then None). Values at padded
        frames are finite but meaningless.
        Raises:
            ValueError: ``waveforms`` not ``(B, L)`` or shorter than one receptive field.
        """
        if waveforms.dim() != 2 or waveforms.size(1) < self.config.receptive_field:
            raise ValueError(
                f"waveforms: expected (B, L) with L >= {self.config.receptive_field} samples (one "
                f"receptive field); found {tuple(waveforms.shape)}"
            )
        frames = None if lengths is None else self.output_lengths(lengths.long())
        z = self.feature_extractor(waveforms, None if lengths is None else lengths.long())
        if features_only:
            return Wav2Vec1Output(z.transpose(1, 2), None, frames)
        c = self.dropout_agg(self.feature_aggregator(self.dropout_feats(z), frames))
        return Wav2Vec1Output(z.transpose(1, 2), c.transpose(1, 2), frames)


def _encoder(config: Wav2Vec1Config) -> ConvFeatureEncoder:
    blocks, dim_in = [], 1
    for dim, kernel, stride in config.conv_feature_layers:
        conv = nn.Conv1d(dim_in, dim, kernel, stride=stride, bias=False)
        blocks.append(
            ConvBlock(
                conv, FrameNorm(dim, config.norm, not config.non_affine_group_norm), _activation(config.activation)
            )
        )
        dim_in = dim
    return ConvFeatureEncoder(
        blocks, config.conv_feature_layers, config.log_compression, config.skip_connections_feat, config.residual_scale
    )


def _context_network(config: Wav2Vec1Config) -> ConvContextNetwork:
    blocks, projections, dim_in = [], [], config.encoder_dim
    for dim, kernel, stride in config.conv_aggregator_layers:
        conv = nn.Conv1d(dim_in, dim, kernel, stride=stride, bias=not config.no_conv_bias)
        blocks.append(
            ConvBlock(
                conv,
                FrameNorm(dim, config.norm, not config.non_affine_group_norm),
                _activation(config.activation),
                left_pad=kernel - 1,
                zero_pad=config.agg_zero_pad,
                dropout=config.dropout,
            )
        )
        if not config.skip_connections_agg:
            projections.append(None)
        else:
            projections.append(nn.Identity() if dim == dim_in else nn.Conv1d(dim_in, dim, 1, bias=False))
        dim_in = dim
    return ConvContextNetwork(blocks, projections, config.residual_scale)


def wav2vec1_model(config: Wav2Vec1Config | str) -> Wav2Vec1Model:
    """A randomly initialised encoder + context network (PyTorch's default initialisation, as
    fairseq's) from a config or a preset name. Works under ``with torch.device("meta"):``."""
    if isinstance(config, str):
        config = preset_config(config)
    return Wav2Vec1Model(config, _encoder(config), _context_network(config))
