"""wav2vec 2.0 pre-training: backbone + Gumbel quantizer + ``project_q`` + ``final_proj`` + the loss.

:class:`Wav2Vec2Pretraining` is fairseq's ``Wav2Vec2Model.forward`` (``features_only=False``)
followed by ``Wav2vecCriterion``, written as a composition:

1. span masks (:func:`~espnet_ext.wav2vec2.masking.span_mask`, fairseq semantics: ``mask_prob``
   is the chance that a frame *starts* a span, at least 2 spans per utterance as fairseq's
   pre-training asks; ``require_same_masks``, fairseq's default, trims every utterance to the
   batch's least masked count); channel masks when ``mask_channel_prob > 0``;
2. the backbone (:class:`~espnet_ext.wav2vec2.model.Wav2Vec2Model`): conv features, feature
   penalty, masked frames replaced by ``mask_emb``, the Transformer;
3. optionally a further **context network** on the backbone's output (the hook below);
4. targets: the quantizer on the unmasked features (fairseq ``unmasked_features`` after
   ``dropout_features``), then ``project_q``; predictions: ``final_proj`` of the context output;
5. negatives from the other masked frames of the same utterance
   (:mod:`~espnet_ext.wav2vec2.negatives`), cosine logits and fairseq's loss
   (:mod:`~espnet_ext.wav2vec2.losses`).

Everything is computed on the dense ``(B, T)`` grid (targets quantized at every frame, the
loss summed over the masked ones) so that no step needs the number of masked frames on the
host: no host-device synchronisation in the forward pass. fairseq gathers the masked frames
into ``(B, M, C)`` instead, which forces the same ``M`` per utterance
(``require_same_masks``); here the masks follow the config's ``require_same_masks`` (default
True, as fairseq: the same count in every utterance), and with it off each utterance keeps its
own count (``mask_dropout`` is not implemented). The quantizer's perplexities average over the
masked frames, as fairseq (which quantizes only those) and Hugging Face do.

Context-network hook
--------------------
``context`` (optional) is any module with

* ``forward(x, padding_mask)`` -> an object with ``.output`` ``(B, T', C)`` and
  ``.padding_mask`` ``(B, T')``;
* ``downsample_mask(mask, lengths)`` ``(B, T)`` -> ``(B, T')`` and
  ``downsample_targets(targets, lengths)`` ``(B, T, D)`` -> ``(B, T', D)``: how frame-level
  masks and targets map to its output frames.

:class:`~espnet_ext.wav2vec2.downsample.DownsamplingContextNetwork` is one (:func:`downsampling_context`
builds it from a config). It runs on the backbone's last hidden state, so with a backbone of
``encoder_layers: 0`` it replaces the Transformer (the backbone then contributes the
positional convolution and LayerNorm): the same composition as fine-tuning with the
``wav2vec2`` frontend and the ``w2v2_context`` encoder. Masks are drawn and ``mask_emb``
applied at the input rate ``T``; a downsampled frame is masked, and takes its target from,
its nearest input frame; negatives, logits and perplexities are at the output rate ``T'``.

Only torch is imported here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from espnet_ext.wav2vec2.config import Wav2Vec2Config
from espnet_ext.wav2vec2.losses import (
    ContrastiveStats,
    PretrainingLoss,
    contrastive_logits,
    contrastive_stats,
    same_codes,
    wav2vec2_loss,
)
from espnet_ext.wav2vec2.masking import span_mask
from espnet_ext.wav2vec2.model import Wav2Vec2Model, wav2vec2_model
from espnet_ext.wav2vec2.negatives import Negatives, sample_negatives
from espnet_ext.wav2vec2.quantizer import (
    GumbelVectorQuantizer,
    QuantizerOutput,
    gumbel_temperature,
    gumbel_vector_quantizer,
)


class PretrainingOptions(NamedTuple):
    """Options of the objective, under fairseq's names (see :class:`~espnet_ext.wav2vec2.config.Wav2Vec2Config`).

    ``diversity_weight`` and ``feature_penalty_weight`` are fairseq's criterion
    ``loss_weights`` (BASE ``[0.1, 10]``); ``min_masks`` is the 2 spans fairseq's pre-training asks;
    ``require_same_masks`` applies to the time masks (fairseq's channel masks always have it).
    """

    num_negatives: int = 100
    logit_temp: float = 0.1
    latent_temp: tuple[float, float, float] = (2.0, 0.5, 0.999995)
    mask_prob: float = 0.65
    mask_length: int = 10
    min_masks: int = 2
    mask_channel_prob: float = 0.0
    mask_channel_length: int = 10
    negatives_from_everywhere: bool = False
    diversity_weight: float = 0.1
    feature_penalty_weight: float = 10.0
    require_same_masks: bool = True

    @classmethod
    def from_config(
        cls, config: Wav2Vec2Config, diversity_weight: float = 0.1, feature_penalty_weight: float = 10.0
    ) -> PretrainingOptions:
        """The options a :class:`Wav2Vec2Config` carries, plus the criterion's loss weights."""
        return cls(
            config.num_negatives,
            config.logit_temp,
            tuple(config.latent_temp),
            config.mask_prob,
            config.mask_length,
            2,
            config.mask_channel_prob,
            config.mask_channel_length,
            config.negatives_from_everywhere,
            diversity_weight,
            feature_penalty_weight,
            config.require_same_masks,
        )


class PretrainingOutput(NamedTuple):
    """What :meth:`Wav2Vec2Pretraining.forward` returns (``T'`` = context output frames, ``T`` without one).

    Attributes:
        loss: :class:`~espnet_ext.wav2vec2.losses.PretrainingLoss` (fairseq's scaling).
        stats: :class:`~espnet_ext.wav2vec2.losses.ContrastiveStats` (accuracy, similarities).
        quantizer: :class:`~espnet_ext.wav2vec2.quantizer.QuantizerOutput` (perplexities, temperature).
        logits: ``(B, T', K + 1)`` contrastive logits (meaningful at masked frames).
        mask: ``(B, T')`` bool, the masked frames the loss is summed over.
        padding_mask: ``(B, T')`` bool, True at padding.
        predictions: ``(B, T', final_dim)`` ``final_proj`` of the context output.
        targets: ``(B, T', final_dim)`` ``project_q`` of the quantized features.
        negatives: :class:`~espnet_ext.wav2vec2.negatives.Negatives` used.
    """

    loss: PretrainingLoss
    stats: ContrastiveStats
    quantizer: QuantizerOutput
    logits: Tensor
    mask: Tensor
    padding_mask: Tensor
    predictions: Tensor
    targets: Tensor
    negatives: Negatives


class Wav2Vec2Pretraining(nn.Module):
    """The wav2vec 2.0 pre-training model (see the module docstring).

    Args:
        backbone: :class:`~espnet_ext.wav2vec2.model.Wav2Vec2Model`.
        quantizer: :class:`~espnet_ext.wav2vec2.quantizer.GumbelVectorQuantizer` on the
            backbone's ``conv_dim`` features.
        project_q: Linear ``latent_dim -> final_dim`` (fairseq ``project_q``).
        final_proj: Linear ``context output dim -> final_dim`` (fairseq ``final_proj``).
        options: :class:`PretrainingOptions`.
        context: optional context network on the backbone's output (see the module docstring).
    """

    def __init__(
        self,
        backbone: Wav2Vec2Model,
        quantizer: GumbelVectorQuantizer,
        project_q: nn.Module,
        final_proj: nn.Module,
        options: PretrainingOptions = PretrainingOptions(),
        *,
        context: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.quantizer = quantizer
        self.project_q = project_q
        self.final_proj = final_proj
        self.context_network = context
        self.options = options

    def temperature(self, num_updates: int | Tensor) -> float | Tensor:
        """Gumbel temperature after ``num_updates`` optimizer updates (fairseq ``latent_temp``)."""
        return gumbel_temperature(num_updates, *self.options.latent_temp)

    def make_masks(
        self, lengths: Tensor, frames: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Time mask ``(B, frames)`` and channel mask ``(B, encoder_embed_dim)`` or None.

        Args:
            lengths: ``(B,)`` valid frames per utterance.
            frames: ``T``, padded frames.
        """
        opt = self.options
        time_mask = span_mask(
            lengths,
            frames,
            opt.mask_prob,
            opt.mask_length,
            opt.min_masks,
            generator,
            require_same_masks=opt.require_same_masks,
        )
        channel_mask = None
        if opt.mask_channel_prob > 0:
            channels = self.backbone.output_size()
            full = torch.full_like(lengths, channels)
            channel_mask = span_mask(
                full, channels, opt.mask_channel_prob, opt.mask_channel_length, generator=generator
            )
        return time_mask, channel_mask

    def _encode(
        self, waveforms: Tensor, lengths: Tensor | None, time_mask: Tensor | None, channel_mask: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Backbone (+ context network): context output, padding mask, features, mask, penalty."""
        if time_mask is None:
            frames = int(self.backbone.output_lengths(waveforms.size(1)))
            if lengths is None:
                frame_lengths = torch.full((waveforms.size(0),), frames, dtype=torch.long, device=waveforms.device)
            else:
                frame_lengths = self.backbone.output_lengths(lengths.to(waveforms.device).long())
            time_mask, drawn_channels = self.make_masks(frame_lengths, frames)
            channel_mask = drawn_channels if channel_mask is None else channel_mask
        out = self.backbone(waveforms, lengths, time_mask=time_mask, channel_mask=channel_mask)
        x, padding_mask, features = out.last_hidden_state, out.padding_mask, out.unmasked_features
        mask = time_mask & ~padding_mask
        if self.context_network is not None:
            context = self.context_network(x, padding_mask)
            mask = self.context_network.downsample_mask(mask, out.lengths)
            features = self.context_network.downsample_targets(features, out.lengths)
            x, padding_mask = context.output, context.padding_mask
        return x, padding_mask, features, mask, out.feature_penalty

    def forward(
        self,
        waveforms: Tensor,
        lengths: Tensor | None = None,
        *,
        num_updates: int | Tensor = 0,
        temperature: None | float | Tensor = None,
        time_mask: Tensor | None = None,
        channel_mask: Tensor | None = None,
        negatives: Negatives | None = None,
    ) -> PretrainingOutput:
        """Masked waveforms -> contrastive loss (masks and negatives are drawn unless given).

        Args:
            waveforms: ``(B, L)`` float, zero-padded after ``lengths``.
            lengths: ``(B,)`` integer valid samples, or None.
            num_updates: optimizer updates so far (int or tensor): sets the Gumbel temperature.
            temperature: instead, the temperature itself.
            time_mask: ``(B, T)`` bool time mask at the backbone's frame rate, or None (drawn).
            channel_mask: ``(B, encoder_embed_dim)`` bool, or None (drawn when ``mask_channel_prob > 0``
                and ``time_mask`` is None).
            negatives: :class:`~espnet_ext.wav2vec2.negatives.Negatives` at the output rate, or None (drawn).
        """
        x, padding_mask, features, mask, penalty = self._encode(waveforms, lengths, time_mask, channel_mask)
        opt = self.options
        candidates = (~padding_mask if opt.negatives_from_everywhere else mask) & ~padding_mask
        if temperature is None:
            temperature = self.temperature(num_updates)
        quantized = self.quantizer(features, temperature, candidates)
        targets = self.project_q(quantized.quantized)
        predictions = self.final_proj(x)
        if negatives is None:
            negatives = sample_negatives(candidates, opt.num_negatives)
        scores = contrastive_logits(
            predictions, targets, negatives, opt.logit_temp, same_codes(quantized.codes, negatives.indices)
        )
        loss = wav2vec2_loss(
            scores.logits,
            mask,
            quantized.prob_perplexity,
            quantized.num_vars,
            penalty,
            opt.diversity_weight,
            opt.feature_penalty_weight,
        )
        return PretrainingOutput(
            loss,
            contrastive_stats(scores, mask),
            quantized,
            scores.logits,
            mask,
            padding_mask,
            predictions,
            targets,
            negatives,
        )

    # ------------------------------------------------------------------ heads under fairseq names
    def pretraining_state(self) -> dict[str, Tensor]:
        """The heads' weights under fairseq's names (``quantizer.vars``, ``quantizer.weight_proj.*``,
        ``project_q.*``, ``final_proj.*``), plus ``context_network.*`` when there is one: what
        :func:`~espnet_ext.wav2vec2.importers.save_backbone` stores as ``pretraining_state``."""
        return {name: value for name, value in self.state_dict().items() if not name.startswith("backbone.")}

    def load_pretraining_state(self, state: Mapping[str, Tensor]) -> None:
        """Load :meth:`pretraining_state` (or a fairseq / Hugging Face checkpoint's
        ``info.pretraining_state``) strictly.

        Raises:
            ValueError: naming missing and unexpected keys and keys of the wrong shape.
        """
        expected = self.pretraining_state()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = [
            f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
            for k, v in expected.items()
            if k in state and state[k].shape != v.shape
        ]
        if missing or unexpected or wrong:
            raise ValueError(
                f"pretraining_state: missing keys {missing}; unexpected keys {unexpected}; wrong shapes {wrong}"
            )
        self.load_state_dict(dict(state), strict=False)


def check_pretraining_config(config: Wav2Vec2Config) -> None:
    """Raise ValueError for fairseq options this objective does not implement."""
    unsupported = {
        "quantize_targets": (config.quantize_targets, True),
        "cross_sample_negatives": (config.cross_sample_negatives, 0),
        "codebook_negatives": (config.codebook_negatives, 0),
        "target_glu": (config.target_glu, False),
        "mask_selection": (config.mask_selection, "static"),
        "no_mask_overlap": (config.no_mask_overlap, False),
        "mask_channel_selection": (config.mask_channel_selection, "static"),
        "mask_channel_before": (config.mask_channel_before, False),
        "mask_dropout": (config.mask_dropout, 0.0),
    }
    for name, (found, expected) in unsupported.items():
        if found != expected:
            raise ValueError(
                f"{name}: expected {expected!r} (the only value wav2vec 2.0 pre-training "
                f"implements here); found {found!r}"
            )
    if not isinstance(config.num_negatives, int) or config.num_negatives < 1:
        raise ValueError(f"num_negatives: expected a positive integer; found {config.num_negatives!r}")
    if config.mask_length < 1:
        raise ValueError(f"mask_length: expected >= 1; found {config.mask_length}")


def downsampling_context_options(config: Wav2Vec2Config, **options: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`~espnet_ext.wav2vec2.downsample.downsampling_context_network`
    for a context network sized like ``config``'s Transformer (width, heads, FFN, dropouts, LN
    placement, positional convolution), ``options`` overriding (``num_encoder_layers``,
    ``num_decoder_layers``, ``downsample_rate``, ``conv_ffn``, ...). Plain values: checkpoints
    store them (:func:`~espnet_ext.wav2vec2.importers.save_backbone` ``context``)."""
    values: dict[str, Any] = dict(
        embed_dim=config.encoder_embed_dim,
        num_heads=config.encoder_attention_heads,
        ffn_dim=config.encoder_ffn_embed_dim,
        dropout=config.dropout,
        attention_dropout=config.attention_dropout,
        activation_dropout=config.activation_dropout,
        layer_norm_first=config.layer_norm_first,
        pos_conv_kernel=config.conv_pos,
        pos_conv_groups=config.conv_pos_groups,
    )
    if config.activation_fn in ("gelu", "relu", "swish"):
        values["activation"] = config.activation_fn
    values.update(options)
    return values


def downsampling_context(config: Wav2Vec2Config, **options: Any) -> nn.Module:
    """A :class:`~espnet_ext.wav2vec2.downsample.DownsamplingContextNetwork` built from
    :func:`downsampling_context_options`."""
    from espnet_ext.wav2vec2.downsample import downsampling_context_network

    return downsampling_context_network(**downsampling_context_options(config, **options))


def wav2vec2_pretraining(
    config: Wav2Vec2Config | str,
    *,
    context: nn.Module | None = None,
    diversity_weight: float = 0.1,
    feature_penalty_weight: float = 10.0,
    backbone: Wav2Vec2Model | None = None,
) -> Wav2Vec2Pretraining:
    """Build a randomly initialised :class:`Wav2Vec2Pretraining` (fairseq's initialisation).

    Args:
        config: a :class:`~espnet_ext.wav2vec2.config.Wav2Vec2Config` or a preset name.
        context: optional context network on the backbone's output (module docstring); its
            output width must be ``encoder_embed_dim``.
        diversity_weight, feature_penalty_weight: fairseq ``loss_weights`` (BASE 0.1, 10).
        backbone: a backbone to use (e.g. loaded from a checkpoint); default: a new one.
    Raises:
        ValueError: an option the objective does not implement (:func:`check_pretraining_config`).
    """
    if isinstance(config, str):
        from espnet_ext.wav2vec2.presets import preset_config

        config = preset_config(config)
    check_pretraining_config(config)
    final_dim = config.final_dim if config.final_dim > 0 else config.encoder_embed_dim
    vq_dim = config.latent_dim if config.latent_dim > 0 else final_dim
    quantizer = gumbel_vector_quantizer(
        config.conv_dim,
        config.latent_vars,
        config.latent_groups,
        vq_dim,
        config.quantizer_depth,
        config.quantizer_factor,
    )
    options = PretrainingOptions.from_config(config, diversity_weight, feature_penalty_weight)
    return Wav2Vec2Pretraining(
        backbone if backbone is not None else wav2vec2_model(config),
        quantizer,
        nn.Linear(vq_dim, final_dim),
        nn.Linear(config.encoder_embed_dim, final_dim),
        options,
        context=context,
    )


def pretraining_from_checkpoint(
    path: Any, *, allow_unsafe: bool = False, diversity_weight: float = 0.1, feature_penalty_weight: float = 10.0
) -> Wav2Vec2Pretraining:
    """Continue pre-training from a checkpoint with its heads: a fairseq pre-training ``.pt``, a
    Hugging Face ``Wav2Vec2ForPreTraining`` directory, or a :func:`~espnet_ext.wav2vec2.importers.save_backbone`
    file with ``pretraining_state`` (standard context network only).

    Raises:
        ValueError: the checkpoint has no pre-training heads, or they do not fit the config.
    """
    from espnet_ext.wav2vec2.importers import load_checkpoint

    backbone, config, info = load_checkpoint(path, allow_unsafe=allow_unsafe)
    if "quantizer.vars" not in info.pretraining_state:
        raise ValueError(
            f"{path}: expected pre-training heads (quantizer.vars, project_q, final_proj); "
            f"found {sorted(info.pretraining_state) or 'none'}"
        )
    config = dataclasses.replace(config, quantize_targets=True)  # Hugging Face configs do not record it
    model = wav2vec2_pretraining(
        config,
        diversity_weight=diversity_weight,
        feature_penalty_weight=feature_penalty_weight,
        backbone=backbone.train(),
    )
    model.load_pretraining_state(info.pretraining_state)
    return model
