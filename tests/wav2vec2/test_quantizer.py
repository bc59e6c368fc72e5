"""Gumbel product quantizer: selection, straight-through gradient, perplexities over valid frames,
fairseq's parameter layout and temperature schedule."""

from __future__ import annotations

import math

import pytest
import torch

from espnet_ext.wav2vec2.presets import parameter_count, preset_config
from espnet_ext.wav2vec2.pretraining import wav2vec2_pretraining
from espnet_ext.wav2vec2.quantizer import GumbelVectorQuantizer, gumbel_temperature, gumbel_vector_quantizer, perplexity


def quantizer(groups=2, num_vars=8, vq_dim=12, input_dim=10, depth=1) -> GumbelVectorQuantizer:
    torch.manual_seed(0)
    return gumbel_vector_quantizer(input_dim, num_vars, groups, vq_dim, depth)


def test_temperature_schedule():
    assert gumbel_temperature(0) == 2.0
    assert gumbel_temperature(1000) == pytest.approx(2.0 * 0.999995**1000)
    floor_at = math.ceil(math.log(0.5 / 2.0) / math.log(0.999995))  # 277,258 updates
    assert gumbel_temperature(floor_at - 10) > 0.5 and gumbel_temperature(floor_at) == 0.5
    assert gumbel_temperature(10**7) == 0.5
    assert gumbel_temperature(10**7, 2.0, 0.1, 0.999995) == 0.1  # LARGE's end
    counts = torch.tensor([0, 1000, 100000, floor_at, 10**7])  # a buffer: stays a tensor
    expected = torch.tensor([gumbel_temperature(int(n)) for n in counts])
    assert torch.allclose(gumbel_temperature(counts), expected, rtol=1e-6)
    for bad in [dict(start=0.0), dict(end=-1.0), dict(decay=1.5), dict(decay=0.0)]:
        with pytest.raises(ValueError, match="latent_temp"):
            gumbel_temperature(0, **bad)


def test_selection_concatenates_one_entry_per_group():
    q = quantizer()
    x = torch.randn(2, 5, 10)
    books = q.vars.view(2, 8, 6)
    for training in (True, False):
        out = q.train(training)(x, temperature=2.0)
        assert out.quantized.shape == (2, 5, 12) and out.codes.shape == (2, 5, 2) and out.num_vars == 16
        expected = torch.cat([books[g][out.codes[..., g]] for g in range(2)], dim=-1)
        assert torch.allclose(out.quantized, expected)
    logits = q.weight_proj(x).view(2, 5, 2, 8)
    assert torch.equal(q.eval()(x, 2.0).codes, logits.argmax(-1))  # evaluation: argmax, no noise


def test_straight_through_gradient_reaches_the_logits():
    q = quantizer().train()
    x = torch.randn(3, 7, 10, requires_grad=True)
    q(x, temperature=0.5).quantized.square().sum().backward()
    assert q.weight_proj.weight.grad.abs().sum() > 0 and x.grad.abs().sum() > 0
    assert q.vars.grad.abs().sum() > 0
    q.zero_grad()
    q.eval()(x, temperature=0.5).quantized.square().sum().backward()  # argmax: codebooks only
    assert q.weight_proj.weight.grad is None or q.weight_proj.weight.grad.abs().sum() == 0
    assert q.vars.grad.abs().sum() > 0


def test_tensor_temperature_is_used_and_returned():
    q = quantizer().train()
    out = q(torch.randn(2, 4, 10), temperature=torch.tensor(0.7))
    assert out.temperature.dtype == torch.float32 and float(out.temperature) == pytest.approx(0.7)


def test_perplexities_average_over_valid_frames_only():
    q = quantizer().eval()
    x = torch.randn(2, 6, 10)
    valid = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    garbage = x.clone()
    garbage[1, 3:] = 100 * torch.randn(3, 10)  # padding frames: never counted
    full = q(garbage, 1.0, valid)
    alone = q(torch.cat([x[0], x[1, :3]]).unsqueeze(0), 1.0)
    assert torch.allclose(full.prob_perplexity, alone.prob_perplexity, atol=1e-5)
    assert torch.allclose(full.code_perplexity, alone.code_perplexity, atol=1e-5)
    none = q(x, 1.0, torch.zeros(2, 6, dtype=torch.bool)).prob_perplexity.detach()
    assert float(none) == pytest.approx(2.0, abs=1e-3)  # no valid frame: 1 per group, not NaN


def test_perplexity_bounds():
    uniform = torch.full((1, 4, 2, 8), 1 / 8)
    assert float(perplexity(uniform)) == pytest.approx(16.0, rel=1e-5)  # G * V: the diversity loss's optimum
    collapsed = torch.zeros(1, 4, 2, 8)
    collapsed[..., 3] = 1.0
    assert float(perplexity(collapsed)) == pytest.approx(2.0, rel=1e-5)  # one entry per group


@pytest.mark.parametrize("depth", [1, 2])
def test_parameters_follow_fairseq_layout_and_counts(depth):
    config = preset_config("tiny")
    config.quantizer_depth = depth
    model = wav2vec2_pretraining(config)
    count = sum(p.numel() for p in model.quantizer.parameters())
    assert count == parameter_count(config).quantizer
    names = set(model.pretraining_state())
    assert "quantizer.vars" in names and {"project_q.weight", "final_proj.bias"} <= names
    assert ("quantizer.weight_proj.weight" in names) == (depth == 1)
    assert ("quantizer.weight_proj.0.0.weight" in names) == (depth == 2)
    if depth == 1:  # fairseq's initialisation of the single projection
        assert abs(float(model.quantizer.weight_proj.weight.detach().std()) - 1.0) < 0.1


def test_bad_arguments():
    with pytest.raises(ValueError, match="vq_dim: expected a multiple of groups"):
        gumbel_vector_quantizer(10, 8, 3, 10)
    with pytest.raises(ValueError, match="num_vars: expected a positive integer"):
        gumbel_vector_quantizer(10, 0, 2, 10)
    with pytest.raises(ValueError, match="codevectors: expected shape"):
        GumbelVectorQuantizer(torch.nn.Linear(4, 6), torch.nn.Parameter(torch.zeros(6, 2)), 2)
