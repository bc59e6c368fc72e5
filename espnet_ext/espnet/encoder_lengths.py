"""Frame counts of this project's ESPnet encoders, for the stage-4 CTC-feasibility filter.

Importing this module registers, in :mod:`espnet_ext.data.frames`:

``w2v2_context``  ``ceil(r * T)`` with ``r = encoder_conf.downsample_rate`` (default
                  :data:`DEFAULT_DOWNSAMPLE_RATE`; with ``encoder_conf.path``, the checkpoint's
                  rate), read as an exact fraction (0.7 = 7/10):
                  :func:`espnet_ext.wav2vec2.downsample.downsampled_length`.
``w2v2_light``    ``T`` (the encoder keeps the length).

The downsampled length is the same for an utterance alone or padded in a batch. Importing this
module imports neither torch nor ESPnet; torch is imported the first time a ``w2v2_context``
length is computed (the length arithmetic lives beside the model, in a torch module).
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

from espnet_ext.data.frames import register_encoder_length

#: ``W2V2ContextEncoder``'s default ``downsample_rate`` (the seed's 0.7).
DEFAULT_DOWNSAMPLE_RATE = 0.7


def context_encoder_length(num_frames: int, encoder_conf: Mapping[str, Any]) -> int:
    """Frames out of ``w2v2_context`` for ``num_frames`` frontend frames.

    Raises:
        ValueError: when ``encoder_conf.downsample_rate`` is not a number in (0, 1].
    """
    from espnet_ext.wav2vec2.downsample import downsampled_length

    conf = encoder_conf or {}
    rate = _checkpoint_rate(conf["path"]) if conf.get("path") else conf.get("downsample_rate", DEFAULT_DOWNSAMPLE_RATE)
    try:
        return downsampled_length(max(0, int(num_frames)), rate)
    except ValueError as e:
        raise ValueError(f"encoder_conf: {e}") from None


@functools.lru_cache(maxsize=None)
def _checkpoint_rate(path: str) -> Any:
    from espnet_ext.espnet.encoders import pretrained_context

    return pretrained_context(path)[0].get("downsample_rate", DEFAULT_DOWNSAMPLE_RATE)


def light_encoder_length(num_frames: int, encoder_conf: Mapping[str, Any]) -> int:
    """Frames out of ``w2v2_light``: unchanged."""
    return max(0, int(num_frames))


register_encoder_length("w2v2_context", context_encoder_length)
register_encoder_length("w2v2_light", light_encoder_length)
