"""Behaviour of the wav2vec 2.0 backbone: padding, lengths, short input, early stop, masks, gradients."""

import dataclasses

import pytest
import torch
from torch import nn

from espnet_ext.wav2vec2.config import Wav2Vec2Config
from espnet_ext.wav2vec2.model import Wav2Vec2Model, Wav2Vec2Output, wav2vec2_model
from espnet_ext.wav2vec2.modules import conv_output_lengths, lengths_to_padding_mask, receptive_field
from espnet_ext.wav2vec2.presets import preset_config, tiny_config

ARCHS = [("default", False), ("default", True), ("layer_norm", False), ("layer_norm", True)]
ARCH_IDS = ["group-postLN", "group-preLN", "layer-postLN", "layer-preLN"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(mode: str = "default", layer_norm_first: bool = False, **overrides) -> Wav2Vec2Config:
    return dataclasses.replace(
        tiny_config(),
        extractor_mode=mode,
        layer_norm_first=layer_norm_first,
        conv_bias=mode == "layer_norm",
        **overrides,
    )


def _model(config: Wav2Vec2Config, seed: int = 0) -> Wav2Vec2Model:
    """A tiny model with every parameter (LayerNorms and biases too) random."""
    torch.manual_seed(seed)
    model = wav2vec2_model(config)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model.eval()


@pytest.mark.parametrize("mode,layer_norm_first", ARCHS, ids=ARCH_IDS)
def test_padded_batch_equals_per_utterance(mode, layer_norm_first):
    model = _model(_config(mode, layer_norm_first))
    lengths = torch.tensor([4000, 2630, 1210])
    waves = torch.randn(3, 4000) * (torch.arange(4000)[None] < lengths[:, None])
    with torch.no_grad():
        batch = model(waves, lengths)
        for b, n in enumerate(lengths.tolist()):
            alone = model(waves[b : b + 1, :n])
            frames = int(batch.lengths[b])
            assert frames == alone.hidden_states[0].size(1) == model.output_lengths(n)
            assert not batch.padding_mask[b, :frames].any() and batch.padding_mask[b, frames:].all()
            pairs = list(zip(batch.hidden_states, alone.hidden_states))
            pairs += [(batch.features, alone.features), (batch.unmasked_features, alone.unmasked_features)]
            diff = max(float((x[b, :frames] - y[0]).abs().max()) for x, y in pairs)
            assert diff < 1e-5, diff


def test_feature_penalty_ignores_padding():
    model = _model(_config())
    wave = torch.randn(1, 2000)
    padded = torch.cat([wave, torch.zeros(1, 1000)], dim=1)
    with torch.no_grad():
        alone = model(wave).feature_penalty
        batch = model(padded, torch.tensor([2000])).feature_penalty
    assert torch.allclose(alone, batch, rtol=1e-5)


def test_padded_batch_hidden_states_are_finite_at_padding():
    model = _model(_config())
    out = model(torch.randn(2, 3000), torch.tensor([3000, 900]))
    assert all(torch.isfinite(h).all() for h in out.hidden_states)


def test_output_lengths_match_a_real_conv_stack():
    layers = tiny_config().conv_feature_layers
    stack = nn.Sequential(*[nn.Conv1d(1, 1, k, stride=s) for _, k, s in layers])
    samples = list(range(395, 420)) + [1000, 1599, 1600, 1601, 16000, 16001, 33333]

    def real(n: int) -> int:
        try:
            with torch.no_grad():
                return stack(torch.zeros(1, 1, n)).size(-1)
        except RuntimeError:  # "Kernel size can't be greater than actual input size"
            return 0

    expected = [real(n) for n in samples]
    assert expected[:5] == [0] * 5 and expected[5] == 1
    assert [conv_output_lengths(n, layers) for n in samples] == expected
    assert conv_output_lengths(torch.tensor(samples), layers).tolist() == expected
    assert conv_output_lengths(torch.tensor([0, 9, 10, 399]), layers).tolist() == [0, 0, 0, 0]
    assert receptive_field(layers) == 400 == receptive_field(preset_config("large").conv_feature_layers)
    model = _model(_config())
    assert model.min_input_length == 400
    with torch.no_grad():
        for n in (400, 719, 720, 1234):
            assert model(torch.randn(1, n)).hidden_states[-1].size(1) == conv_output_lengths(n, layers)


def test_padding_mask_is_true_from_the_valid_length_on():
    mask = lengths_to_padding_mask(torch.tensor([3, 0, 5]), 5)
    assert mask.tolist() == [[False, False, False, True, True], [True] * 5, [False] * 5]


@pytest.mark.parametrize("samples", [0, 10, 399])
def test_input_shorter_than_the_receptive_field_raises(samples):
    model = _model(_config())
    with pytest.raises(ValueError, match="at least 400 samples"):
        model(torch.randn(2, samples))


def test_too_short_utterance_in_a_longer_batch_gets_zero_frames():
    """Documented behaviour: 0 frames, an all-padding row, finite values; the others are unaffected."""
    model = _model(_config())
    waves = torch.randn(3, 2000)
    lengths = torch.tensor([2000, 399, 0])
    with torch.no_grad():
        out = model(waves, lengths)
        alone = model(waves[:1])
    assert out.lengths.tolist() == [model.output_lengths(2000), 0, 0]
    assert out.padding_mask[1:].all()
    assert all(torch.isfinite(h).all() for h in out.hidden_states)
    assert float((out.hidden_states[-1][0] - alone.hidden_states[-1][0]).abs().max()) < 1e-5


@pytest.mark.parametrize("bad", [torch.randn(2, 1, 800), torch.ones(2, 800, dtype=torch.long)])
def test_bad_waveform_shapes_raise(bad):
    with pytest.raises(ValueError, match="expected a \\(batch, samples\\) float tensor"):
        _model(_config())(bad)


def test_bad_lengths_raise():
    model = _model(_config())
    with pytest.raises(ValueError, match="lengths: expected values in"):
        model(torch.randn(2, 800), torch.tensor([800, 801]))
    with pytest.raises(ValueError, match="lengths: expected a \\(2,\\) integer tensor"):
        model(torch.randn(2, 800), torch.tensor([800.0, 700.0]))


@pytest.mark.parametrize("mode,layer_norm_first", [ARCHS[0], ARCHS[3]], ids=[ARCH_IDS[0], ARCH_IDS[3]])
@pytest.mark.parametrize("num_layers", [0, 1])
def test_num_layers_stops_early(mode, layer_norm_first, num_layers):
    model = _model(_config(mode, layer_norm_first, encoder_layers=3))
    called = []
    for i, layer in enumerate(model.encoder.layers):
        layer.register_forward_hook(lambda *_, i=i: called.append(i))
    waves = torch.randn(2, 2000)
    with torch.no_grad():
        partial = model(waves, num_layers=num_layers)
        assert called == list(range(num_layers))
        full = model(waves)
    assert len(partial.hidden_states) == num_layers + 1 and len(full.hidden_states) == 4
    for mine, reference in zip(partial.hidden_states, full.hidden_states[: num_layers + 1]):
        assert torch.equal(mine, reference)  # the final LayerNorm (pre-LN) only ends a full run


def test_num_layers_out_of_range_raises():
    model = _model(_config())
    for bad in (-1, 3):
        with pytest.raises(ValueError, match="num_layers: expected 0..2"):
            model(torch.randn(1, 800), num_layers=bad)


def _encoder_input(model: Wav2Vec2Model, *args, **kwargs):
    seen = []
    handle = model.encoder.register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0]))
    with torch.no_grad():
        out = model(*args, **kwargs)
    handle.remove()
    return seen[0], out


def test_time_and_channel_masks_apply_only_where_asked():
    model = _model(_config())
    waves = torch.randn(2, 3000)
    frames = model.output_lengths(3000)
    plain, out = _encoder_input(model, waves)
    assert torch.equal(plain, out.features)
    time_mask = torch.zeros(2, frames, dtype=torch.bool)
    time_mask[0, 2:5] = True
    time_mask[1, 0] = True
    masked, out = _encoder_input(model, waves, time_mask=time_mask)
    assert torch.equal(out.features, plain)  # features are reported before masking
    assert torch.equal(masked[time_mask], model.mask_emb.detach().expand(int(time_mask.sum()), -1))
    assert torch.equal(masked[~time_mask], plain[~time_mask])
    channel_mask = torch.zeros(2, model.output_size(), dtype=torch.bool)
    channel_mask[1, [3, 7, 60]] = True
    masked, _ = _encoder_input(model, waves, channel_mask=channel_mask)
    assert (masked[1][:, [3, 7, 60]] == 0).all()
    keep = ~channel_mask[:, None, :].expand_as(masked)
    assert torch.equal(masked[keep], plain[keep])


def test_masks_of_the_wrong_shape_raise():
    model = _model(_config())
    frames = model.output_lengths(3000)
    with pytest.raises(ValueError, match=f"time_mask: expected a bool tensor of shape \\(2, {frames}\\)"):
        model(torch.randn(2, 3000), time_mask=torch.zeros(2, frames + 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="channel_mask: expected a bool tensor of shape \\(2, 64\\)"):
        model(torch.randn(2, 3000), channel_mask=torch.zeros(2, 64))


def _extractor_grad(feature_grad_mult: float) -> torch.Tensor:
    model = _model(_config(feature_grad_mult=feature_grad_mult))
    out = model(torch.randn(2, 1200, generator=torch.Generator().manual_seed(1)))
    out.hidden_states[-1].sum().backward()
    return model.feature_extractor.conv_layers[0].conv.weight.grad


def test_feature_grad_mult_scales_the_extractor_gradient():
    full, scaled = _extractor_grad(1.0), _extractor_grad(0.1)
    assert torch.allclose(scaled, 0.1 * full, rtol=1e-4, atol=1e-6 * float(full.abs().max()))
    assert _extractor_grad(0.0) is None


def test_layerdrop_skips_layers_in_training_only():
    model = _model(_config(encoder_layerdrop=1.0, dropout=0.0, attention_dropout=0.0))
    waves = torch.randn(1, 1200)
    model.train()
    out = model(waves)
    assert all(torch.equal(h, out.hidden_states[0]) for h in out.hidden_states)
    model.eval()
    out = model(waves)
    assert not torch.equal(out.hidden_states[1], out.hidden_states[0])


def test_output_is_a_named_tuple_with_documented_shapes():
    model = _model(_config())
    out = model(torch.randn(2, 2000), torch.tensor([2000, 1500]))
    frames = model.output_lengths(2000)
    assert isinstance(out, Wav2Vec2Output)
    assert out.last_hidden_state is out.hidden_states[-1]
    assert out.features.shape == (2, frames, 64) and out.unmasked_features.shape == (2, frames, 32)
    assert out.padding_mask.dtype == torch.bool and out.lengths.dtype == torch.long
    assert out.feature_penalty.dim() == 0 and model.output_size() == 64


def test_config_validation_names_field_and_values():
    with pytest.raises(ValueError, match="extractor_mode: expected one of default, layer_norm; found 'group'"):
        Wav2Vec2Config(extractor_mode="group")
    with pytest.raises(ValueError, match="encoder_embed_dim: expected a multiple of encoder_attention_heads"):
        Wav2Vec2Config(encoder_embed_dim=100)
    with pytest.raises(ValueError, match="conv_feature_layers"):
        Wav2Vec2Config(conv_feature_layers=[(512, 10)])
    with pytest.raises(ValueError, match="preset: expected one of base, medium, small, large, mini, tiny"):
        preset_config("huge")


def test_config_reads_fairseq_layer_strings_and_round_trips():
    config = Wav2Vec2Config(conv_feature_layers="[(32, 10, 5)] + [(32, 3, 2)] * 2", latent_temp="(2,0.5,0.999995)")
    assert config.conv_feature_layers == [(32, 10, 5), (32, 3, 2), (32, 3, 2)]
    assert config.latent_temp == (2.0, 0.5, 0.999995)
    assert Wav2Vec2Config.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "hf,match",
    [
        ({"model_type": "hubert"}, "model_type: expected 'wav2vec2'; found 'hubert'"),
        ({"add_adapter": True}, "add_adapter: expected false"),
        ({"feat_extract_activation": "relu"}, "feat_extract_activation: expected 'gelu'; found 'relu'"),
        ({"conv_dim": [32, 32], "conv_kernel": [10], "conv_stride": [5, 2]}, "expected equal lengths; found 2/1/2"),
    ],
)
def test_huggingface_options_not_implemented_raise(hf, match):
    with pytest.raises(ValueError, match=match):
        Wav2Vec2Config.from_huggingface(hf)


def test_fairseq_config_from_namespace_with_string_fields():
    import argparse

    args = argparse.Namespace(
        arch="wav2vec2",
        conv_feature_layers="[(512, 10, 5)] + [(512, 3, 2)] * 2",
        latent_temp="(2,0.5,0.999995)",
        encoder_layers=3,
        unrelated_option=1,
    )
    config = Wav2Vec2Config.from_fairseq(args)
    assert config.encoder_layers == 3 and len(config.conv_feature_layers) == 3
    with pytest.raises(ValueError, match="expected a wav2vec 2.0 model .* found 'hubert'"):
        Wav2Vec2Config.from_fairseq({"model": {"_name": "hubert"}})
