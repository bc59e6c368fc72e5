"""The wav2vec 2.0 backbone (torch only): config and presets, model, checkpoint importers.

Quick use::

    from espnet_ext.wav2vec2 import load_checkpoint, preset_config, wav2vec2_model
    model = wav2vec2_model(preset_config("base"))       # random, fairseq initialisation
    model, config, info = load_checkpoint("wav2vec_small.pt")   # fairseq / HF dir / save_backbone file
    out = model(waveforms, lengths)                     # Wav2Vec2Output

Importing the package changes nothing global: the modules run as written. The CPU kernels
(:mod:`espnet_ext.wav2vec2.cpu_kernels`: the same functions, faster on CPU; dropout with other
draws of the same distribution) are opt-in: ``cpu_kernels.enable()``, or ``--cpu_kernels`` of the
ESPnet tasks (:mod:`espnet_ext.espnet.kernel_option`), on by default when training on CPU.
"""

from espnet_ext.wav2vec2.config import Wav2Vec2Config
from espnet_ext.wav2vec2.importers import CheckpointInfo, LoadedCheckpoint, load_checkpoint, save_backbone
from espnet_ext.wav2vec2.model import FeatureOutput, Wav2Vec2Model, Wav2Vec2Output, wav2vec2_model
from espnet_ext.wav2vec2.modules import conv_output_lengths, lengths_to_padding_mask, receptive_field
from espnet_ext.wav2vec2.presets import PRESETS, ParameterCount, parameter_count, preset_config

__all__ = [
    "CheckpointInfo",
    "FeatureOutput",
    "LoadedCheckpoint",
    "PRESETS",
    "ParameterCount",
    "Wav2Vec2Config",
    "Wav2Vec2Model",
    "Wav2Vec2Output",
    "conv_output_lengths",
    "lengths_to_padding_mask",
    "load_checkpoint",
    "parameter_count",
    "preset_config",
    "receptive_field",
    "save_backbone",
    "wav2vec2_model",
]
