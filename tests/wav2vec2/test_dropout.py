"""The backbone's Dropout with its CPU kernel: nn.Dropout's distribution and gradient, a faster CPU mask."""

from __future__ import annotations

import pytest
import torch

from espnet_ext.wav2vec2.cpu_kernels.dropout import keep_mask, scaled_mask_dropout
from espnet_ext.wav2vec2.modules import Dropout


def test_is_an_nn_dropout_with_the_same_state():
    layer = Dropout(0.1)
    assert isinstance(layer, torch.nn.Dropout) and layer.p == 0.1 and not layer.state_dict()


def test_eval_and_p_zero_are_the_identity():
    x = torch.randn(8, 16)
    assert torch.equal(Dropout(0.3).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))  # nn.Dropout's own path


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_training_keeps_units_with_probability_1_minus_p_scaled(p):
    torch.manual_seed(0)
    x = torch.rand(400, 500) + 0.5  # no zeros of its own
    y = Dropout(p).train()(x)
    kept = y != 0
    assert abs(1 - kept.float().mean().item() - p) < 0.005  # 200,000 draws: sd ~0.001
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))
    # each unit independently: no correlation between neighbours' masks
    a, b = kept[:, :-1].float().flatten(), kept[:, 1:].float().flatten()
    assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item()) < 0.01


def test_gradient_is_the_scaled_mask():
    torch.manual_seed(1)
    x = (torch.rand(64, 32) + 0.5).requires_grad_()
    y = Dropout(0.2).train()(x)
    grad = torch.randn_like(y)
    y.backward(grad)
    expected = torch.where(y != 0, grad / 0.8, torch.zeros_like(grad))
    torch.testing.assert_close(x.grad, expected)


def test_seeded_draws_repeat_and_differ_between_calls():
    layer = Dropout(0.5).train()
    x = torch.ones(1000)
    torch.manual_seed(3)
    first, second = layer(x), layer(x)
    torch.manual_seed(3)
    assert torch.equal(layer(x), first) and not torch.equal(first, second)


def test_bfloat16_input_keeps_its_dtype():
    x = torch.ones(1000, dtype=torch.bfloat16)
    y = Dropout(0.25).train()(x)
    assert y.dtype == torch.bfloat16
    assert set(y.unique().tolist()) <= {0.0, torch.tensor(1 / 0.75, dtype=torch.bfloat16).item()}


@pytest.mark.parametrize("p", [0.05, 0.3, 0.9])
def test_keep_mask_rate_is_p_at_every_position_of_its_64_bit_words(p):
    # four units share a 64-bit draw: each of the four positions must see the same rate (a draw
    # whose top bit is fixed would keep or drop every fourth unit)
    torch.manual_seed(2)
    keep = keep_mask(torch.Size([250_000, 4]), p, torch.device("cpu")).float()
    rates = keep.mean(0)
    sd = (p * (1 - p) / 250_000) ** 0.5
    assert (rates - (1 - p)).abs().max() < 5 * sd, rates
    assert abs(keep.mean() - (1 - p)) < 5 * sd / 2


def test_odd_sizes_and_probabilities_the_16_bit_draw_cannot_make():
    assert keep_mask(torch.Size([3, 7]), 0.5, torch.device("cpu")).shape == (3, 7)  # not a multiple of 4
    x = torch.rand(64, 64) + 0.5
    for p in (1e-7, 1 - 1e-7):  # rounded to 0 or 1 in 16 bits: nn.Dropout's own draws
        torch.manual_seed(4)
        ours = scaled_mask_dropout(x, p)
        torch.manual_seed(4)
        assert torch.equal(ours, torch.nn.functional.dropout(x, p, training=True))
        torch.manual_seed(4)
        assert torch.equal(Dropout(p).train()(x), ours)
