"""The wav2vec 1.0 network: frame counts (10 ms), causality, padding, presets, and numerical
equality with fairseq's ``Wav2VecModel`` (s3prl's copy of fairseq's wav2vec.py) for the
features, the context and the loss, through a fairseq-format checkpoint file."""

from __future__ import annotations

import argparse
import warnings

import pytest
import torch
import torch.nn.functional as F

from espnet_ext.espnet.lengths import wav2vec1_frontend_frames
from espnet_ext.wav2vec1.checkpoint import load_wav2vec1
from espnet_ext.wav2vec1.config import Wav2Vec1Config, preset_config
from espnet_ext.wav2vec1.loss import future_logits, wav2vec1_loss
from espnet_ext.wav2vec1.model import wav2vec1_model
from espnet_ext.wav2vec1.pretraining import parameter_count, wav2vec1_pretraining
from espnet_ext.wav2vec2.negatives import Negatives

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from s3prl.upstream.wav2vec.wav2vec_model import Wav2VecConfig as FairseqConfig
    from s3prl.upstream.wav2vec.wav2vec_model import Wav2VecModel as FairseqModel


def tiny(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return wav2vec1_model(preset_config("tiny").replace(overrides)).eval()


# ---------------------------------------------------------------------------- frame counts
@pytest.mark.parametrize("preset", ["tiny", "base", "large"])
def test_geometry_is_10ms_frames_with_fairseqs_offset(preset):
    config = preset_config(preset)
    assert (config.stride, config.receptive_field, config.offset_frames) == (160, 465, 3)
    assert config.conv_feature_layers[:5] == [
        (config.encoder_dim, k, s) for k, s in ((10, 5), (8, 4), (4, 2), (4, 2), (4, 2))
    ]


def test_output_lengths_match_the_convolutions():
    model = tiny()
    for n in (465, 466, 624, 625, 3000, 16000, 16001):
        with torch.no_grad():
            out = model(torch.randn(1, n) * 0.1)
        expected = int(model.output_lengths(n))
        assert out.features.shape[1] == out.context.shape[1] == expected
        assert int(model.output_lengths(torch.tensor([n]))) == expected
        assert wav2vec1_frontend_frames(n, {"preset": "tiny"}) == expected  # the stage-4 filter's count
    assert int(model.output_lengths(16000)) == 98  # (16000 - 465) // 160 + 1: 10 ms frames
    assert int(model.output_lengths(16000 + 160)) == 99
    with pytest.raises(ValueError, match="465 samples"):
        model(torch.randn(1, 464))


# ---------------------------------------------------------------------------- causality, padding
def test_layer_norm_model_is_causal():
    """Changing samples from ``s`` on changes no encoder frame whose receptive field ends before
    ``s``, and no context frame up to the same index (the context network only looks left)."""
    model = tiny(norm="layer")
    generator = torch.Generator().manual_seed(0)
    speech = torch.randn(1, 8000, generator=generator) * 0.1
    changed = speech.clone()
    start = 4000
    changed[:, start:] = torch.randn(1, 8000 - start, generator=generator)
    with torch.no_grad():
        a, b = model(speech), model(changed)
    past = (start - 465) // 160 + 1  # frames t with t * 160 + 465 <= start
    assert torch.equal(a.features[:, :past], b.features[:, :past])
    assert torch.equal(a.context[:, :past], b.context[:, :past])
    assert not torch.allclose(a.features[:, past:], b.features[:, past:])
    assert not torch.allclose(a.context[:, past:], b.context[:, past:])


def test_fairseq_group_norm_sees_the_whole_utterance():
    """fairseq's GroupNorm(1, C) takes its statistics over all frames, so the (otherwise causal)
    features of the past move when the future changes: what ``norm: layer`` avoids."""
    model = tiny()
    speech = torch.randn(1, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    changed = speech.clone()
    changed[:, 4000:] *= 5
    with torch.no_grad():
        a, b = model(speech), model(changed)
    assert not torch.allclose(a.features[:, :10], b.features[:, :10], atol=1e-4)


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_padded_batch_equals_single_utterances(norm):
    model = tiny(norm=norm, skip_connections_agg=True)
    lengths = torch.tensor([9000, 5200, 2000])
    speech = torch.randn(3, 9000, generator=torch.Generator().manual_seed(1)) * 0.1
    speech = speech * (torch.arange(9000) < lengths[:, None])
    with torch.no_grad():
        batch = model(speech, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone = model(speech[i : i + 1, :n])
            t = alone.features.shape[1]
            assert int(batch.lengths[i]) == t
            assert torch.allclose(batch.features[i, :t], alone.features[0], atol=1e-5)
            assert torch.allclose(batch.context[i, :t], alone.context[0], atol=1e-5)


# ---------------------------------------------------------------------------- presets, config
def test_parameter_counts():
    """fairseq's README lists wav2vec large at 32.5 M parameters (encoder, context network and
    the prediction head)."""
    backbone, head = parameter_count(preset_config("large"))
    assert round((backbone + head) / 1e6, 1) == 32.5
    assert head == 12 * 512 * 512 + 512  # K step-specific 512 x 512 transforms, one shared bias
    backbone, head = parameter_count(preset_config("base"))
    assert round((backbone + head) / 1e6, 1) == 15.5


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("norm", "batch", "norm: expected one of group, layer"),
        ("offset", 0, "offset: expected 'auto' or an integer >= 1"),
        ("conv_aggregator_layers", [[64, 3, 2]], "stride 1 in every layer"),
        ("num_negatives", 0, "num_negatives: expected a positive integer"),
        ("bogus", 1, "unknown fields"),
    ],
)
def test_bad_config_values_are_named(field, value, match):
    with pytest.raises(ValueError, match=match):
        preset_config("tiny").replace({field: value})


def test_config_round_trips_and_parses_fairseq_strings():
    config = Wav2Vec1Config(conv_aggregator_layers="[(32, 2, 1), (32, 3, 1)] + [(16, 1, 1)]", offset=2)
    assert config.conv_aggregator_layers == [(32, 2, 1), (32, 3, 1), (16, 1, 1)]
    assert Wav2Vec1Config.from_dict(config.to_dict()) == config
    assert config.offset_frames == 2 and config.context_dim == 16


# ---------------------------------------------------------------------------- equality with fairseq
CASES = {
    "base-like": dict(skip_connections_agg=False),
    "large-like-balanced": dict(skip_connections_agg=True, balanced_classes=True),
    "infonce-gelu-zero-pad": dict(
        skip_connections_agg=True,
        infonce=True,
        activation="gelu",
        agg_zero_pad=True,
        non_affine_group_norm=True,
        offset="2",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_matches_fairseq(case, tmp_path):
    """A fairseq ``Wav2VecModel`` saved as fairseq saves it (``args`` Namespace) loads here and
    gives the same ``z``, ``c`` and, for the same distractors, the same criterion loss and
    sample size (fairseq's ``Wav2vecCriterion``: BCE or cross-entropy, summed)."""
    options = dict(
        conv_feature_layers="[(32, 10, 5), (32, 8, 4), (32, 4, 2), (32, 4, 2), (32, 4, 2), (32, 1, 1)]",
        conv_aggregator_layers="[(48, 2, 1), (48, 3, 1), (40, 4, 1)]",
        prediction_steps=5,
        num_negatives=4,
        infonce=False,
    )
    options.update(CASES[case])
    torch.manual_seed(0)
    reference = FairseqModel(FairseqConfig(**options)).eval()
    with torch.no_grad():  # move every parameter off its initial value (norm gains too)
        for param in reference.parameters():
            param.add_(0.1 * torch.randn_like(param))
    path = tmp_path / "wav2vec.pt"
    torch.save({"model": reference.state_dict(), "args": argparse.Namespace(arch="wav2vec", **options)}, path)
    loaded = load_wav2vec1(path)
    assert loaded.source_format == "fairseq"
    model = wav2vec1_pretraining(loaded.config).eval()
    model.backbone.load_state_dict(loaded.model.state_dict())
    model.predictor.load_state_dict(loaded.predictor_state)

    speech = torch.randn(2, 6000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        z_ref = reference.feature_extractor(speech)
        c_ref = reference.feature_aggregator(z_ref)
        ours = model.backbone(speech)
    assert (ours.features - z_ref.transpose(1, 2)).abs().max() < 1e-5
    assert (ours.context - c_ref.transpose(1, 2)).abs().max() < 1e-5

    batch, _, steps = z_ref.shape
    draws = torch.randint(0, steps - 1, (batch, steps, 4), generator=torch.Generator().manual_seed(2))
    indices = draws + (draws >= torch.arange(steps).view(1, steps, 1)).long()  # fairseq: skip the frame itself
    # fairseq's sample_negatives returns (N, B, C, T): the same draws, in its layout
    reference.wav2vec_predictions.sample_negatives = lambda y: torch.stack(
        [y[b][:, indices[b]] for b in range(batch)], dim=1
    ).permute(3, 1, 0, 2)
    with torch.no_grad():
        result = reference(speech)
        logits, target = result["cpc_logits"].float(), result["cpc_targets"]
        if options["infonce"]:
            expected, size = F.cross_entropy(logits, target, reduction="sum"), target.numel()
        else:
            target, weights = target if isinstance(target, tuple) else (target, None)
            expected = F.binary_cross_entropy_with_logits(logits, target.float(), weights, reduction="sum")
            size = int(target.long().sum())
        scores = future_logits(
            model.predictor(ours.context),
            ours.features,
            Negatives(indices, torch.ones_like(indices, dtype=torch.bool)),
            torch.full((batch,), steps),
            loaded.config.offset_frames,
        )
        loss = wav2vec1_loss(scores, loaded.config.infonce, loaded.config.balanced_classes)
    assert int(loss.sample_size) == size
    assert torch.allclose(loss.loss, expected, rtol=1e-5), (float(loss.loss), float(expected))


def test_unsupported_fairseq_options_are_named(tmp_path):
    options = dict(
        conv_feature_layers="[(32, 10, 5), (32, 8, 4)]", conv_aggregator_layers="[(32, 3, 1)]", vq_type="gumbel"
    )
    path = tmp_path / "vq.pt"
    torch.save({"model": {}, "args": argparse.Namespace(arch="wav2vec", **options)}, path)
    with pytest.raises(ValueError, match="vq_type"):
        load_wav2vec1(path)
    torch.save({"model": {}, "args": argparse.Namespace(arch="wav2vec2")}, path)
    with pytest.raises(ValueError, match="expected fairseq's 'wav2vec' architecture"):
        load_wav2vec1(path)
