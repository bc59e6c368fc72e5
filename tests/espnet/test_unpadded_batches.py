"""Batches cropped to one length reach the model as unpadded: the pre-training collate marks them
``speech_unpadded``, the ESPnet model then runs without lengths or masks, and the fine-tuning
frontend takes the unpadded path for equal lengths on the CPU; each gives the padded path's
losses, outputs and gradients (the padded path forced as it runs for lengths on a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import espnet_ext  # noqa: F401  (registry)
from espnet_ext.espnet.frontend import Wav2Vec2Frontend
from espnet_ext.espnet.ssl_model import ESPnetWav2Vec2Model, MarkUnpadded, MaxSampleCrop, mark_unpadded
from espnet_ext.espnet.tasks import SSLTask
from espnet_ext.wav2vec2 import cpu_kernels, modules, transformer
from espnet_ext.wav2vec2 import model as model_module

pytestmark = pytest.mark.usefixtures("one_thread")

NO_DROPOUT = dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, dropout_input=0.0, dropout_features=0.0)


def always_masked(monkeypatch) -> None:
    """The padded path for any lengths tensor (as for lengths on a GPU, which are not read)."""

    def key_padding_attn_mask(padding_mask):
        if padding_mask is None:
            return None
        attend = ~padding_mask
        return (attend | ~attend.any(dim=1, keepdim=True))[:, None, None, :]

    monkeypatch.setattr(modules, "known_unpadded", lambda lengths, steps: lengths is None)
    monkeypatch.setattr(model_module, "known_unpadded", lambda lengths, steps: lengths is None)
    monkeypatch.setattr(transformer, "key_padding_attn_mask", key_padding_attn_mask)


def _assert_grads_close(actual: dict, expected: dict, tol: float = 1e-4) -> None:
    assert actual.keys() == expected.keys()
    largest = max(float(g.abs().max()) for g in expected.values())
    for name, grad in expected.items():
        scale = max(float(grad.abs().max()), 1e-3 * largest)
        torch.testing.assert_close(actual[name], grad, rtol=0, atol=tol * scale)


def _args(*extra: str):
    return SSLTask.get_parser().parse_args(["--output_dir", "x", "--model", "wav2vec2", *extra])


def _data(lengths):
    rng = np.random.default_rng(0)
    return [(f"u{i}", {"speech": rng.standard_normal(n).astype(np.float32)}) for i, n in enumerate(lengths)]


def test_the_pretraining_collate_marks_batches_cropped_to_one_length():
    data = _data((1200, 900, 700))
    cropped = SSLTask.build_collate_fn(_args("--collate_fn_conf", "crop_audio=true"), train=True)
    assert isinstance(cropped, MarkUnpadded)
    _, batch = cropped(data)
    assert batch["speech"].shape == (3, 700) and batch["speech_unpadded"] is True
    windowed = _args("--collate_fn_conf", "crop_audio=true", "--collate_fn_conf", "max_sample_size=500")
    _, batch = SSLTask.build_collate_fn(windowed, train=True)(data)
    assert batch["speech"].shape == (3, 500) and batch["speech_unpadded"] is True
    padded = _args("--collate_fn_conf", "crop_audio=false", "--collate_fn_conf", "pad=true")
    _, batch = SSLTask.build_collate_fn(padded, train=True)(data)
    assert batch["speech"].shape == (3, 1200) and "speech_unpadded" not in batch
    _, batch = SSLTask.build_collate_fn(_args("--collate_fn_conf", "crop_audio=true"), train=False)(data)
    assert "speech_unpadded" not in batch  # validation batches are whole utterances, padded
    # MaxSampleCrop marks what it leaves of one length only
    crop = MaxSampleCrop(lambda d: (d, {"speech": torch.zeros(2, 30), "speech_lengths": torch.tensor([30, 8])}), 10)
    assert "speech_unpadded" not in crop(["a", "b"])[1]
    assert mark_unpadded({"speech": torch.zeros(2, 5), "speech_lengths": torch.tensor([5, 5])})["speech_unpadded"]


def _ssl_run(model, speech, lengths, **flags):
    model.zero_grad(set_to_none=True)
    torch.manual_seed(3)  # masks, negatives and Gumbel noise drawn alike in both runs
    loss, stats, weight = model(speech, lengths, **flags)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), {k: v.detach() for k, v in stats.items()}, weight, grads


def test_espnet_model_marked_batch_equals_the_masked_path(monkeypatch):
    torch.manual_seed(0)
    model = ESPnetWav2Vec2Model(preset="tiny", config=dict(NO_DROPOUT, num_negatives=10)).train()
    speech = torch.randn(3, 4000, generator=torch.Generator().manual_seed(1)) * 0.1
    lengths = torch.full((3,), 4000)
    seen = []
    real = model.pretraining.forward
    monkeypatch.setattr(model.pretraining, "forward", lambda w, lens, **kw: seen.append(lens) or real(w, lens, **kw))
    with cpu_kernels.disabled():
        unpadded = _ssl_run(model, speech, lengths, speech_unpadded=True)
        always_masked(monkeypatch)
        masked = _ssl_run(model, speech, lengths)
    assert seen[0] is None and seen[1] is lengths  # the marked batch reaches the objective without lengths
    torch.testing.assert_close(unpadded[0], masked[0], rtol=1e-5, atol=1e-6)
    for name in unpadded[1]:
        torch.testing.assert_close(unpadded[1][name], masked[1][name], rtol=1e-4, atol=1e-6)
    assert int(unpadded[2]) == int(masked[2])
    _assert_grads_close(unpadded[3], masked[3])
    with pytest.raises(ValueError, match="speech_unpadded: expected every speech_lengths to be 4000"):
        model(speech, torch.tensor([4000, 3000, 4000]), speech_unpadded=True)


def _frontend_run(frontend, speech, lengths):
    frontend.zero_grad(set_to_none=True)
    torch.manual_seed(4)  # the time masks drawn alike
    feats, frames = frontend(speech, lengths)
    weights = torch.randn(feats.shape, generator=torch.Generator().manual_seed(5))
    (feats * weights).sum().backward()
    grads = {name: p.grad.clone() for name, p in frontend.named_parameters() if p.grad is not None}
    return feats.detach(), frames, grads


@pytest.mark.parametrize("weighted_sum", [False, True])
def test_finetuning_frontend_equal_lengths_take_the_unpadded_path(monkeypatch, weighted_sum):
    torch.manual_seed(0)
    dropouts = {k: v for k, v in NO_DROPOUT.items() if k != "dropout_features"}  # not a fine-tuning option
    frontend = Wav2Vec2Frontend(preset="tiny", mask_prob=0.3, weighted_sum=weighted_sum, **dropouts).train()
    speech = torch.randn(2, 3200, generator=torch.Generator().manual_seed(2))
    lengths = torch.full((2,), 3200)
    masks: list = []
    real = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(
        torch.nn.functional,
        "scaled_dot_product_attention",
        lambda *a, **kw: masks.append(kw["attn_mask"]) or real(*a, **kw),
    )
    with cpu_kernels.disabled():
        unpadded = _frontend_run(frontend, speech, lengths)
        assert masks and all(mask is None for mask in masks)
        always_masked(monkeypatch)
        masks.clear()
        masked = _frontend_run(frontend, speech, lengths)
        assert masks and all(mask is not None for mask in masks)
    torch.testing.assert_close(unpadded[0], masked[0], rtol=0, atol=1e-5 * float(masked[0].abs().max()))
    assert torch.equal(unpadded[1], masked[1])
    _assert_grads_close(unpadded[2], masked[2])
