"""ESPnet frontend ``wav2vec2``: the project's wav2vec 2.0 backbone as an ASR/SSL/CLS frontend.

In a training config::

    frontend: wav2vec2
    frontend_conf:
        path: /models/wav2vec_small.pt   # fairseq .pt, Hugging Face dir, or our own checkpoint
        # preset: base                   # instead of path: a preset, randomly initialized
        # config: {encoder_layers: 12, ...}   # instead: Wav2Vec2Config fields, randomly initialized
        freeze_finetune_updates: 10000   # optimizer updates with the backbone frozen
        mask_prob: 0.65                  # fine-tuning time masks (training only)
        mask_channel_prob: 0.25
        mask_channel_length: 64
        feature_grad_mult: 0.0           # 0: the conv feature extractor stays frozen
        layerdrop: 0.1
        dropout: 0.0                     # fairseq fine-tuning's dropouts (None: the checkpoint's)
        attention_dropout: 0.0
        activation_dropout: 0.1
        normalize_waveform: null         # fairseq task.normalize; null: what the checkpoint records
    normalize: null                      # the backbone normalizes its own input
    input_size: null                     # taken from the checkpoint (output_size())

Updates are counted by a hook on the optimizer's ``step()`` (:mod:`espnet_ext.espnet.updates`):
validation batches and the micro-batches of gradient accumulation do not count (ESPnet's own
fairseq encoder counts forward calls, which freezes for ``accum_grad`` times fewer updates than asked). The count
is a buffer of the model, saved in checkpoints, so a resumed training continues it.

A frontend built from a checkpoint gives :meth:`Wav2Vec2Frontend.portable_conf`: the options that
build the same network without the file (``config``: the architecture, with the regularisation
it trains with, and ``normalize_waveform`` as resolved). A packed model carries those instead of
the path (:mod:`espnet_ext.espnet.packing`); its weights come from the packed model file, which
ESPnet loads after building the model.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import humanfriendly
import torch
from espnet2.asr.frontend.abs_frontend import AbsFrontend
from torch import Tensor

from espnet_ext.espnet.updates import count_updates
from espnet_ext.wav2vec2.compile import compile_layers
from espnet_ext.wav2vec2.config import Wav2Vec2Config
from espnet_ext.wav2vec2.importers import load_checkpoint
from espnet_ext.wav2vec2.masking import span_mask
from espnet_ext.wav2vec2.model import wav2vec2_model
from espnet_ext.wav2vec2.presets import preset_config
from espnet_ext.wav2vec2.waveform import normalize_waveforms


class NormalizeMismatchError(ValueError):
    """The fine-tuning config's ``normalize_waveform`` disagrees with the checkpoint's pre-training."""


def checked_normalize(path: str, recorded: bool | None, asked: bool | None) -> bool:
    """Whether to normalise waveforms for the backbone at ``path``: ``asked`` (the frontend's
    ``normalize_waveform``), else what the checkpoint ``recorded``.

    Raises:
        NormalizeMismatchError: ``asked`` and ``recorded`` are both given and differ (the
            backbone would see waveforms scaled unlike those it was pre-trained on).
    """
    if recorded is None:
        value = bool(asked)
        logging.warning(
            "wav2vec2 frontend: %s does not record whether it was pre-trained on normalized "
            "waveforms (fairseq task.normalize); using normalize_waveform: %s (set "
            "frontend_conf.normalize_waveform to what pre-training used)",
            path,
            value,
        )
        return value
    if asked is not None and bool(asked) != recorded:
        raise NormalizeMismatchError(
            f"wav2vec2 frontend: {path} was pre-trained with waveform normalization "
            f"{'on' if recorded else 'off'} (normalize: {str(recorded).lower()}), but frontend_conf."
            f"normalize_waveform is {str(bool(asked)).lower()}; set normalize_waveform: "
            f"{str(recorded).lower()} (or leave it out to follow the checkpoint)"
        )
    return recorded


def check_one_source(who: str, **sources: Any) -> None:
    """ValueError unless exactly one of ``sources`` (``path``, ``preset``, ``config``) is given;
    the message names those found."""
    given = [name for name, value in sources.items() if value is not None]
    if len(given) != 1:
        found = (
            ", ".join(f"{name}={sources[name]!r}" if name != "config" else "config (a mapping)" for name in given)
            or "none of them"
        )
        names = list(sources)
        raise ValueError(f"{who} frontend: give exactly one of {', '.join(names[:-1])} or {names[-1]}; found {found}")


def config_mapping(config: Any, who: str) -> dict[str, Any]:
    """``frontend_conf.config`` as a plain dict; ValueError naming ``who`` unless it is a mapping."""
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    if not isinstance(config, Mapping):
        raise ValueError(
            f"{who} frontend: config: expected a mapping of the backbone's config fields; "
            f"found {type(config).__name__} {config!r}"
        )
    return dict(config)


def check_16k(fs: int | str, who: str) -> None:
    """ValueError unless ``fs`` is 16 kHz; strings are read as ESPnet's frontends read them ("16k")."""
    if (humanfriendly.parse_size(fs) if isinstance(fs, str) else fs) != 16000:
        raise ValueError(f"{who} frontend: expected 16 kHz input; found fs={fs}")


class PretrainedFrontend(AbsFrontend):
    """What the ``wav2vec2`` and ``wav2vec1`` frontends share: ``self.model`` from ``self.path`` (a
    checkpoint, reloaded by :meth:`reload_pretrained_parameters`), ``self.preset`` or a config
    (random weights: a packed model's come from its model file), and a freeze for the first
    ``self.freeze_finetune_updates`` optimizer updates (``self.num_updates``,
    :func:`~espnet_ext.espnet.updates.count_updates`). ``log_name`` names it in logs."""

    log_name = "pretrained"

    def _load_model(self) -> torch.nn.Module:
        """The network stored at ``self.path``."""
        raise NotImplementedError

    def reload_pretrained_parameters(self) -> None:
        """Reload the checkpoint's weights (ESPnet's ``init:`` re-initializes every module)."""
        if self.path is None:
            built = f"preset {self.preset}" if self.preset is not None else "a config"
            logging.info("%s frontend: built from %s, no pre-trained parameters to reload", self.log_name, built)
            return
        self.model.load_state_dict(self._load_model().state_dict())
        logging.info("%s frontend: reloaded pre-trained parameters from %s", self.log_name, self.path)

    @property
    def frozen(self) -> bool:
        """Within the first ``freeze_finetune_updates`` updates. Reading the count back makes the
        host wait for the device, so it is read only during that phase: once past it (the count
        only grows), the answer is kept until a ``state_dict`` is loaded."""
        if self.freeze_finetune_updates <= 0 or getattr(self, "_thawed", False):
            return False
        if int(self.num_updates) < self.freeze_finetune_updates:
            return True
        self._thawed = True
        return False

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._thawed = False  # a loaded count may be within the freeze again
        super()._load_from_state_dict(*args, **kwargs)


class Wav2Vec2Frontend(PretrainedFrontend):
    """wav2vec 2.0 backbone -> ``(B, T, C)`` features for ESPnet.

    Args:
        path: checkpoint to load (see :func:`espnet_ext.wav2vec2.importers.load_checkpoint`).
        preset: instead of ``path``, a randomly initialized preset (``base``, ``tiny``, ...).
        config: instead of ``path`` or ``preset``, the backbone's architecture as a mapping of
            :class:`~espnet_ext.wav2vec2.config.Wav2Vec2Config` fields (missing ones take their
            defaults), randomly initialized: what a packed model's config holds
            (:meth:`portable_conf`). Exactly one of ``path``, ``preset``, ``config``.
        allow_unsafe: load ``path`` with pickled code allowed (trusted files only).
        layer: output of this Transformer layer (0: the Transformer input); layers above it
            are not computed. None: the last layer.
        weighted_sum: a learned softmax-weighted sum of hidden states 0..``layer`` instead.
        freeze_finetune_updates: optimizer updates during which the backbone is not trained
            (fairseq ``freeze_finetune_updates``); the layers above it are.
        mask_prob, mask_length: time masks in training (fairseq semantics, at least 2 spans,
            see :mod:`espnet_ext.wav2vec2.masking`); masked frames get the learned mask vector.
        mask_channel_prob, mask_channel_length: channel masks in training (zeroed channels).
        require_same_masks: trim every utterance's time mask to the batch's least masked count
            (fairseq ``require_same_masks``, True in its fine-tuning too); channel masks always
            are, as fairseq's.
        feature_grad_mult: gradient scale of the conv feature extractor (None: the
            checkpoint's; 0.0 freezes the extractor, as fairseq's fine-tuning does).
        layerdrop: probability of skipping a Transformer layer in training (None: checkpoint's).
        dropout, attention_dropout, activation_dropout, dropout_input: the backbone's dropout
            probabilities in training (see :meth:`~espnet_ext.wav2vec2.model.Wav2Vec2Model.set_dropout`);
            None keeps the checkpoint's (its pre-training values). fairseq's fine-tuning sets
            them (``Wav2Vec2AsrConfig``: 0.0 each unless given; its BASE recipes give
            ``activation_dropout`` 0.1).
        normalize_waveform: zero-mean unit-variance each utterance first (fairseq
            ``task.normalize``; true for LARGE LV-60). None: what the checkpoint records
            (:attr:`~espnet_ext.wav2vec2.importers.CheckpointInfo.normalize`; fairseq's
            ``task.normalize``, this project's pre-training's ``normalize_waveform``); a value
            that disagrees with the record raises :class:`NormalizeMismatchError`; a checkpoint
            that records nothing (older files, Hugging Face) gets a warning and False unless set.
            With ``preset`` or ``config``: False unless set.
        fs: sampling rate of the input; only 16 kHz is accepted.
        torch_compile: compile the Transformer layers (:func:`~espnet_ext.wav2vec2.compile.compile_layers`;
            off by default: the first step pays the compilation, and on CPU it is not faster).
    """

    log_name = "wav2vec2"

    def __init__(
        self,
        path: str | None = None,
        preset: str | None = None,
        config: Mapping[str, Any] | None = None,
        allow_unsafe: bool = False,
        layer: int | None = None,
        weighted_sum: bool = False,
        freeze_finetune_updates: int = 0,
        mask_prob: float = 0.0,
        mask_length: int = 10,
        mask_channel_prob: float = 0.0,
        mask_channel_length: int = 64,
        require_same_masks: bool = True,
        feature_grad_mult: float | None = None,
        layerdrop: float | None = None,
        dropout: float | None = None,
        attention_dropout: float | None = None,
        activation_dropout: float | None = None,
        dropout_input: float | None = None,
        normalize_waveform: bool | None = None,
        fs: int | str = 16000,
        torch_compile: bool = False,
    ):
        super().__init__()
        check_one_source("wav2vec2", path=path, preset=preset, config=config)
        check_16k(fs, "wav2vec2")
        self.path, self.preset, self.allow_unsafe = path, preset, allow_unsafe
        self.model, architecture, normalize_waveform = self._backbone(config, normalize_waveform)
        if layer is not None and not 0 <= layer <= self.model.num_layers:
            raise ValueError(f"wav2vec2 frontend: layer must be in 0..{self.model.num_layers}; found {layer}")
        self.layer = layer
        n_states = (self.model.num_layers if layer is None else layer) + 1
        self.layer_weights = torch.nn.Parameter(torch.zeros(n_states)) if weighted_sum else None
        if feature_grad_mult is not None:
            self.model.feature_grad_mult = feature_grad_mult
        if layerdrop is not None:
            self.model.encoder.layerdrop = layerdrop
        self.model.set_dropout(
            dropout=dropout,
            attention_dropout=attention_dropout,
            activation_dropout=activation_dropout,
            dropout_input=dropout_input,
        )
        given = dict(
            feature_grad_mult=feature_grad_mult,
            encoder_layerdrop=layerdrop,
            dropout=dropout,
            attention_dropout=attention_dropout,
            activation_dropout=activation_dropout,
            dropout_input=dropout_input,
        )
        #: the architecture with the regularisation this frontend applies (what portable_conf records)
        self.architecture = dataclasses.replace(architecture, **{k: v for k, v in given.items() if v is not None})
        self.freeze_finetune_updates = freeze_finetune_updates
        self.mask_prob, self.mask_length = mask_prob, mask_length
        self.mask_channel_prob, self.mask_channel_length = mask_channel_prob, mask_channel_length
        self.require_same_masks = require_same_masks
        self.normalize_waveform = bool(normalize_waveform)
        count_updates(self)  # self.num_updates: optimizer updates, saved with the model
        if torch_compile:
            compile_layers(self.model)

    def _backbone(self, config: Mapping[str, Any] | None, normalize_waveform: bool | None):
        """(model, its Wav2Vec2Config, normalize_waveform resolved) from the path, preset or config."""
        if self.path is not None:
            loaded = load_checkpoint(self.path, allow_unsafe=self.allow_unsafe)
            return loaded.model, loaded.config, checked_normalize(self.path, loaded.info.normalize, normalize_waveform)
        if self.preset is not None:
            architecture = preset_config(self.preset)
        else:
            try:
                architecture = Wav2Vec2Config.from_dict(config_mapping(config, "wav2vec2"))
            except (TypeError, ValueError) as e:
                raise ValueError(f"wav2vec2 frontend: config: {e}") from None
        return wav2vec2_model(architecture), architecture, normalize_waveform

    def portable_conf(self) -> dict[str, Any]:
        """The options that build this frontend's network without its checkpoint, to replace
        ``path`` (and ``allow_unsafe``) in its ``frontend_conf``: ``config`` (the architecture,
        with the dropouts, ``encoder_layerdrop`` and ``feature_grad_mult`` it trains with), and
        those values and ``normalize_waveform`` as explicit options. Plain values (YAML)."""
        arch = self.architecture
        return {
            "config": arch.to_dict(),
            "normalize_waveform": self.normalize_waveform,
            "feature_grad_mult": arch.feature_grad_mult,
            "layerdrop": arch.encoder_layerdrop,
            "dropout": arch.dropout,
            "attention_dropout": arch.attention_dropout,
            "activation_dropout": arch.activation_dropout,
            "dropout_input": arch.dropout_input,
        }

    def output_size(self) -> int:
        return self.model.output_size()

    def _load_model(self) -> torch.nn.Module:
        return load_checkpoint(self.path, allow_unsafe=self.allow_unsafe).model

    def _masks(self, lengths: Tensor, frames: int) -> tuple[Tensor | None, Tensor | None]:
        if not self.training:
            return None, None
        time_mask = channel_mask = None
        if self.mask_prob > 0:
            time_mask = span_mask(
                lengths,
                frames,
                self.mask_prob,
                self.mask_length,
                min_masks=2,
                require_same_masks=self.require_same_masks,
            )
        if self.mask_channel_prob > 0:
            channels = self.output_size()
            full = torch.full_like(lengths, channels)
            channel_mask = span_mask(full, channels, self.mask_channel_prob, self.mask_channel_length)
        return time_mask, channel_mask

    def forward(self, input: Tensor, input_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, L)`` 16 kHz samples, ``(B,)`` lengths -> ``(B, T, C)`` features, ``(B,)`` frames.

        Lengths on the CPU that are all ``L`` take the backbone's unpadded path (no mask); lengths
        on a GPU are not read (that would make the host wait), so padded batches run masked there.
        """
        lengths = input_lengths.long()
        speech = normalize_waveforms(input, lengths) if self.normalize_waveform else input
        frames = int(self.model.output_lengths(speech.size(1)))
        time_mask, channel_mask = self._masks(self.model.output_lengths(lengths), frames)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.model(speech, lengths, time_mask=time_mask, channel_mask=channel_mask, num_layers=self.layer)
        if self.layer_weights is None:
            feats = out.hidden_states[-1]
        else:
            weights = torch.softmax(self.layer_weights, dim=0).to(out.hidden_states[0].dtype)
            feats = sum(w * h for w, h in zip(weights, out.hidden_states))
        return feats, out.lengths
