"""The unpadded path: a batch without lengths uses no mask anywhere (``nn.GroupNorm``, attention
without a mask), and gives the padded path's outputs, losses and gradients on a batch of equal
lengths. On the CPU the model itself takes the unpadded path when every length is the batch's;
the padded path is forced here by making that check (and the attention mask's) answer as they
do for lengths on a GPU, where they are not read."""

import contextlib
import dataclasses

import pytest
import torch
from torch import nn

from espnet_ext.wav2vec2 import cpu_kernels, modules, transformer
from espnet_ext.wav2vec2 import model as model_module
from espnet_ext.wav2vec2.model import wav2vec2_model
from espnet_ext.wav2vec2.negatives import sample_negatives
from espnet_ext.wav2vec2.presets import tiny_config
from espnet_ext.wav2vec2.pretraining import wav2vec2_pretraining

pytestmark = pytest.mark.usefixtures("one_thread")

NO_DROPOUT = dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, dropout_input=0.0, dropout_features=0.0)


def always_masked(monkeypatch) -> None:
    """The padded path for any lengths tensor, as for lengths on a GPU: GroupNorm over masked
    statistics, the attention's key mask built even when nothing is padded."""

    def known_unpadded(lengths, max_length):
        return lengths is None

    def key_padding_attn_mask(padding_mask):
        if padding_mask is None:
            return None
        attend = ~padding_mask
        return (attend | ~attend.any(dim=1, keepdim=True))[:, None, None, :]

    monkeypatch.setattr(modules, "known_unpadded", known_unpadded)
    monkeypatch.setattr(model_module, "known_unpadded", known_unpadded)
    monkeypatch.setattr(transformer, "key_padding_attn_mask", key_padding_attn_mask)


@contextlib.contextmanager
def recorded_attention_masks(masks: list):
    """Record the ``attn_mask`` of every ``scaled_dot_product_attention`` call."""
    real = torch.nn.functional.scaled_dot_product_attention

    def sdpa(q, k, v, attn_mask=None, **kwargs):
        masks.append(attn_mask)
        return real(q, k, v, attn_mask=attn_mask, **kwargs)

    torch.nn.functional.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        torch.nn.functional.scaled_dot_product_attention = real


def _random_model(**overrides):
    torch.manual_seed(0)
    model = wav2vec2_model(dataclasses.replace(tiny_config(), **overrides))
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return model


def _backbone_run(model, waves, lengths):
    model.zero_grad(set_to_none=True)
    out = model(waves, lengths)
    weights = torch.randn(out.last_hidden_state.shape, generator=torch.Generator().manual_seed(3))
    ((out.last_hidden_state * weights).sum() + out.feature_penalty).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    values = [*out.hidden_states, out.features, out.unmasked_features, out.feature_penalty]
    return [v.detach() for v in values], out.padding_mask, grads


def _close(actual, expected, tol=1e-5, floor=1e-6):
    """Within ``tol`` of ``expected``'s largest magnitude (or of ``floor``, when larger)."""
    scale = max(float(expected.detach().abs().max()), floor)
    torch.testing.assert_close(actual, expected, rtol=0, atol=tol * scale)


def _close_grads(actual, expected, tol=1e-4):
    """Every gradient within ``tol`` of its own largest magnitude, or of 1e-3 of the largest of
    all (a gradient that cancels to ~0, as a LayerNorm's before another, is float noise)."""
    assert actual.keys() == expected.keys()
    largest = max(float(g.abs().max()) for g in expected.values())
    for name in expected:
        _close(actual[name], expected[name], tol, 1e-3 * largest)


@pytest.mark.parametrize("mode", ["default", "layer_norm"])
@pytest.mark.parametrize("kernels", [False, True], ids=["plain", "cpu_kernels"])
def test_backbone_equal_lengths_with_and_without_masks(monkeypatch, mode, kernels):
    model = _random_model(extractor_mode=mode, conv_bias=mode == "layer_norm", **NO_DROPOUT).train()
    waves = torch.randn(3, 3000, generator=torch.Generator().manual_seed(1))
    full = torch.full((3,), 3000)
    context = cpu_kernels.enabled() if kernels else cpu_kernels.disabled()
    with context:
        unpadded, no_padding, unpadded_grads = _backbone_run(model, waves, None)
        on_cpu, _, on_cpu_grads = _backbone_run(model, waves, full)  # all lengths L: unpadded on the CPU too
        always_masked(monkeypatch)
        masked, padding, masked_grads = _backbone_run(model, waves, full)
    assert not no_padding.any() and not padding.any()
    for a, b, c in zip(unpadded, masked, on_cpu):
        _close(a, b)
        assert torch.equal(a, c)
    _close_grads(unpadded_grads, masked_grads)
    assert unpadded_grads.keys() == on_cpu_grads.keys()
    assert all(torch.equal(unpadded_grads[name], on_cpu_grads[name]) for name in unpadded_grads)


def test_the_unpadded_path_builds_no_mask_and_runs_plain_group_norm(monkeypatch):
    """On the ``meta`` device (no values to read, as lengths on a GPU are not read): without
    lengths, every attention call gets no mask and the extractor runs ``nn.GroupNorm``; with
    lengths, the masked norm and a key mask."""
    model = _random_model().train().to("meta")
    waves = torch.randn(2, 2000, device="meta")
    norms = []
    monkeypatch.setattr(nn.GroupNorm, "forward", lambda self, x: norms.append("plain") or x)
    real_masked = modules._masked_channel_norm
    monkeypatch.setattr(modules, "_masked_channel_norm", lambda *a: norms.append("masked") or real_masked(*a))
    masks: list = []
    with cpu_kernels.disabled(), recorded_attention_masks(masks):
        model(waves)
        assert norms == ["plain"] and len(masks) == model.num_layers and all(m is None for m in masks)
        norms.clear(), masks.clear()
        model(waves, torch.tensor([2000, 2000], device="meta"))
        assert norms == ["masked"] and len(masks) == model.num_layers and all(m is not None for m in masks)


def _pretraining_run(model, waves, lengths, time_mask, negatives):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(5)  # the quantizer's Gumbel noise
    out = model(waves, lengths, num_updates=100, time_mask=time_mask, negatives=negatives)
    out.loss.per_frame.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    values = [out.loss.per_frame, out.loss.contrastive, out.loss.feature_penalty, out.logits, out.targets]
    return [v.detach() for v in values], grads


def test_pretraining_equal_lengths_with_and_without_masks(monkeypatch):
    torch.manual_seed(0)
    model = wav2vec2_pretraining(dataclasses.replace(tiny_config(), **NO_DROPOUT)).train()
    waves = torch.randn(3, 4000, generator=torch.Generator().manual_seed(2))
    frames = model.backbone.output_lengths(4000)
    time_mask, _ = model.make_masks(torch.full((3,), frames), frames, torch.Generator().manual_seed(4))
    negatives = sample_negatives(time_mask, model.options.num_negatives, torch.Generator().manual_seed(6))
    with cpu_kernels.disabled():
        unpadded, unpadded_grads = _pretraining_run(model, waves, None, time_mask, negatives)
        always_masked(monkeypatch)
        masked, masked_grads = _pretraining_run(model, waves, torch.full((3,), 4000), time_mask, negatives)
    for a, b in zip(unpadded, masked):
        _close(a, b)
    _close_grads(unpadded_grads, masked_grads)


def test_masked_channel_norm_is_group_norm_in_float32_under_bf16():
    """The padded path's GroupNorm: fairseq's Fp32GroupNorm on valid frames, for float32 and
    bfloat16 input (statistics in float32 either way, also under autocast)."""
    torch.manual_seed(0)
    norm = nn.GroupNorm(8, 8)
    with torch.no_grad():
        norm.weight.normal_(), norm.bias.normal_()
    x = torch.randn(3, 8, 50) * 4 + 2
    lengths = torch.tensor([50, 31, 0])
    with torch.no_grad():
        out = modules._masked_channel_norm(x, lengths, norm)
    for b, n in enumerate(lengths.tolist()[:2]):
        _close(out[b, :, :n], norm(x[b : b + 1, :, :n])[0])
    assert torch.isfinite(out).all()
    with torch.no_grad():
        reference = norm(x[:2])
    low = modules._masked_channel_norm(x[:2].bfloat16(), torch.tensor([50, 50]), norm)
    assert low.dtype == torch.bfloat16
    _close(low.float(), reference, 2e-2)  # one bf16 rounding of the input, one of the output
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = modules._masked_channel_norm(x[:2], torch.tensor([50, 50]), norm)
    _close(under_autocast, reference)
