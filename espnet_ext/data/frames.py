"""How many frames an ESPnet ASR model's CTC layer sees for an input of ``n`` samples.

:func:`frames_from_config` reads an ESPnet ASR training YAML and composes three steps:

1. the frontend (``frontend`` / ``frontend_conf``), samples -> feature frames:

   ``default``      STFT frames: ``(n + 2 * (n_fft // 2) - n_fft) // hop_length + 1`` with
                    ``center`` (ESPnet's default; ``1 + n // hop_length`` for even ``n_fft``),
                    ``(n - n_fft) // hop_length + 1`` without; defaults n_fft 512, hop 128.
   ``wav2vec2``     the wav2vec 2.0 convolutional feature extractor, no padding: per layer
                    ``L = (L - kernel) // stride + 1`` (0 once negative). fairseq's default
                    layers (kernels 10,3,3,3,3,2,2; strides 5,2,2,2,2,2,2) unless
                    ``frontend_conf.conv_layers`` (or fairseq's ``conv_feature_layers``)
                    gives ``[[dim, kernel, stride], ...]`` or fairseq's string form
                    ``"[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2"``, or
                    ``frontend_conf.config.conv_feature_layers`` does.
   ``wav2vec_cnn``  ESPnet's CNN frontend, same arithmetic with ``frontend_conf.shapes``.
   ``s3prl``, ``huggingface``, ``hf``, ``espnet_ssl``  a self-supervised upstream: a
                    400-sample window with a 320-sample hop (the wav2vec 2.0 / HuBERT stack).

2. ``preencoder``: ``linear`` (or none) keeps the length; others are rejected.

3. the encoder's ``input_layer`` subsampling (checked against
   ``espnet/nets/pytorch_backend/transformer/subsampling.py``; the mask slicing there
   gives the lengths)::

       conv2d   ((T - 1) // 2 - 1) // 2       conv2d1  T - 4
       conv2d2  (T - 1) // 2 - 2              conv2d6  ((T - 1) // 2 - 2) // 3
       conv2d8  (((T - 1) // 2 - 1) // 2 - 1) // 2
       conv1d1  T - 4                         conv1d2  (T - 3) // 2
       conv1d3  (T - 4) // 3                  linear, embed, wav2vec, null  T

   When ``encoder_conf`` has no ``input_layer``, the encoder class's default applies
   (``conv2d`` for ESPnet's Transformer/Conformer/Branchformer family).

4. ``postencoder``: ``length_adaptor`` divides by ``2 ** length_adaptor_n_layers``.

The lengths are those of an utterance alone in its batch (or the longest one). ESPnet
derives the encoder's lengths by slicing the padding mask (``mask[:, :, :-2:2]``), so an
utterance padded in a batch gets up to one more frame per subsampling step (e.g. conv2d:
``(T + 1) // 2`` instead of ``(T - 1) // 2``): the numbers here are the minimum over all
batchings, which is what a CTC-feasibility filter must use.

Frontends and encoders that ESPnet does not ship are passed in by the caller
(``frontend_lengths``, ``encoder_lengths``): an encoder's function replaces step 3 for that name.
:mod:`espnet_ext.espnet.lengths` passes this project's (``frames_from_config`` there is what the
stage-4 filter uses); this module knows nothing of them.

Imports neither torch nor ESPnet.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from espnet_ext.core.frames import WAV2VEC2_CONV_LAYERS, conv_output_lengths, parse_conv_layers

#: ``fn(num_samples, frontend_conf) -> num_frames``
FrontendLength = Callable[[int, Mapping[str, Any]], int]
#: ``fn(num_frames, encoder_conf) -> num_frames`` (the encoder's output, what CTC sees)
EncoderLength = Callable[[int, Mapping[str, Any]], int]

#: input_layer name -> output length of ESPnet's subsampling module for T input frames.
INPUT_LAYER_LENGTHS: dict[str | None, Callable[[int], int]] = {
    "conv2d": lambda t: ((t - 1) // 2 - 1) // 2,
    "conv2d1": lambda t: t - 4,
    "conv2d2": lambda t: (t - 1) // 2 - 2,
    "conv2d6": lambda t: ((t - 1) // 2 - 2) // 3,
    "conv2d8": lambda t: (((t - 1) // 2 - 1) // 2 - 1) // 2,
    "conv1d1": lambda t: t - 4,
    "conv1d2": lambda t: (t - 3) // 2,
    "conv1d3": lambda t: (t - 4) // 3,
    "linear": lambda t: t,
    "embed": lambda t: t,
    "wav2vec": lambda t: t,
    None: lambda t: t,
}

#: ESPnet encoders whose ``input_layer`` defaults to something other than none.
DEFAULT_INPUT_LAYER: dict[str, str | None] = {
    name: "conv2d"
    for name in (
        "transformer",
        "conformer",
        "branchformer",
        "e_branchformer",
        "contextual_block_transformer",
        "contextual_block_conformer",
        "transformer_multispkr",
        "longformer",
        "multiconv_conformer",
        "linear",
    )
}
DEFAULT_INPUT_LAYER["e_branchformer_ctc"] = "conv2d8"


def _stft_frames(num: int, conf: Mapping[str, Any]) -> int:
    n_fft, hop = int(conf.get("n_fft", 512)), int(conf.get("hop_length", 128))
    if conf.get("center", True):
        num += 2 * (n_fft // 2)
    return max(0, (num - n_fft) // hop + 1) if num >= n_fft else 0


def _wav2vec2_frames(num: int, conf: Mapping[str, Any]) -> int:
    spec = conf.get("conv_layers", conf.get("conv_feature_layers"))
    if spec is None and isinstance(conf.get("config"), Mapping):  # the architecture, as a packed config has it
        spec = conf["config"].get("conv_feature_layers")
    layers = WAV2VEC2_CONV_LAYERS if spec is None else parse_conv_layers(spec, "frontend_conf.conv_layers")
    return conv_output_lengths(num, layers)


def _cnn_frames(num: int, conf: Mapping[str, Any]) -> int:
    spec = conf.get("shapes")
    layers = WAV2VEC2_CONV_LAYERS if spec is None else parse_conv_layers(spec, "frontend_conf.shapes")
    return conv_output_lengths(num, layers)


def _ssl_frames(num: int, conf: Mapping[str, Any]) -> int:
    return conv_output_lengths(num, [(1, 400, 320)])


#: frontend name -> samples-to-frames function.
FRONTEND_LENGTHS: dict[str, FrontendLength] = {
    "default": _stft_frames,
    "wav2vec2": _wav2vec2_frames,
    "wav2vec_cnn": _cnn_frames,
    "s3prl": _ssl_frames,
    "huggingface": _ssl_frames,
    "hf": _ssl_frames,
    "espnet_ssl": _ssl_frames,
}


def input_layer_length(num: int, input_layer: str | None, source: str = "encoder_conf") -> int:
    """Frames after ESPnet's ``input_layer`` subsampling (0 if too short)."""
    if input_layer not in INPUT_LAYER_LENGTHS:
        known = ", ".join(str(k) for k in INPUT_LAYER_LENGTHS if k)
        raise ValueError(f"{source}: input_layer {input_layer!r} unknown; expected one of {known}, null")
    return max(0, INPUT_LAYER_LENGTHS[input_layer](num))


def _encoder_fn(
    encoder: str | None, conf: Mapping[str, Any], source: str, encoder_lengths: Mapping[str, EncoderLength]
) -> Callable[[int], int]:
    if encoder in encoder_lengths:
        fn = encoder_lengths[encoder]
        return lambda t: max(0, fn(t, conf))
    if "input_layer" in conf:
        layer = conf["input_layer"]
    elif encoder in DEFAULT_INPUT_LAYER:
        layer = DEFAULT_INPUT_LAYER[encoder]
    else:
        raise ValueError(
            f"{source}: encoder {encoder!r} has no input_layer in encoder_conf and no registered length "
            f"function; expected one of {', '.join(sorted(DEFAULT_INPUT_LAYER))}, an explicit "
            "encoder_conf.input_layer, or a length function in encoder_lengths"
        )
    input_layer_length(0, layer, f"{source}: encoder_conf")  # validate the name now
    return lambda t: input_layer_length(t, layer)


def _check_pre_post(config: Mapping[str, Any], source: str) -> Callable[[int], int]:
    preencoder = config.get("preencoder")
    if preencoder not in (None, "linear"):
        raise ValueError(
            f"{source}: preencoder {preencoder!r} changes lengths in a way not modelled; expected none or linear"
        )
    postencoder = config.get("postencoder")
    if postencoder is None:
        return lambda t: t
    if postencoder == "length_adaptor":
        ratio = 2 ** int((config.get("postencoder_conf") or {}).get("length_adaptor_n_layers", 0))
        return lambda t: t // ratio
    raise ValueError(
        f"{source}: postencoder {postencoder!r} changes lengths in a way not modelled; expected none or length_adaptor"
    )


def frames_from_dict(
    config: Mapping[str, Any],
    source: str = "config",
    frontend_lengths: Mapping[str, FrontendLength] | None = None,
    encoder_lengths: Mapping[str, EncoderLength] | None = None,
) -> Callable[[int], int]:
    """Like :func:`frames_from_config` for an already-loaded config; ``source`` names it in errors.

    ``frontend_lengths`` / ``encoder_lengths`` add frontends and encoders ESPnet does not ship,
    by the name written in ``frontend:`` / ``encoder:`` (an encoder's function must include its
    own ``input_layer`` subsampling, if any).
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"{source}: expected a YAML mapping (an ESPnet ASR training config)")
    frontends = {**FRONTEND_LENGTHS, **(frontend_lengths or {})}
    frontend = config.get("frontend", "default")
    if frontend not in frontends:
        raise ValueError(f"{source}: frontend {frontend!r} unknown; expected one of {', '.join(sorted(frontends))}")
    frontend_fn, frontend_conf = frontends[frontend], dict(config.get("frontend_conf") or {})
    try:
        frontend_fn(16000, frontend_conf)  # surfaces a bad frontend_conf now, not per utterance
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None
    encoder_fn = _encoder_fn(
        config.get("encoder", "rnn"), dict(config.get("encoder_conf") or {}), source, encoder_lengths or {}
    )
    post_fn = _check_pre_post(config, source)

    def frames(num_samples: int) -> int:
        """Frames the CTC layer sees for ``num_samples`` input samples."""
        return post_fn(encoder_fn(frontend_fn(num_samples, frontend_conf)))

    return frames


def frames_from_config(
    config_path: os.PathLike,
    frontend_lengths: Mapping[str, FrontendLength] | None = None,
    encoder_lengths: Mapping[str, EncoderLength] | None = None,
) -> Callable[[int], int]:
    """Return ``f(num_samples) -> frames seen by CTC`` for an ESPnet ASR training YAML
    (``frontend_lengths``, ``encoder_lengths``: as :func:`frames_from_dict`).

    Raises:
        ValueError: naming the file when the frontend or encoder is not modelled
            (see the module docstring for what is).
    """
    import yaml

    with open(config_path, encoding="utf-8") as f:
        try:
            config = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise ValueError(f"{config_path}: not valid YAML ({e}); expected an ESPnet ASR config") from None
    return frames_from_dict(config, str(config_path), frontend_lengths, encoder_lengths)
