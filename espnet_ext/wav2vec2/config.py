"""Configuration of the wav2vec 2.0 backbone, with fairseq's option names.

:class:`Wav2Vec2Config` carries every option of fairseq's ``Wav2Vec2Config`` that changes
the backbone (feature extractor, feature projection, Transformer context network) or that
the pre-training objective needs (quantizer, masking, negatives), under fairseq's field
names and with fairseq's defaults. Options this project adds are marked *(not fairseq)*.

:meth:`Wav2Vec2Config.from_fairseq` reads the config a fairseq checkpoint stores (``cfg``
as a dict or omegaconf ``DictConfig``, or ``args`` as an ``argparse.Namespace``; pre-trained
or CTC fine-tuned); :meth:`Wav2Vec2Config.from_huggingface` reads a Hugging Face
``config.json``. Presets live in :mod:`espnet_ext.wav2vec2.presets`.

Imports neither torch nor ESPnet.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
from argparse import Namespace
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from espnet_ext.core.frames import WAV2VEC2_CONV_LAYERS, parse_conv_layers

ConvLayer = tuple[int, int, int]

#: Activation names accepted for ``activation_fn`` (fairseq's names; ``gelu`` is the exact erf form).
ACTIVATIONS = ("gelu", "gelu_accurate", "gelu_fast", "gelu_new", "relu", "swish", "silu", "tanh", "linear")
EXTRACTOR_MODES = ("default", "layer_norm")
MASK_SELECTIONS = ("static", "uniform", "normal", "poisson")

#: fairseq model names (``_name`` / ``arch``) whose backbone this package implements.
FAIRSEQ_MODEL_NAMES = ("wav2vec2", "wav2vec_ctc", "wav2vec_seq2seq")

#: Fine-tuning option -> pre-training option that fairseq's ``Wav2VecEncoder`` overrides with it.
FAIRSEQ_FINETUNE_OVERRIDES = {
    "dropout": "dropout",
    "activation_dropout": "activation_dropout",
    "dropout_input": "dropout_input",
    "attention_dropout": "attention_dropout",
    "mask_length": "mask_length",
    "mask_prob": "mask_prob",
    "mask_selection": "mask_selection",
    "mask_other": "mask_other",
    "no_mask_overlap": "no_mask_overlap",
    "mask_channel_length": "mask_channel_length",
    "mask_channel_prob": "mask_channel_prob",
    "mask_channel_selection": "mask_channel_selection",
    "mask_channel_other": "mask_channel_other",
    "no_mask_channel_overlap": "no_mask_channel_overlap",
    "layerdrop": "encoder_layerdrop",
    "feature_grad_mult": "feature_grad_mult",
}


@dataclass
class Wav2Vec2Config:
    """wav2vec 2.0 options; field names and defaults are fairseq's (``models/wav2vec/wav2vec2.py``).

    Feature extractor:
        conv_feature_layers: ``(dim, kernel, stride)`` per 1-D convolution; fairseq's string
            form (``"[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2"``) is accepted.
        extractor_mode: ``"default"`` (GroupNorm with one group per channel on the first layer
            only) or ``"layer_norm"`` (LayerNorm over channels after every convolution).
        conv_bias: convolutions have a bias.
        feature_grad_mult: gradient scale on the extractor output (0 freezes the extractor).
    Transformer (context network):
        encoder_layers, encoder_embed_dim, encoder_ffn_embed_dim, encoder_attention_heads,
        activation_fn (FFN), layer_norm_first (pre-LN, LARGE; post-LN, BASE, when False),
        conv_pos (kernel of the convolutional positional embedding), conv_pos_groups.
        layer_norm_eps: *(not fairseq; Hugging Face's)* epsilon of the Transformer and feature
            LayerNorms (fairseq: always 1e-5).
        project_features: *(not fairseq)* whether ``post_extract_proj`` exists; ``None`` is
            fairseq's rule (only when the last conv dim differs from ``encoder_embed_dim``);
            Hugging Face models always have it.
    Regularisation:
        dropout, attention_dropout, activation_dropout, encoder_layerdrop,
        dropout_input (after ``post_extract_proj``), dropout_features (on the unmasked features
        the quantizer sees).
    Pre-training (carried for the objective; the backbone does not use them):
        final_dim, quantize_targets, latent_vars (V), latent_groups (G), latent_dim,
        latent_temp ``(start, end, decay per update)``, quantizer_depth, quantizer_factor,
        target_glu, logit_temp, num_negatives, cross_sample_negatives, codebook_negatives,
        negatives_from_everywhere, and the ``mask_*`` / ``mask_channel_*`` span-masking options.
    """

    # feature extractor
    conv_feature_layers: list[ConvLayer] = field(default_factory=lambda: list(WAV2VEC2_CONV_LAYERS))
    extractor_mode: str = "default"
    conv_bias: bool = False
    feature_grad_mult: float = 1.0
    # transformer
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    conv_pos: int = 128
    conv_pos_groups: int = 16
    layer_norm_eps: float = 1e-5
    project_features: bool | None = None
    # regularisation
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0
    dropout_input: float = 0.0
    dropout_features: float = 0.0
    # pre-training objective
    final_dim: int = 0
    quantize_targets: bool = False
    latent_vars: int = 320
    latent_groups: int = 2
    latent_dim: int = 0
    latent_temp: tuple[float, float, float] = (2.0, 0.5, 0.999995)
    quantizer_depth: int = 1
    quantizer_factor: int = 3
    target_glu: bool = False
    logit_temp: float = 0.1
    num_negatives: int = 100
    cross_sample_negatives: int = 0
    codebook_negatives: int = 0
    negatives_from_everywhere: bool = False
    # masking
    mask_length: int = 10
    mask_prob: float = 0.65
    mask_selection: str = "static"
    mask_other: float = 0.0
    no_mask_overlap: bool = False
    mask_min_space: int = 1
    require_same_masks: bool = True
    mask_dropout: float = 0.0
    mask_channel_length: int = 10
    mask_channel_prob: float = 0.0
    mask_channel_before: bool = False
    mask_channel_selection: str = "static"
    mask_channel_other: float = 0.0
    no_mask_channel_overlap: bool = False
    mask_channel_min_space: int = 1

    def __post_init__(self) -> None:
        self.conv_feature_layers = parse_conv_layers(self.conv_feature_layers, "conv_feature_layers")
        self.latent_temp = _parse_latent_temp(self.latent_temp)
        self._validate_choices()
        self._validate_sizes()

    def _validate_choices(self) -> None:
        for name, allowed in (
            ("extractor_mode", EXTRACTOR_MODES),
            ("activation_fn", ACTIVATIONS),
            ("mask_selection", MASK_SELECTIONS),
            ("mask_channel_selection", MASK_SELECTIONS),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name}: expected one of {', '.join(allowed)}; found {value!r}")
        for name in (
            "dropout",
            "attention_dropout",
            "activation_dropout",
            "encoder_layerdrop",
            "dropout_input",
            "dropout_features",
            "mask_prob",
            "mask_channel_prob",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a probability in [0, 1]; found {value!r}")
        if self.feature_grad_mult < 0:
            raise ValueError(f"feature_grad_mult: expected >= 0; found {self.feature_grad_mult!r}")

    def _validate_sizes(self) -> None:
        for name in (
            "encoder_embed_dim",
            "encoder_ffn_embed_dim",
            "encoder_attention_heads",
            "conv_pos",
            "conv_pos_groups",
            "latent_vars",
            "latent_groups",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}: expected a positive integer; found {value!r}")
        if not isinstance(self.encoder_layers, int) or self.encoder_layers < 0:
            raise ValueError(f"encoder_layers: expected an integer >= 0; found {self.encoder_layers!r}")
        for name in ("encoder_attention_heads", "conv_pos_groups"):
            if self.encoder_embed_dim % getattr(self, name):
                raise ValueError(
                    f"encoder_embed_dim: expected a multiple of {name} ({getattr(self, name)}); "
                    f"found {self.encoder_embed_dim}"
                )

    # ------------------------------------------------------------------ derived sizes
    @property
    def conv_dim(self) -> int:
        """Channels of the feature extractor's output (fairseq's ``self.embed``)."""
        return self.conv_feature_layers[-1][0]

    @property
    def has_post_extract_proj(self) -> bool:
        """Whether the features are projected to ``encoder_embed_dim`` (fairseq's ``post_extract_proj``)."""
        if self.project_features is None:
            return self.conv_dim != self.encoder_embed_dim
        return bool(self.project_features)

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of lists, numbers, strings (YAML/JSON and ``weights_only``-safe)."""
        out = dataclasses.asdict(self)
        out["conv_feature_layers"] = [list(layer) for layer in self.conv_feature_layers]
        out["latent_temp"] = list(self.latent_temp)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Wav2Vec2Config:
        """Inverse of :meth:`to_dict`. Raises ValueError naming unknown fields."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Wav2Vec2Config: unknown fields {unknown}; expected a subset of {sorted(known)}")
        return cls(**dict(values))

    @classmethod
    def from_fairseq(cls, cfg: Any) -> Wav2Vec2Config:
        """Read the model config of a fairseq wav2vec 2.0 checkpoint, without fairseq.

        Args:
            cfg: what the checkpoint stores: ``checkpoint["cfg"]`` (a dict or omegaconf
                ``DictConfig``; its ``model`` entry, or that entry itself), or
                ``checkpoint["args"]`` (an ``argparse.Namespace``). For a CTC fine-tuned model
                (``_name: wav2vec_ctc``), the pre-training config embedded as ``w2v_args`` is
                read and fairseq's fine-tuning overrides (dropouts, masking, ``layerdrop``,
                ``feature_grad_mult``; see :data:`FAIRSEQ_FINETUNE_OVERRIDES`) are applied.
        Raises:
            ValueError: an architecture this package does not implement, or a fine-tuned
                config without the embedded pre-training config.
        """
        model = _fairseq_model_section(to_plain(cfg))
        if "w2v_args" in model or "w2v_path" in model:
            model = _fairseq_finetuned_fields(model)
        _check_fairseq_architecture(model)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in model.items() if k in known and v is not None})

    @classmethod
    def from_huggingface(cls, hf: Mapping[str, Any]) -> Wav2Vec2Config:
        """Read a Hugging Face ``Wav2Vec2Config`` (``config.json`` as a dict, or the object).

        Raises:
            ValueError: a model type or option this package does not implement (adapters,
                a non-GELU feature extractor activation, another ``model_type``).
        """
        hf = hf.to_dict() if hasattr(hf, "to_dict") else dict(hf)
        _check_huggingface_architecture(hf)
        values = {ours: hf[theirs] for theirs, ours in _HF_FIELDS.items() if theirs in hf}
        dims, kernels, strides = hf.get("conv_dim"), hf.get("conv_kernel"), hf.get("conv_stride")
        if dims is not None:
            if not (len(dims) == len(kernels or ()) == len(strides or ())):
                raise ValueError(
                    f"config.json: conv_dim/conv_kernel/conv_stride: expected equal lengths; "
                    f"found {len(dims)}/{len(kernels or ())}/{len(strides or ())}"
                )
            values["conv_feature_layers"] = [tuple(x) for x in zip(dims, kernels, strides)]
        if "feat_extract_norm" in hf:
            values["extractor_mode"] = {"group": "default", "layer": "layer_norm"}.get(
                hf["feat_extract_norm"], hf["feat_extract_norm"]
            )
        if "hidden_act" in hf:
            values["activation_fn"] = _HF_ACTIVATIONS.get(hf["hidden_act"], hf["hidden_act"])
        values["project_features"] = True
        return cls(**values)


#: Hugging Face config name -> our field, where the meaning is the same.
_HF_FIELDS = {
    "hidden_size": "encoder_embed_dim",
    "num_hidden_layers": "encoder_layers",
    "num_attention_heads": "encoder_attention_heads",
    "intermediate_size": "encoder_ffn_embed_dim",
    "hidden_dropout": "dropout",
    "attention_dropout": "attention_dropout",
    "activation_dropout": "activation_dropout",
    "feat_proj_dropout": "dropout_input",
    "feat_quantizer_dropout": "dropout_features",
    "layerdrop": "encoder_layerdrop",
    "layer_norm_eps": "layer_norm_eps",
    "conv_bias": "conv_bias",
    "num_conv_pos_embeddings": "conv_pos",
    "num_conv_pos_embedding_groups": "conv_pos_groups",
    "do_stable_layer_norm": "layer_norm_first",
    "mask_time_prob": "mask_prob",
    "mask_time_length": "mask_length",
    "mask_feature_prob": "mask_channel_prob",
    "mask_feature_length": "mask_channel_length",
    "num_codevectors_per_group": "latent_vars",
    "num_codevector_groups": "latent_groups",
    "codevector_dim": "latent_dim",
    "proj_codevector_dim": "final_dim",
    "contrastive_logits_temperature": "logit_temp",
    "num_negatives": "num_negatives",
}
_HF_ACTIVATIONS = {"gelu_python": "gelu", "gelu_pytorch_tanh": "gelu_accurate"}


def to_plain(obj: Any) -> Any:
    """Namespace / omegaconf DictConfig / ListConfig / enums -> dicts, lists and scalars.

    omegaconf is imported only when ``obj`` holds its containers; missing values (``???``)
    stay strings, interpolations are resolved where they can be.
    """
    if type(obj).__module__.startswith("omegaconf."):
        from omegaconf import OmegaConf

        try:
            obj = OmegaConf.to_container(obj, resolve=True, throw_on_missing=False)
        except Exception:  # an interpolation that cannot be resolved: keep it as text
            obj = OmegaConf.to_container(obj, resolve=False)
    if isinstance(obj, Namespace):
        obj = vars(obj)
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, enum.Enum):  # fairseq's ChoiceEnum values
        return obj.value
    return obj


def _fairseq_model_section(cfg: Any) -> dict[str, Any]:
    if not isinstance(cfg, dict):
        raise ValueError(f"fairseq config: expected a dict, DictConfig or Namespace; found {type(cfg).__name__}")
    model = cfg.get("model", cfg)
    if not isinstance(model, dict):
        raise ValueError(f"fairseq config: expected 'model' to be a mapping; found {type(model).__name__}")
    return model


def _fairseq_finetuned_fields(model: dict[str, Any]) -> dict[str, Any]:
    """A fine-tuned model's config -> its pre-training model fields with fairseq's overrides."""
    w2v_args = model.get("w2v_args")
    if not w2v_args:
        raise ValueError(
            "fairseq fine-tuned config: expected the pre-training config embedded as 'w2v_args'; "
            f"found none (w2v_path={model.get('w2v_path')!r}); load the pre-trained checkpoint "
            "it names instead"
        )
    base = dict(_fairseq_model_section(to_plain(w2v_args)))
    for theirs, ours in FAIRSEQ_FINETUNE_OVERRIDES.items():
        if model.get(theirs) is not None:
            base[ours] = model[theirs]
    return base


def _check_fairseq_architecture(model: Mapping[str, Any]) -> None:
    name = model.get("_name", model.get("arch"))
    if name is not None and name not in FAIRSEQ_MODEL_NAMES:
        raise ValueError(
            f"fairseq config: expected a wav2vec 2.0 model ({', '.join(FAIRSEQ_MODEL_NAMES)}); found {name!r}"
        )
    unsupported = {
        "layer_type": ("transformer", model.get("layer_type", "transformer")),
        "pos_conv_depth": (1, model.get("pos_conv_depth", 1) or 1),
        "quantize_input": (False, bool(model.get("quantize_input", False))),
        "crop_seq_to_multiple": (1, model.get("crop_seq_to_multiple", 1) or 1),
    }
    for key, (expected, found) in unsupported.items():
        if found != expected:
            raise ValueError(
                f"fairseq config: {key}: expected {expected!r} (the only value this backbone "
                f"implements); found {found!r}"
            )


def _check_huggingface_architecture(hf: Mapping[str, Any]) -> None:
    model_type = hf.get("model_type", "wav2vec2")
    if model_type != "wav2vec2":
        raise ValueError(f"config.json: model_type: expected 'wav2vec2'; found {model_type!r}")
    if hf.get("add_adapter"):
        raise ValueError("config.json: add_adapter: expected false (adapters are not implemented); found true")
    activation = hf.get("feat_extract_activation", "gelu")
    if activation != "gelu":
        raise ValueError(f"config.json: feat_extract_activation: expected 'gelu'; found {activation!r}")
    if hf.get("position_embeddings_type") not in (None, "absolute", "conv"):
        raise ValueError(
            "config.json: position_embeddings_type: expected convolutional positions; "
            f"found {hf.get('position_embeddings_type')!r}"
        )


def _parse_latent_temp(value: Any) -> tuple[float, float, float]:
    if isinstance(value, str):  # old fairseq argparse stored "(2,0.5,0.999995)"
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(f"latent_temp: expected (start, end, decay); found {value!r}") from None
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ValueError(f"latent_temp: expected (start, end, decay); found {value!r}")
    return tuple(float(v) for v in value)
