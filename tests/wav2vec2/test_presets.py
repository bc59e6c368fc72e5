"""Preset parameter counts, checked against fairseq's model (s3prl's faithful copy of it)."""

import dataclasses
import subprocess
import sys
import warnings

import pytest
import torch

from espnet_ext.wav2vec2.presets import PRESETS, parameter_count, preset_config

#: preset -> (target total in millions, relative tolerance): base within 1% of 95.0 M (fairseq BASE),
#: medium and small near the ~61 M / ~36 M models of T. Johnson's study (espnet_ext.wav2vec2.presets).
TARGETS = {"base": (95.0, 0.01), "medium": (61.0, 0.02), "small": (36.0, 0.02), "large": (317.0, 0.01)}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_preset_totals_are_near_their_targets(name):
    target, tolerance = TARGETS[name]
    total = parameter_count(preset_config(name)).total / 1e6
    print(f"{name}: {total:.2f} M (target {target} M)")
    assert abs(total - target) <= tolerance * target


def test_base_counts_exactly():
    counts = parameter_count(preset_config("base"))
    assert counts.total == 95_044_608
    assert counts.backbone == 94_371_712  # what transformers' Wav2Vec2Model(base) holds
    assert counts.pretraining_heads == 410_240 + 65_792 + 196_864  # quantizer, project_q, final_proj


def _fairseq_model_parameters(name: str) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from s3prl.upstream.wav2vec2 import wav2vec2_model as fairseq_copy
    config = preset_config(name)
    fields = {f.name for f in dataclasses.fields(fairseq_copy.Wav2Vec2Config)}
    values = {k: v for k, v in config.to_dict().items() if k in fields}
    values["conv_feature_layers"] = repr(config.conv_feature_layers)
    values["latent_temp"] = tuple(config.latent_temp)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fairseq_copy.Wav2Vec2Model(fairseq_copy.Wav2Vec2Config(**values))
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(PRESETS))
def test_counts_equal_fairseqs_pretraining_model(name):
    """Everything fairseq's Wav2Vec2Model holds: backbone + quantizer + project_q + final_proj."""
    assert parameter_count(preset_config(name)).total == _fairseq_model_parameters(name)


def test_presets_command_prints_every_preset(project_root):
    result = subprocess.run(
        [sys.executable, "-m", "espnet_ext.bin.presets", "wav2vec2"],
        cwd=project_root,
        capture_output=True,
        text=True,
        check=True,
    )
    for name in PRESETS:
        assert f"{name}: total" in result.stdout
    assert "base: total 95.04 M (95,044,608)" in result.stdout
    assert "transformer_layers" in result.stdout and "quantizer" in result.stdout
