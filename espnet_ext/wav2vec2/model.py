"""The wav2vec 2.0 backbone: feature extractor, feature projection, masking, Transformer.

:class:`Wav2Vec2Model` is built from sub-modules; :func:`wav2vec2_model` builds it from a
:class:`~espnet_ext.wav2vec2.config.Wav2Vec2Config` (or a preset name). The forward pass
follows fairseq's ``Wav2Vec2Model.forward(..., features_only=True)``; the pre-training heads
(quantizer, ``project_q``, ``final_proj``) are not part of it.

Stages, each public so that a pre-training objective can run them separately:
:meth:`Wav2Vec2Model.extract_features` (waveform -> features, lengths, padding mask),
:meth:`Wav2Vec2Model.apply_masks` (time and channel masks), :attr:`Wav2Vec2Model.encoder`.

Two paths: a padded batch (``lengths`` given) masks the extractor's GroupNorm statistics, the
feature penalty and the attention keys; an unpadded one (``lengths`` None, as a batch cropped to
one length is, or lengths on the CPU that are all the batch's length) uses no mask anywhere:
``nn.GroupNorm`` and ``scaled_dot_product_attention`` without a mask (flash attention on GPUs).
Both give the same numbers on an unpadded batch, up to float32 summation order.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from espnet_ext.wav2vec2.config import Wav2Vec2Config
from espnet_ext.wav2vec2.modules import (
    ConvFeatureExtractor,
    Dropout,
    FeatureProjection,
    conv_feature_extractor,
    conv_output_lengths,
    known_unpadded,
    lengths_to_padding_mask,
    receptive_field,
    scale_grad,
)
from espnet_ext.wav2vec2.transformer import TransformerEncoder, transformer_encoder


class FeatureOutput(NamedTuple):
    """What :meth:`Wav2Vec2Model.extract_features` returns.

    Attributes:
        features: ``(B, T, encoder_embed_dim)`` projected features after ``dropout_input``:
            the Transformer's input before masking.
        unmasked_features: ``(B, T, conv_dim)`` LayerNorm-ed extractor output before the
            projection, after ``dropout_features`` (fairseq's ``unmasked_features``: what the
            quantizer turns into targets).
        lengths: ``(B,)`` long, valid frames per utterance.
        padding_mask: ``(B, T)`` bool, True at padding (all False for an unpadded batch).
        feature_penalty: scalar, mean square of the raw extractor output over valid frames
            (fairseq's ``features_pen``, the loss's feature penalty).
    """

    features: Tensor
    unmasked_features: Tensor
    lengths: Tensor
    padding_mask: Tensor
    feature_penalty: Tensor


class Wav2Vec2Output(NamedTuple):
    """What :meth:`Wav2Vec2Model.forward` returns.

    Attributes:
        hidden_states: ``num_layers + 1`` tensors ``(B, T, encoder_embed_dim)``. Index 0 is the
            Transformer's input after the positional convolution (and, for post-LN models, the
            encoder LayerNorm) — Hugging Face's ``hidden_states[0]``; index ``i`` the output of
            layer ``i`` (fairseq's ``layer_results[i - 1]``). For pre-LN models, when all layers
            run, the last entry has the final encoder LayerNorm applied (fairseq's ``x``,
            Hugging Face's ``last_hidden_state``).
        lengths: ``(B,)`` long, valid frames.
        padding_mask: ``(B, T)`` bool, True at padding.
        features: ``(B, T, encoder_embed_dim)`` projected features before masking.
        unmasked_features: ``(B, T, conv_dim)`` pre-projection features (see :class:`FeatureOutput`).
        feature_penalty: scalar (see :class:`FeatureOutput`).
    """

    hidden_states: tuple[Tensor, ...]
    lengths: Tensor
    padding_mask: Tensor
    features: Tensor
    unmasked_features: Tensor
    feature_penalty: Tensor

    @property
    def last_hidden_state(self) -> Tensor:
        """``hidden_states[-1]``."""
        return self.hidden_states[-1]


class Wav2Vec2Model(nn.Module):
    """wav2vec 2.0 backbone (fairseq ``Wav2Vec2Model`` without the pre-training heads).

    Args:
        feature_extractor: :class:`~espnet_ext.wav2vec2.modules.ConvFeatureExtractor`.
        feature_projection: :class:`~espnet_ext.wav2vec2.modules.FeatureProjection`.
        encoder: :class:`~espnet_ext.wav2vec2.transformer.TransformerEncoder`.
        mask_emb: ``(encoder_embed_dim,)`` learned vector that replaces masked time steps
            (fairseq ``mask_emb``).
        feature_grad_mult: fairseq ``feature_grad_mult``: gradient scale on the extractor
            output; 0 runs the extractor without gradients.
        dropout_features: fairseq ``dropout_features`` (on ``unmasked_features``).
    """

    def __init__(
        self,
        feature_extractor: ConvFeatureExtractor,
        feature_projection: FeatureProjection,
        encoder: TransformerEncoder,
        mask_emb: nn.Parameter,
        *,
        feature_grad_mult: float = 1.0,
        dropout_features: float = 0.0,
    ) -> None:
        super().__init__()
        self.feature_extractor = feature_extractor
        self.feature_projection = feature_projection
        self.encoder = encoder
        self.mask_emb = mask_emb
        self.feature_grad_mult = feature_grad_mult
        self.dropout_features = Dropout(dropout_features)

    def set_dropout(
        self,
        *,
        dropout: float | None = None,
        attention_dropout: float | None = None,
        activation_dropout: float | None = None,
        dropout_input: float | None = None,
    ) -> None:
        """Change the dropout probabilities (None keeps one), as fairseq's fine-tuning overrides
        the pre-trained model's (``Wav2Vec2AsrConfig``: all 0.0 unless set).

        ``dropout``: the Transformer's input and each sub-layer's output (fairseq ``dropout``);
        ``attention_dropout``: on the attention weights; ``activation_dropout``: inside the
        feed-forward blocks; ``dropout_input``: on the projected features (before masking).

        Raises:
            ValueError: a probability outside [0, 1).
        """
        given = dict(
            dropout=dropout,
            attention_dropout=attention_dropout,
            activation_dropout=activation_dropout,
            dropout_input=dropout_input,
        )
        for name, p in given.items():
            if p is not None and not 0.0 <= p < 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1); found {p}")
        if dropout is not None:
            self.encoder.dropout.p = dropout
        for layer in self.encoder.layers:
            if dropout is not None:
                layer.dropout.p = dropout
            if attention_dropout is not None:
                layer.attention.dropout = attention_dropout
            if activation_dropout is not None:
                layer.feed_forward.dropout.p = activation_dropout
        if dropout_input is not None:
            self.feature_projection.dropout.p = dropout_input

    # ------------------------------------------------------------------ sizes
    def output_size(self) -> int:
        """Channels of every hidden state (``encoder_embed_dim``)."""
        return self.mask_emb.numel()

    @property
    def num_layers(self) -> int:
        """Number of Transformer layers."""
        return len(self.encoder.layers)

    @property
    def min_input_length(self) -> int:
        """Shortest waveform that yields one frame (the receptive field; 400 for fairseq's stack)."""
        return receptive_field(self.feature_extractor.layer_specs)

    def output_lengths(self, lengths: Tensor | int) -> Tensor | int:
        """Frames for ``lengths`` samples (:func:`~espnet_ext.wav2vec2.modules.conv_output_lengths`)."""
        return conv_output_lengths(lengths, self.feature_extractor.layer_specs)

    # ------------------------------------------------------------------ stages
    def _check_inputs(self, waveforms: Tensor, lengths: Tensor | None) -> Tensor:
        if waveforms.dim() != 2 or not waveforms.is_floating_point():
            raise ValueError(
                f"waveforms: expected a (batch, samples) float tensor; found shape "
                f"{tuple(waveforms.shape)}, dtype {waveforms.dtype}"
            )
        batch, samples = waveforms.shape
        if samples < self.min_input_length:
            raise ValueError(
                f"waveforms: expected at least {self.min_input_length} samples (the feature "
                f"extractor's receptive field); found {samples}"
            )
        if lengths is None:
            return torch.full((batch,), samples, dtype=torch.long, device=waveforms.device)
        if lengths.shape != (batch,) or lengths.is_floating_point():
            raise ValueError(
                f"lengths: expected a ({batch},) integer tensor; found shape {tuple(lengths.shape)}, "
                f"dtype {lengths.dtype}"
            )
        out_of_range = ((lengths < 0) | (lengths > samples)).any()
        if lengths.device.type == "cpu":
            if bool(out_of_range):
                raise ValueError(f"lengths: expected values in [0, {samples}]; found {lengths.tolist()}")
        else:  # checked on the device: reading the flag back would make the host wait for it
            torch._assert_async(~out_of_range, f"lengths: expected values in [0, {samples}]")
        return lengths.to(device=waveforms.device, dtype=torch.long)

    def extract_features(self, waveforms: Tensor, lengths: Tensor | None = None) -> FeatureOutput:
        """Waveforms -> projected features, before masking.

        Args:
            waveforms: ``(B, L)`` float samples, zero-padded after ``lengths``.
            lengths: ``(B,)`` valid samples per utterance, or None (all ``L``: the unpadded path,
                see the module docstring).
        Raises:
            ValueError: ``L`` shorter than :attr:`min_input_length`, or bad shapes/lengths. An
                utterance shorter than that in a longer batch gets 0 frames (all padding).
        """
        return self._extract(waveforms, lengths)[0]

    def _extract(self, waveforms: Tensor, lengths: Tensor | None) -> tuple[FeatureOutput, bool]:
        """:meth:`extract_features`, and whether the batch took the unpadded path."""
        sample_lengths = self._check_inputs(waveforms, lengths)
        unpadded = known_unpadded(lengths, waveforms.size(1))
        extractor_lengths = None if unpadded else sample_lengths
        if self.feature_grad_mult > 0:
            conv = scale_grad(self.feature_extractor(waveforms, extractor_lengths), self.feature_grad_mult)
        else:
            with torch.no_grad():
                conv = self.feature_extractor(waveforms, extractor_lengths)
        conv = conv.transpose(1, 2)  # (B, T, C)
        frame_lengths = self.output_lengths(sample_lengths)
        if unpadded:
            padding_mask = torch.zeros(conv.shape[:2], dtype=torch.bool, device=conv.device)
            penalty = conv.float().square().mean()
        else:
            padding_mask = lengths_to_padding_mask(frame_lengths, conv.size(1))
            valid = (~padding_mask).unsqueeze(-1).to(conv.dtype)
            penalty = (conv.float().square() * valid).sum() / (valid.sum().clamp(min=1) * conv.size(-1))
        features, normalized = self.feature_projection(conv)
        output = FeatureOutput(features, self.dropout_features(normalized), frame_lengths, padding_mask, penalty)
        return output, unpadded

    def apply_masks(
        self, features: Tensor, time_mask: Tensor | None = None, channel_mask: Tensor | None = None
    ) -> Tensor:
        """Replace masked time steps by ``mask_emb`` and zero masked channels (fairseq ``apply_mask``).

        Args:
            features: ``(B, T, C)``.
            time_mask: ``(B, T)`` bool, True where a frame is masked, or None.
            channel_mask: ``(B, C)`` bool, True where a channel is zeroed at every frame, or None
                (fairseq ``mask_channel_before=False``: applied after the time mask).
        """
        batch, steps, channels = features.shape
        if time_mask is not None:
            _check_mask("time_mask", time_mask, (batch, steps))
            features = torch.where(time_mask.unsqueeze(-1), self.mask_emb.to(features.dtype), features)
        if channel_mask is not None:
            _check_mask("channel_mask", channel_mask, (batch, channels))
            features = features.masked_fill(channel_mask.unsqueeze(1), 0.0)
        return features

    def forward(
        self,
        waveforms: Tensor,
        lengths: Tensor | None = None,
        *,
        time_mask: Tensor | None = None,
        channel_mask: Tensor | None = None,
        num_layers: int | None = None,
    ) -> Wav2Vec2Output:
        """Waveforms -> hidden states of every computed layer.

        Args:
            waveforms: ``(B, L)`` float, zero-padded after ``lengths``.
            lengths: ``(B,)`` integer valid samples, or None: nothing padded, no mask used
                anywhere (see the module docstring).
            time_mask: ``(B, T)`` bool frames to replace by ``mask_emb`` (``T`` =
                :meth:`output_lengths` of ``L``), or None.
            channel_mask: ``(B, encoder_embed_dim)`` bool channels to zero, or None.
            num_layers: run only the first ``num_layers`` Transformer layers (0 to
                :attr:`num_layers`); the others are not computed. None runs all.
        Returns:
            :class:`Wav2Vec2Output`. Values at padded frames are finite but meaningless.
        Raises:
            ValueError: ``L`` below :attr:`min_input_length`; bad shapes; ``num_layers`` out of range.
        """
        if num_layers is not None and not 0 <= num_layers <= self.num_layers:
            raise ValueError(f"num_layers: expected 0..{self.num_layers} or None; found {num_layers}")
        feats, unpadded = self._extract(waveforms, lengths)
        x = self.apply_masks(feats.features, time_mask, channel_mask)
        hidden = self.encoder(x, None if unpadded else feats.padding_mask, num_layers)
        return Wav2Vec2Output(
            hidden, feats.lengths, feats.padding_mask, feats.features, feats.unmasked_features, feats.feature_penalty
        )


def _check_mask(name: str, mask: Tensor, shape: tuple[int, int]) -> None:
    if mask.dtype != torch.bool or tuple(mask.shape) != shape:
        raise ValueError(f"{name}: expected a bool tensor of shape {shape}; found {mask.dtype} {tuple(mask.shape)}")


def wav2vec2_model(config: Wav2Vec2Config) -> Wav2Vec2Model:
    """Build a randomly initialised backbone (fairseq's initialisation) from a config
    (a preset's: ``wav2vec2_model(preset_config("base"))``).

    Works under ``with torch.device("meta"):`` (parameter counting without memory).
    """
    if isinstance(config, str):
        raise ValueError(
            f"config: expected a Wav2Vec2Config; found the string {config!r} "
            "(for a preset: wav2vec2_model(preset_config(name)))"
        )
    extractor = conv_feature_extractor(config.conv_feature_layers, config.extractor_mode, config.conv_bias)
    projection = nn.Linear(config.conv_dim, config.encoder_embed_dim) if config.has_post_extract_proj else nn.Identity()
    feature_projection = FeatureProjection(
        nn.LayerNorm(config.conv_dim, eps=config.layer_norm_eps), projection, config.dropout_input
    )
    encoder = transformer_encoder(
        embed_dim=config.encoder_embed_dim,
        ffn_dim=config.encoder_ffn_embed_dim,
        num_layers=config.encoder_layers,
        num_heads=config.encoder_attention_heads,
        layer_norm_first=config.layer_norm_first,
        conv_pos=config.conv_pos,
        conv_pos_groups=config.conv_pos_groups,
        activation_fn=config.activation_fn,
        dropout=config.dropout,
        attention_dropout=config.attention_dropout,
        activation_dropout=config.activation_dropout,
        layerdrop=config.encoder_layerdrop,
        layer_norm_eps=config.layer_norm_eps,
    )
    mask_emb = nn.Parameter(torch.empty(config.encoder_embed_dim).uniform_())
    return Wav2Vec2Model(
        extractor,
        feature_projection,
        encoder,
        mask_emb,
        feature_grad_mult=config.feature_grad_mult,
        dropout_features=config.dropout_features,
    )
