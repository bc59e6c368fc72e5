"""Backbone presets and their parameter counts.

``python -m espnet_ext.bin.presets wav2vec2`` prints every preset's parameter count, total and
per part.

What is counted (:func:`parameter_count`): every parameter of fairseq's pre-training
``Wav2Vec2Model``, i.e. the backbone this package builds (feature extractor, feature
LayerNorm + ``post_extract_proj``, ``mask_emb``, positional convolution, Transformer layers,
encoder LayerNorm) plus the pre-training heads fairseq keeps in the same module (Gumbel
quantizer codebook ``quantizer.vars`` and ``quantizer.weight_proj``, ``project_q``,
``final_proj``, ``target_glu`` when enabled), the heads computed from the config by
fairseq's construction rules. The weight-normalised positional convolution counts its
``g`` and ``v`` (fairseq's ``weight_g``/``weight_v``). Buffers are not parameters.

============  ===========================================================  ==========
preset        shape                                                        parameters
============  ===========================================================  ==========
``base``      fairseq BASE: 12 x 768, FFN 3072, 12 heads, post-LN          95.04 M
``medium``    8 x 768, FFN 2560, 12 heads, post-LN (BASE's width, 2/3      60.40 M
              of its depth, a narrower FFN)
``small``     8 x 512, FFN 2560, 8 heads, post-LN (no post_extract_proj:   36.33 M
              the extractor already gives 512 channels)
``large``     fairseq LARGE (LV-60): 24 x 1024, FFN 4096, 16 heads,        317.39 M
              pre-LN, ``layer_norm`` extractor with conv bias
``mini``      the mini recipes (CPU, minutes): 4 x 128, FFN 512, 4 heads,   0.95 M
              pre-LN, ``layer_norm`` extractor with 64 conv channels,
              positional conv 32 (8 groups), G x V = 2 x 32
``tiny``      CPU tests: 2 x 64, FFN 128, 4 heads, conv dims 32,           0.11 M
              positional conv 16 (4 groups), V = 16
============  ===========================================================  ==========

Of these, the backbone alone (what Hugging Face's ``Wav2Vec2Model`` holds) is 94.37 M (base),
59.72 M (medium), 35.72 M (small), 315.44 M (large), 0.94 M (mini), 0.10 M (tiny).
(The counts are checked by ``tests/wav2vec2/test_presets.py``.) ``medium`` and ``small``
stand in for the ~61 M and ~36 M models of T. Johnson's "Training Efficient Wav2Vec2.0
Automatic Speech Recognition Engine Transformer Model from Scratch with Different Heads"
(github.com/tristinjohnson/PreTraining-ASR-From-Scratch); their other options are BASE's.
All presets keep fairseq's 7-layer extractor geometry (400-sample receptive field, 320-sample
hop) except that ``mini`` and ``tiny`` keep the geometry with 64 and 32 channels.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import torch

from espnet_ext.core.frames import WAV2VEC2_CONV_LAYERS
from espnet_ext.wav2vec2.config import Wav2Vec2Config

_STANDARD_CONV = list(WAV2VEC2_CONV_LAYERS)


def base_config() -> Wav2Vec2Config:
    """fairseq ``wav2vec2_base_librispeech.yaml`` (BASE, ~95 M)."""
    return Wav2Vec2Config(
        conv_feature_layers=list(_STANDARD_CONV),
        extractor_mode="default",
        conv_bias=False,
        encoder_layers=12,
        encoder_embed_dim=768,
        encoder_ffn_embed_dim=3072,
        encoder_attention_heads=12,
        layer_norm_first=False,
        quantize_targets=True,
        final_dim=256,
        encoder_layerdrop=0.05,
        dropout_input=0.1,
        dropout_features=0.1,
        feature_grad_mult=0.1,
    )


def medium_config() -> Wav2Vec2Config:
    """BASE with 8 layers and FFN 2560 (~61 M)."""
    return dataclasses.replace(base_config(), encoder_layers=8, encoder_ffn_embed_dim=2560)


def small_config() -> Wav2Vec2Config:
    """BASE with 8 layers of width 512, FFN 2560, 8 heads (~36 M)."""
    return dataclasses.replace(
        base_config(), encoder_layers=8, encoder_embed_dim=512, encoder_ffn_embed_dim=2560, encoder_attention_heads=8
    )


def large_config() -> Wav2Vec2Config:
    """fairseq ``wav2vec2_large_librivox.yaml`` (LARGE, LV-60, ~317 M)."""
    return Wav2Vec2Config(
        conv_feature_layers=list(_STANDARD_CONV),
        extractor_mode="layer_norm",
        conv_bias=True,
        encoder_layers=24,
        encoder_embed_dim=1024,
        encoder_ffn_embed_dim=4096,
        encoder_attention_heads=16,
        layer_norm_first=True,
        quantize_targets=True,
        final_dim=768,
        latent_temp=(2.0, 0.1, 0.999995),
        encoder_layerdrop=0.0,
        dropout_input=0.0,
        dropout_features=0.0,
        dropout=0.0,
        attention_dropout=0.0,
        feature_grad_mult=1.0,
    )


def mini_config() -> Wav2Vec2Config:
    """The mini recipes' CPU model (pre-training and fine-tuning in minutes on 2 cores).

    LARGE's stable choices at a small size: pre-LN layers and a ``layer_norm`` extractor with
    conv bias, 64 conv channels with fairseq's geometry, 4 x 128 Transformer, no layerdrop.
    """
    return dataclasses.replace(
        large_config(),
        conv_feature_layers=[(64, 10, 5)] + [(64, 3, 2)] * 4 + [(64, 2, 2)] * 2,
        encoder_layers=4,
        encoder_embed_dim=128,
        encoder_ffn_embed_dim=512,
        encoder_attention_heads=4,
        conv_pos=32,
        conv_pos_groups=8,
        final_dim=64,
        latent_vars=32,
        latent_groups=2,
        latent_temp=(2.0, 0.5, 0.999995),
    )


def tiny_config() -> Wav2Vec2Config:
    """A few thousand parameters per part for CPU tests; BASE's options otherwise."""
    return dataclasses.replace(
        base_config(),
        conv_feature_layers=[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2,
        encoder_layers=2,
        encoder_embed_dim=64,
        encoder_ffn_embed_dim=128,
        encoder_attention_heads=4,
        conv_pos=16,
        conv_pos_groups=4,
        final_dim=32,
        latent_vars=16,
        encoder_layerdrop=0.0,
    )


#: preset name -> config factory.
PRESETS: dict[str, Callable[[], Wav2Vec2Config]] = {
    "base": base_config,
    "medium": medium_config,
    "small": small_config,
    "large": large_config,
    "mini": mini_config,
    "tiny": tiny_config,
}


def preset_config(name: str) -> Wav2Vec2Config:
    """The config of preset ``name`` (a fresh object)."""
    if name not in PRESETS:
        raise ValueError(f"preset: expected one of {', '.join(PRESETS)}; found {name!r}")
    return PRESETS[name]()


class ParameterCount(NamedTuple):
    """Parameters per part of fairseq's pre-training ``Wav2Vec2Model`` (see the module docstring)."""

    feature_extractor: int
    feature_projection: int
    mask_emb: int
    positional_conv: int
    transformer_layers: int
    encoder_layer_norm: int
    quantizer: int
    project_q: int
    final_proj: int
    target_glu: int

    @property
    def backbone(self) -> int:
        """What :class:`~espnet_ext.wav2vec2.model.Wav2Vec2Model` holds."""
        return sum(self[:6])

    @property
    def pretraining_heads(self) -> int:
        """Quantizer, ``project_q``, ``final_proj``, ``target_glu``."""
        return sum(self[6:])

    @property
    def total(self) -> int:
        """What fairseq's ``Wav2Vec2Model`` holds."""
        return sum(self)


def _linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def _pretraining_heads(config: Wav2Vec2Config) -> dict[str, int]:
    """fairseq's construction rules for the heads of ``Wav2Vec2Model`` (``quantize_input`` aside)."""
    final_dim = config.final_dim if config.final_dim > 0 else config.encoder_embed_dim
    heads = {"quantizer": 0, "target_glu": 0, "final_proj": _linear(config.encoder_embed_dim, final_dim)}
    if config.quantize_targets:
        vq_dim = config.latent_dim if config.latent_dim > 0 else final_dim
        groups, num_vars = config.latent_groups, config.latent_vars
        codebook = groups * num_vars * (vq_dim // groups)
        inner, proj = config.conv_dim, 0
        for _ in range(config.quantizer_depth - 1):
            proj += _linear(inner, config.conv_dim * config.quantizer_factor)
            inner = config.conv_dim * config.quantizer_factor
        heads["quantizer"] = codebook + proj + _linear(inner, groups * num_vars)
        heads["project_q"] = _linear(vq_dim, final_dim)
    else:
        heads["project_q"] = _linear(config.conv_dim, final_dim)
    if config.target_glu:
        heads["target_glu"] = _linear(final_dim, 2 * final_dim)
    return heads


def parameter_count(config: Wav2Vec2Config) -> ParameterCount:
    """Count parameters per part; the backbone is built on the ``meta`` device (no memory, no init cost)."""
    from espnet_ext.wav2vec2.model import wav2vec2_model

    with torch.device("meta"):
        model = wav2vec2_model(config)

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    encoder = model.encoder
    heads = _pretraining_heads(config)
    return ParameterCount(
        feature_extractor=count(model.feature_extractor),
        feature_projection=count(model.feature_projection),
        mask_emb=model.mask_emb.numel(),
        positional_conv=count(encoder.pos_conv),
        transformer_layers=count(encoder.layers),
        encoder_layer_norm=count(encoder.layer_norm),
        quantizer=heads["quantizer"],
        project_q=heads["project_q"],
        final_proj=heads["final_proj"],
        target_glu=heads["target_glu"],
    )


def format_counts(name: str, counts: ParameterCount) -> str:
    """One preset's counts as text (millions, and exact integers)."""
    lines = [
        f"{name}: total {counts.total / 1e6:.2f} M ({counts.total:,}); backbone {counts.backbone / 1e6:.2f} M "
        f"({counts.backbone:,}); pre-training heads {counts.pretraining_heads / 1e6:.2f} M"
    ]
    lines += [f"    {part:<20s} {value:>13,}" for part, value in counts._asdict().items()]
    return "\n".join(lines)
