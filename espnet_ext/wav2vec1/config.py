"""Configuration and presets of wav2vec 1.0 (Schneider et al., 2019), with fairseq's option names.

:class:`Wav2Vec1Config` carries the options of fairseq's ``Wav2VecConfig``
(``fairseq/models/wav2vec/wav2vec.py``) that the model and objective implemented here use,
under fairseq's field names. Its *defaults* are the paper's base model (5-layer encoder,
9-layer context network of kernel 3, no aggregator skip connections); fairseq's dataclass
defaults are closer to the ``large`` preset. Options this project adds are marked *(not fairseq)*.

Not implemented (fairseq options left at their defaults): ``cross_sample_negatives`` (0),
``sample_distance`` (None: distractors from the whole utterance), ``aggregator: gru``,
``project_features`` (``none``), ``vq_type`` (``none``: vq-wav2vec is another model).

Presets (:data:`PRESETS`, counts with the prediction head; ``python -m espnet_ext.bin.presets wav2vec1``):

========  =================================================================  ===========
``base``  the paper's model: encoder 5 x 512 (kernels 10,8,4,4,4; strides      15.5 M
          5,4,2,2,2), context network 9 x (512, kernel 3)
``large`` fairseq's ``wav2vec_large``: 2 more encoder layers of kernel 1,      32.5 M
          context network of 12 layers, kernels 2..13, skip connections
``tiny``  CPU tests: the base geometry with 64 channels, 4 context layers       0.18 M
========  =================================================================  ===========

Without the prediction head (3.15 M for 512 channels): 12.3 M, 29.4 M, 0.13 M. All keep the
paper's encoder geometry: 465-sample receptive field, 160-sample (10 ms) hop, offset 3.

Imports neither torch nor ESPnet (the ``wav2vec1`` frontend's frame count for the stage-4 filter,
which may read a checkpoint, is :func:`espnet_ext.espnet.lengths.wav2vec1_frontend_frames`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from espnet_ext.core.frames import ConvLayer, parse_conv_layers, receptive_field, total_stride

#: The paper's encoder: (channels, kernel, stride) per causal convolution; 160 samples (10 ms) per frame.
ENCODER_LAYERS: tuple[ConvLayer, ...] = ((512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), (512, 4, 2))
#: The paper's context network: 9 layers of kernel 3, stride 1.
CONTEXT_LAYERS: tuple[ConvLayer, ...] = ((512, 3, 1),) * 9
ACTIVATIONS = ("relu", "gelu")
NORMS = ("group", "layer")


@dataclass
class Wav2Vec1Config:
    """wav2vec 1.0 options (fairseq names; defaults: the paper's base model).

    Encoder (fairseq ``ConvFeatureExtractionModel``):
        conv_feature_layers: ``(dim, kernel, stride)`` per convolution (no bias, no padding:
            frame ``t`` sees samples ``[t * S, t * S + R)``, ``S`` the total stride, ``R`` the
            receptive field); fairseq's string form is accepted.
        log_compression: ``log(1 + |z|)`` on the encoder output.
        skip_connections_feat: residual connections between equal-width encoder layers.
    Context network (fairseq ``ConvAggegator``), causal: each layer pads ``kernel - 1``
    frames on the left (a copy of the first frame, or zeros with ``agg_zero_pad``):
        conv_aggregator_layers: ``(dim, kernel, stride)`` per layer (stride 1).
        skip_connections_agg: residual connections (a 1x1 projection where widths differ),
            scaled by ``sqrt(residual_scale)`` (as the encoder's).
        no_conv_bias: context convolutions without bias.
        dropout: after each context convolution; dropout_features: on the encoder output
            the context network reads; dropout_agg: on the context network output.
    Both:
        activation: ``relu`` or ``gelu``.
        non_affine_group_norm: normalisation without a learned scale and shift.
        norm: *(not fairseq)* ``group`` is fairseq's ``Fp32GroupNorm(1, C)``: statistics over
            all channels and all (valid) frames of the utterance; the convolutions are causal
            but these statistics are not, so a frame's output depends on the rest of the
            utterance through two numbers per layer. ``layer`` is fairseq's
            ``norm_block(is_layer_norm=True)``: LayerNorm over the channels of each frame,
            which makes the whole model strictly causal (streamable).
    Objective (fairseq ``Wav2VecPredictionsModel`` and the ``wav2vec`` criterion):
        prediction_steps: ``K``; step ``k`` (1..K) of the context at frame ``t`` predicts the
            encoder output at ``t + offset + k - 1``.
        offset: ``"auto"`` (fairseq: ``ceil(R / S)`` = 3 for the paper's encoder, so a target
            shares no samples with what the context has seen) or an integer >= 1 (1: the
            paper's ``t + k``).
        num_negatives: distractors per target, drawn uniformly from the other frames of the
            same utterance (fairseq ``num_negatives``, ``cross_sample_negatives`` 0).
        infonce: cross-entropy over (positive, distractors) instead of fairseq's default
            binary cross-entropy.
        balanced_classes: binary cross-entropy with the distractors weighted
            ``1 / num_negatives`` (fairseq ``balanced_classes``; default: weight 1 each).
    """

    conv_feature_layers: list[ConvLayer] = field(default_factory=lambda: list(ENCODER_LAYERS))
    log_compression: bool = True
    skip_connections_feat: bool = False
    conv_aggregator_layers: list[ConvLayer] = field(default_factory=lambda: list(CONTEXT_LAYERS))
    skip_connections_agg: bool = False
    residual_scale: float = 0.5
    no_conv_bias: bool = False
    agg_zero_pad: bool = False
    dropout: float = 0.0
    dropout_features: float = 0.0
    dropout_agg: float = 0.0
    activation: str = "relu"
    non_affine_group_norm: bool = False
    norm: str = "group"
    prediction_steps: int = 12
    offset: str | int = "auto"
    num_negatives: int = 10
    infonce: bool = False
    balanced_classes: bool = False

    def __post_init__(self) -> None:
        self.conv_feature_layers = parse_conv_layers(self.conv_feature_layers, "conv_feature_layers")
        self.conv_aggregator_layers = parse_conv_layers(self.conv_aggregator_layers, "conv_aggregator_layers")
        self._validate()

    def _validate(self) -> None:
        for name, allowed in (("activation", ACTIVATIONS), ("norm", NORMS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}: expected one of {', '.join(allowed)}; found {getattr(self, name)!r}")
        if any(stride != 1 for _, _, stride in self.conv_aggregator_layers):
            raise ValueError(
                f"conv_aggregator_layers: expected stride 1 in every layer (a causal context "
                f"network keeps the frame rate); found {self.conv_aggregator_layers}"
            )
        for name in ("dropout", "dropout_features", "dropout_agg"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1]; found {getattr(self, name)!r}")
        for name in ("prediction_steps", "num_negatives"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}: expected a positive integer; found {value!r}")
        if self.offset != "auto" and (
            not isinstance(self.offset, int) or isinstance(self.offset, bool) or self.offset < 1
        ):
            raise ValueError(
                f"offset: expected 'auto' or an integer >= 1 (frames ahead of the first "
                f"prediction step); found {self.offset!r}"
            )
        if self.residual_scale <= 0:
            raise ValueError(f"residual_scale: expected > 0; found {self.residual_scale!r}")

    # ------------------------------------------------------------------ derived sizes
    @property
    def encoder_dim(self) -> int:
        """Channels of the encoder output ``z`` (fairseq ``embed``)."""
        return self.conv_feature_layers[-1][0]

    @property
    def context_dim(self) -> int:
        """Channels of the context network output ``c``."""
        return self.conv_aggregator_layers[-1][0]

    @property
    def stride(self) -> int:
        """Samples per encoder frame (160, 10 ms at 16 kHz, for the paper's encoder)."""
        return total_stride(self.conv_feature_layers)

    @property
    def receptive_field(self) -> int:
        """Samples one encoder frame sees (465 for the paper's encoder)."""
        return receptive_field(self.conv_feature_layers)

    @property
    def offset_frames(self) -> int:
        """Frames between a context frame and its first target (fairseq ``offset``)."""
        if self.offset == "auto":
            return math.ceil(self.receptive_field / self.stride)
        return int(self.offset)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of lists, numbers and strings (YAML/JSON and ``weights_only``-safe)."""
        out = dataclasses.asdict(self)
        for name in ("conv_feature_layers", "conv_aggregator_layers"):
            out[name] = [list(layer) for layer in getattr(self, name)]
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Wav2Vec1Config:
        """Inverse of :meth:`to_dict` (missing fields take their defaults). Raises ValueError naming unknown fields."""
        return cls().replace(values, "Wav2Vec1Config")

    def replace(self, overrides: Mapping[str, Any], source: str = "config") -> Wav2Vec1Config:
        """A copy with ``overrides`` applied and validated. Raises ValueError naming unknown fields and ``source``."""
        unknown = sorted(set(overrides or {}) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(
                f"{source}: unknown fields {unknown}; expected Wav2Vec1Config fields (fairseq "
                f"names), e.g. prediction_steps, num_negatives, offset, norm"
            )
        return dataclasses.replace(self, **dict(overrides or {}))


# ---------------------------------------------------------------------------- presets
def base_config() -> Wav2Vec1Config:
    """The wav2vec paper's model (its "wav2vec"; fairseq README: train with lr 0.005)."""
    return Wav2Vec1Config()


def large_config() -> Wav2Vec1Config:
    """fairseq's ``wav2vec_large`` (examples/wav2vec/README.md): two kernel-1 encoder layers more,
    a context network of 12 layers with kernels 2..13 and skip connections (residual scale 0.5)."""
    return Wav2Vec1Config(
        conv_feature_layers=list(ENCODER_LAYERS) + [(512, 1, 1)] * 2,
        conv_aggregator_layers=[(512, k, 1) for k in range(2, 14)],
        skip_connections_agg=True,
        residual_scale=0.5,
        log_compression=True,
    )


def tiny_config() -> Wav2Vec1Config:
    """For CPU tests and the mini corpus: the base geometry with 64 channels, 4 context layers."""
    return Wav2Vec1Config(
        conv_feature_layers=[(64, k, s) for _, k, s in ENCODER_LAYERS], conv_aggregator_layers=[(64, 3, 1)] * 4
    )


PRESETS = {"base": base_config, "large": large_config, "tiny": tiny_config}


def preset_config(name: str) -> Wav2Vec1Config:
    """The config of preset ``name`` (see :data:`PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"wav2vec1 preset: expected one of {', '.join(PRESETS)}; found {name!r}")
    return PRESETS[name]()
