"""The training forward passes read no value back from the device (on a GPU that would make
the host wait for the queued kernels mid-step): run on the ``meta`` device, where tensors have
shapes but no data, anything that reads a value (``bool``, ``int``, ``.item()``, ``.tolist()``,
a data-dependent shape such as ``nonzero``) raises. Masking, negative sampling, the
quantizer, the losses and the ``wav2vec2`` frontend's masks and freeze are all covered (the
objective alone is also checked on a real GPU in ``test_pretraining.py`` when one is present).
"""

import contextlib

import pytest
import torch

import espnet_ext  # noqa: F401
from espnet_ext.espnet.frontend import Wav2Vec2Frontend
from espnet_ext.wav2vec2.presets import tiny_config
from espnet_ext.wav2vec2.pretraining import wav2vec2_pretraining

META = torch.device("meta")


@pytest.fixture
def meta_autocast(monkeypatch):
    """``torch.autocast`` has no ``meta`` device type (the losses disable autocast on their device)."""
    real = torch.autocast

    def autocast(device_type, *args, **kwargs):
        return contextlib.nullcontext() if device_type == "meta" else real(device_type, *args, **kwargs)

    monkeypatch.setattr(torch, "autocast", autocast)


def _batch():
    return torch.randn(3, 16000, device=META), torch.tensor([16000, 12000, 7000], device=META)


def test_meta_device_refuses_reading_values_back():
    # what the tests below rely on
    with pytest.raises(RuntimeError, match="meta"):
        bool(torch.ones(2, device=META).any())


def test_pretraining_forward_reads_nothing_back(meta_autocast):
    model = wav2vec2_pretraining(tiny_config()).train().to(META)
    waves, lengths = _batch()
    out = model(waves, lengths, num_updates=torch.tensor(10, device=META))
    assert out.loss.per_frame.device == META and out.loss.per_frame.dim() == 0


@pytest.mark.parametrize("freeze", [0, 2])
def test_finetuning_frontend_forward_reads_nothing_back(freeze):
    frontend = Wav2Vec2Frontend(
        preset="tiny", mask_prob=0.5, mask_channel_prob=0.2, mask_channel_length=4, freeze_finetune_updates=freeze
    )
    frontend.num_updates.fill_(freeze)  # past the freeze (reading the count within it is a sync)
    if freeze:
        assert not frontend.frozen  # read once on CPU, then kept
    frontend = frontend.train().to(META)
    feats, lengths = frontend(*_batch())
    assert feats.shape[0] == 3 and feats.device == META and lengths.shape == (3,)


def test_unpadded_pretraining_forward_reads_nothing_back(meta_autocast):
    """The ESPnet model on a batch marked ``speech_unpadded`` (lengths on the device: not read)."""
    from espnet_ext.espnet.ssl_model import ESPnetWav2Vec2Model

    model = ESPnetWav2Vec2Model(preset="tiny").train()
    model.monitor.every = 10**9  # the collapse monitor reads two values every 50 batches, by design
    model = model.to(META)
    waves = torch.randn(3, 16000, device=META)
    loss, stats, weight = model(waves, torch.full((3,), 16000, device=META), speech_unpadded=True)
    assert loss.device == META and weight.device == META
