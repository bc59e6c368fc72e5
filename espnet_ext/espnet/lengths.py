"""Frame counts of this project's ESPnet frontends and encoders, for the stage-4 CTC-feasibility filter.

:mod:`espnet_ext.data.frames` does the arithmetic for ESPnet's own frontends and encoders (and the
``wav2vec2`` frontend, whose stack is plain conv arithmetic); this module adds the plugins whose
count needs more than a config (a preset or a checkpoint) and hands both tables to it:

``wav2vec1`` (frontend)  the wav2vec 1.0 encoder's conv stack, from ``frontend_conf.preset``
                         (default ``base``), ``frontend_conf.config`` or the checkpoint at
                         ``frontend_conf.path``.
``w2v2_context``         ``ceil(r * T)`` with ``r = encoder_conf.downsample_rate`` (default
                         :data:`espnet_ext.espnet.encoders.DEFAULT_DOWNSAMPLE_RATE`; with
                         ``encoder_conf.path`` or ``context``, the stored rate), read as an exact fraction
                         (0.7 = 7/10): :func:`espnet_ext.wav2vec2.downsample.downsampled_length`.
``w2v2_light``           ``T`` (the encoder keeps the length).

The downsampled length is the same for an utterance alone or padded in a batch. Importing this
module imports neither torch nor ESPnet; they are imported the first time a count needs a
checkpoint or the downsampling arithmetic (which lives beside the model, in torch modules).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from espnet_ext.core.frames import ConvLayer, conv_output_lengths
from espnet_ext.data import frames


def context_encoder_length(num_frames: int, encoder_conf: Mapping[str, Any]) -> int:
    """Frames out of ``w2v2_context`` for ``num_frames`` frontend frames.

    Raises:
        ValueError: when ``encoder_conf.downsample_rate`` is not a number in (0, 1].
    """
    from espnet_ext.espnet.encoders import DEFAULT_DOWNSAMPLE_RATE
    from espnet_ext.wav2vec2.downsample import downsampled_length

    conf = encoder_conf or {}
    if conf.get("path"):
        rate = _checkpoint_rate(conf["path"])
    elif isinstance(conf.get("context"), Mapping):  # the stored options (a packed model's config)
        rate = conf["context"].get("downsample_rate", DEFAULT_DOWNSAMPLE_RATE)
    else:
        rate = conf.get("downsample_rate", DEFAULT_DOWNSAMPLE_RATE)
    try:
        return downsampled_length(max(0, int(num_frames)), rate)
    except ValueError as e:
        raise ValueError(f"encoder_conf: {e}") from None


@functools.cache
def _checkpoint_rate(path: str) -> Any:
    from espnet_ext.espnet.encoders import DEFAULT_DOWNSAMPLE_RATE, pretrained_context

    return pretrained_context(path)[0].get("downsample_rate", DEFAULT_DOWNSAMPLE_RATE)


def light_encoder_length(num_frames: int, encoder_conf: Mapping[str, Any]) -> int:
    """Frames out of ``w2v2_light``: unchanged."""
    return max(0, int(num_frames))


@functools.lru_cache(maxsize=8)
def _wav2vec1_checkpoint_layers(path: str) -> tuple[ConvLayer, ...]:
    from espnet_ext.wav2vec1.checkpoint import load_config

    return tuple(load_config(path).conv_feature_layers)


def wav2vec1_frontend_frames(num_samples: int, frontend_conf: Mapping[str, Any]) -> int:
    """Frames the ``wav2vec1`` frontend gives for ``num_samples`` samples (its ``frontend_conf``:
    ``preset``, ``config`` or ``path``; a checkpoint's config is read once, with torch)."""
    from espnet_ext.wav2vec1.config import Wav2Vec1Config, preset_config

    conf = frontend_conf or {}
    if conf.get("path") is not None:
        layers: Sequence[ConvLayer] = _wav2vec1_checkpoint_layers(str(conf["path"]))
    elif isinstance(conf.get("config"), Mapping):
        layers = Wav2Vec1Config.from_dict(conf["config"]).conv_feature_layers
    else:
        layers = preset_config(str(conf.get("preset", "base"))).conv_feature_layers
    return conv_output_lengths(int(num_samples), layers)


#: frontend name (as registered in :mod:`espnet_ext.espnet.plugins`) -> ``fn(num_samples, frontend_conf)``
FRONTEND_LENGTHS: dict[str, frames.FrontendLength] = {"wav2vec1": wav2vec1_frontend_frames}
#: encoder name -> ``fn(num_frames, encoder_conf)``, replacing the ``input_layer`` arithmetic
ENCODER_LENGTHS: dict[str, frames.EncoderLength] = {
    "w2v2_context": context_encoder_length,
    "w2v2_light": light_encoder_length,
}


def frames_from_dict(config: Mapping[str, Any], source: str = "config") -> Callable[[int], int]:
    """:func:`espnet_ext.data.frames.frames_from_dict` knowing this project's frontends and encoders."""
    return frames.frames_from_dict(config, source, frontend_lengths=FRONTEND_LENGTHS, encoder_lengths=ENCODER_LENGTHS)


def frames_from_config(config_path: os.PathLike) -> Callable[[int], int]:
    """:func:`espnet_ext.data.frames.frames_from_config` knowing this project's frontends and encoders."""
    return frames.frames_from_config(config_path, frontend_lengths=FRONTEND_LENGTHS, encoder_lengths=ENCODER_LENGTHS)
