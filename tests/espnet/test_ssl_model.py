"""wav2vec 2.0 pre-training as an ESPnet SSL model: built through SSLTask from model_conf, one
training step, the logged stats and weight, update counting (Gumbel temperature), checkpoints the
frontend loads, and the downsampling variant."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import espnet_ext  # noqa: F401  (registry)
from espnet_ext.espnet.registry import add_plugin
from espnet_ext.espnet.ssl_model import ESPnetWav2Vec2Model, Wav2Vec2TaskMixin, normalize_waveforms
from espnet_ext.espnet.updates import count_updates, updates_done
from espnet_ext.wav2vec2.importers import load_checkpoint
from espnet_ext.wav2vec2.pretraining import pretraining_from_checkpoint
from espnet_ext.wav2vec2.quantizer import gumbel_temperature

add_plugin("espnet2.tasks.ssl", "model_choices", "wav2vec2", "espnet_ext.espnet.ssl_model:ESPnetWav2Vec2Model")

from espnet2.tasks.ssl import SSLTask as ESPnetSSLTask  # noqa: E402

from espnet_ext.espnet.trainer import Trainer  # noqa: E402


class SSLTask(Wav2Vec2TaskMixin, ESPnetSSLTask):
    """What ``espnet_ext.espnet.tasks.SSLTask`` is."""

    trainer = Trainer


STATS = {"loss", "loss_m", "loss_d", "feature_pen", "code_ppl", "prob_ppl", "acc", "sim_pos", "sim_neg", "temp"}


pytestmark = pytest.mark.usefixtures("one_thread")


def build(*extra: str) -> ESPnetWav2Vec2Model:
    args = SSLTask.get_parser().parse_args(["--output_dir", "unused", "--model", "wav2vec2", *extra])
    SSLTask.check_required_command_args(args)  # no --token_list needed
    torch.manual_seed(0)
    return SSLTask.build_model(args)


def batch(lengths=(16000, 12000)):
    generator = torch.Generator().manual_seed(1)
    speech = torch.randn(len(lengths), max(lengths), generator=generator) * 0.1
    for i, n in enumerate(lengths):
        speech[i, n:] = 0
    return speech, torch.tensor(lengths)


def test_built_through_ssltask_and_one_training_step():
    model = build("--model_conf", "preset=tiny", "--model_conf", "config={num_negatives: 20}")
    assert isinstance(model, ESPnetWav2Vec2Model) and model.config.num_negatives == 20
    assert not hasattr(model, "encoder")  # no ESPnet encoder / frontend / loss was built
    speech, lengths = batch()
    loss, stats, weight = model(speech, lengths, text=torch.zeros(2, 1), text_lengths=torch.ones(2))
    loss.backward()
    assert set(stats) == STATS and all(v.numel() == 1 and torch.isfinite(v).all() for v in stats.values())
    assert torch.allclose(loss.detach(), stats["loss"])
    assert abs(float(stats["loss_m"]) - math.log(21)) < 0.2 * math.log(21)
    assert float(stats["temp"]) == 2.0 and 0 <= float(stats["acc"]) <= 1  # at chance (1/21) at init: 0 happens
    assert int(weight) > 0  # masked frames: the sample size ESPnet weights the stats with
    backbone = model.pretraining.backbone
    assert backbone.feature_extractor.conv_layers[0].conv.weight.grad.abs().sum() > 0
    assert model.pretraining.quantizer.weight_proj.weight.grad.abs().sum() > 0
    assert (
        SSLTask.build_preprocess_fn(
            SSLTask.get_parser().parse_args(["--output_dir", "x", "--model", "wav2vec2"]), train=True
        ).tokenizer
        is None
    )


def test_gumbel_temperature_follows_optimizer_updates_not_forward_calls():
    model = build(
        "--model_conf", "preset=tiny", "--model_conf", "config={num_negatives: 5, latent_temp: [2.0, 0.5, 0.9]}"
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
    speech, lengths = batch((8000, 8000))
    for _ in range(3):  # three updates ...
        for _ in range(2):  # ... of two accumulated micro-batches each
            model(speech, lengths)[0].backward()
        optimizer.step()
        optimizer.zero_grad()
    with torch.no_grad():  # validation: counts nothing
        model.eval()
        _, stats, _ = model(speech, lengths)
    assert updates_done(model) == 3
    assert float(stats["temp"]) == pytest.approx(gumbel_temperature(3, 2.0, 0.5, 0.9))
    torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1).step()  # another model's optimizer
    assert updates_done(model) == 3
    restored = build("--model_conf", "preset=tiny")
    restored.load_state_dict(model.state_dict())  # the count is in checkpoints (resume)
    assert updates_done(restored) == 3


def test_count_updates_helper():
    module = count_updates(torch.nn.Linear(3, 1))
    assert count_updates(module) is module and module.num_updates.dtype == torch.long
    optimizer = torch.optim.Adam(module.parameters())
    module(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    assert updates_done(module) == 1
    bad = torch.nn.Linear(1, 1)
    bad.num_updates = 3
    with pytest.raises(ValueError, match="expected a 0-dim long buffer"):
        count_updates(bad)


def test_save_pretrained_is_loaded_by_the_frontend_loader(tmp_path):
    model = build("--model_conf", "preset=tiny").eval()
    model.save_pretrained(tmp_path / "100updates.pth")
    backbone, config, info = load_checkpoint(tmp_path / "100updates.pth")
    assert config == model.config
    speech, lengths = batch()
    with torch.no_grad():
        expected = model.pretraining.backbone(speech, lengths).last_hidden_state
        assert torch.allclose(backbone(speech, lengths).last_hidden_state, expected, atol=1e-6)
    resumed = pretraining_from_checkpoint(tmp_path / "100updates.pth")
    assert torch.equal(resumed.quantizer.vars, model.pretraining.quantizer.vars)


def test_downsampling_variant_and_waveform_normalisation():
    model = build(
        "--model_conf",
        "preset=tiny",
        "--model_conf",
        "config={encoder_layers: 0}",
        "--model_conf",
        "context={num_encoder_layers: 1, num_decoder_layers: 1, downsample_rate: 0.7}",
        "--model_conf",
        "normalize_waveform=true",
    )
    speech, lengths = batch()
    loss, stats, weight = model(speech, lengths)
    loss.backward()
    assert torch.isfinite(loss).all() and int(weight) > 0
    assert model.pretraining.context_network.decoder_layers[0].cross_attention is not None
    normalized = normalize_waveforms(speech, lengths)
    assert torch.allclose(normalized[1, :12000].mean(), torch.tensor(0.0), atol=1e-5)
    assert torch.allclose(normalized[1, :12000].std(unbiased=False), torch.tensor(1.0), atol=1e-3)
    assert bool((normalized[1, 12000:] == 0).all())


@pytest.mark.parametrize("heads", [True, False])
def test_downsampling_checkpoint_fine_tunes_through_frontend_and_context_encoder(tmp_path, heads):
    """ssl1 with model_conf.context -> checkpoint -> wav2vec2 frontend + w2v2_context encoder on the
    same file compute exactly the pre-trained context network's output; ESPnet's init is undone."""
    from espnet2.torch_utils.initialize import initialize

    from espnet_ext.espnet.encoders import W2V2ContextEncoder
    from espnet_ext.espnet.frontend import Wav2Vec2Frontend
    from espnet_ext.espnet.lengths import context_encoder_length
    from espnet_ext.wav2vec2.downsample import make_padding_mask

    model = build(
        "--model_conf",
        "preset=tiny",
        "--model_conf",
        "config={encoder_layers: 0}",
        "--model_conf",
        "context={num_encoder_layers: 1, num_decoder_layers: 1, downsample_rate: 0.6, "
        "conv_ffn: true, pos_conv_kernel: 0}",
    ).eval()
    path = tmp_path / "200updates.pth"
    model.save_pretrained(path, heads=heads)
    speech, lengths = batch()
    with torch.no_grad():
        out = model.pretraining.backbone(speech, lengths)
        expected = model.pretraining.context_network(out.last_hidden_state, out.padding_mask)
    frontend = Wav2Vec2Frontend(path=str(path)).eval()
    encoder = W2V2ContextEncoder(frontend.output_size(), output_size=999, num_encoder_blocks=5, path=str(path)).eval()
    assert len(encoder.context.decoder_layers) == 1 and encoder.output_size() == 64  # from the checkpoint
    holder = torch.nn.Module()
    holder.frontend, holder.encoder = frontend, encoder
    before = encoder.context.decoder_layers[0].cross_attention.q_proj.weight.clone()
    initialize(holder, "xavier_uniform")  # ESPnet's init, then the reload hooks it calls
    assert torch.equal(encoder.context.decoder_layers[0].cross_attention.q_proj.weight, before)
    with torch.no_grad():
        feats, feat_lengths = frontend(speech, lengths)
        hidden, hidden_lengths, _ = encoder(feats, feat_lengths)
    valid = ~make_padding_mask(hidden_lengths, hidden.size(1))
    assert torch.equal(hidden_lengths, expected.lengths)
    assert torch.allclose(hidden[valid], expected.output[valid], atol=1e-5)
    assert context_encoder_length(50, {"path": str(path)}) == 30  # the checkpoint's rate 0.6
    with pytest.raises(ValueError, match="no downsampling context network"):
        plain = build("--model_conf", "preset=tiny").eval()
        plain.save_pretrained(tmp_path / "plain.pth")
        W2V2ContextEncoder(64, path=str(tmp_path / "plain.pth"))


def test_other_ssl_models_are_still_built_by_espnet():
    """The mixin changes nothing for ESPnet's own HuBERT model (``model: espnet``)."""
    from espnet2.ssl.espnet_model import ESPnetSSLModel

    args = SSLTask.get_parser().parse_args(
        [
            "--output_dir",
            "x",
            "--token_type",
            "char",
            "--preencoder_conf",
            "output_size=16",
            "--frontend_conf",
            "norm_mode=group_norm",
            "--frontend_conf",
            "conv_mode=standard",
            "--frontend_conf",
            "bias=false",
            "--encoder_conf",
            "output_size=16",
            "--encoder_conf",
            "linear_units=16",
            "--encoder_conf",
            "num_blocks=1",
            "--encoder_conf",
            "attention_heads=2",
        ]
    )
    args.token_list = ["<blank>", "<unk>", "a", "b"]
    args.loss = [{"name": "hubert", "conf": {"num_classes": 4, "final_dim": 8}}]
    assert isinstance(SSLTask.build_model(args), ESPnetSSLModel)
    assert SSLTask.build_preprocess_fn(args, train=True).tokenizer is not None


def test_bad_model_conf_is_named():
    with pytest.raises(ValueError, match=r"unknown fields \['num_negative'\]"):
        ESPnetWav2Vec2Model(preset="tiny", config={"num_negative": 10})
    with pytest.raises(ValueError, match="preset: expected one of"):
        ESPnetWav2Vec2Model(preset="huge")


def test_collapse_monitor_warns_after_patience(caplog):
    import logging
    import math

    from espnet_ext.espnet.ssl_model import CollapseMonitor

    monitor = CollapseMonitor(num_vars=640, num_negatives=100, ppl_fraction=0.1, patience=20, every=5)
    good, chance = torch.tensor(300.0), torch.tensor(math.log(101))
    with caplog.at_level(logging.WARNING):
        for _ in range(30):
            monitor.update(good, torch.tensor(1.0))
        assert not caplog.records
        for _ in range(19):  # collapsed, not yet for `patience` batches
            monitor.update(torch.tensor(10.0), torch.tensor(1.0))
        assert not caplog.records
        for _ in range(6):
            monitor.update(torch.tensor(10.0), torch.tensor(1.0))
        assert any("codebook collapse" in r.getMessage() for r in caplog.records)
        caplog.clear()
        for _ in range(40):
            monitor.update(good, chance)
        assert any("at chance" in r.getMessage() for r in caplog.records)
        assert not any("collapse" in r.getMessage() for r in caplog.records)


def test_max_sample_size_crops_training_batches_to_random_windows():
    from espnet_ext.espnet.ssl_model import MaxSampleCrop

    ramp = torch.arange(30, dtype=torch.float).repeat(3, 1)  # each sample holds its index
    crop = MaxSampleCrop(
        lambda data: (data, {"speech": ramp.clone(), "speech_lengths": torch.tensor([30, 30, 8])}), max_samples=10
    )
    torch.manual_seed(0)
    starts = set()
    for _ in range(50):
        _, batch = crop(["a", "b", "c"])
        assert batch["speech"].shape == (3, 10)
        assert batch["speech_lengths"].tolist() == [10, 10, 8]
        for row in batch["speech"][:2]:  # contiguous windows inside the utterance
            assert torch.equal(row, torch.arange(10, dtype=torch.float) + row[0]) and 0 <= row[0] <= 20
            starts.add(int(row[0]))
        assert torch.equal(batch["speech"][2], torch.arange(10, dtype=torch.float))  # short: kept whole
    assert len(starts) > 10  # offsets vary
    with pytest.raises(ValueError, match="max_sample_size"):
        MaxSampleCrop(None, 0)
    args = SSLTask.get_parser().parse_args(
        ["--output_dir", "x", "--model", "wav2vec2", "--collate_fn_conf", "max_sample_size=16000"]
    )
    assert isinstance(SSLTask.build_collate_fn(args, train=True), MaxSampleCrop)
    assert not isinstance(SSLTask.build_collate_fn(args, train=False), MaxSampleCrop)


def test_normalize_flag_is_saved_with_the_backbone(tmp_path):
    for flag in ("true", "false"):
        model = build("--model_conf", "preset=tiny", "--model_conf", f"normalize_waveform={flag}")
        model.save_pretrained(tmp_path / f"{flag}.pth")
        assert load_checkpoint(tmp_path / f"{flag}.pth").info.normalize is (flag == "true")


def _ssl_args(*extra):
    return SSLTask.get_parser().parse_args(
        ["--output_dir", "x", "--model", "wav2vec2", "--model_conf", "preset=tiny", *extra]
    )


def test_waveforms_are_normalized_over_whole_utterances_before_cropping(monkeypatch):
    """fairseq normalizes each file (RawAudioDataset.postprocess) before the collater crops it:
    the model sees windows of whole-utterance-normalized audio, not re-normalized windows."""
    from espnet_ext.espnet import ssl_model
    from espnet_ext.espnet.ssl_model import NormalizeWholeUtterances

    rng = np.random.default_rng(0)
    data = []
    for i, n in enumerate((1200, 900, 700)):  # loud first half, quiet second half, an offset
        x = rng.standard_normal(n) * np.where(np.arange(n) < n // 2, 3.0, 0.2) + 0.5
        data.append((f"u{i}", {"speech": x.astype(np.float32)}))
    whole = [(x["speech"] - x["speech"].mean()) / np.sqrt(x["speech"].var() + 1e-5) for _, x in data]
    args = _ssl_args(
        "--model_conf",
        "normalize_waveform=true",
        "--collate_fn_conf",
        "crop_audio=true",
        "--collate_fn_conf",
        "max_sample_size=400",
    )
    collate = SSLTask.build_collate_fn(args, train=True)
    np.random.seed(0)
    torch.manual_seed(0)
    _, batch = collate(data)
    assert batch["speech_normalized"] is True and batch["speech"].shape == (3, 400)
    for row, full in zip(batch["speech"].numpy(), whole):
        windows = np.lib.stride_tricks.sliding_window_view(full, 400)
        assert np.abs(windows - row).max(axis=1).min() < 1e-5  # a window of the normalized file
        assert abs(row.mean()) > 1e-3 or abs(row.std() - 1) > 1e-3  # not re-normalized
    _, valid = SSLTask.build_collate_fn(args, train=False)(data)  # validation: whole, not cropped
    np.testing.assert_allclose(valid["speech"][2, :700].numpy(), whole[2], atol=1e-5)
    assert not isinstance(SSLTask.build_collate_fn(_ssl_args(), train=True), NormalizeWholeUtterances)
    # the model does not normalize a batch marked as normalized, and does one that is not
    calls = []
    real = ssl_model.normalize_waveforms
    monkeypatch.setattr(ssl_model, "normalize_waveforms", lambda *a: calls.append(1) or real(*a))
    model = build("--model_conf", "preset=tiny", "--model_conf", "normalize_waveform=true")
    model(batch["speech"], batch["speech_lengths"], speech_normalized=True)
    assert calls == []
    model(batch["speech"], batch["speech_lengths"])
    assert calls == [1]


def test_context_encoder_portable_conf_rebuilds_it_without_the_checkpoint(tmp_path):
    """``w2v2_context`` from ``context`` (its portable_conf, what a packed config holds) is the
    network ``path`` loads; with the trained state dict, the same output; the frame count reads its rate."""
    import yaml

    from espnet_ext.espnet.encoders import W2V2ContextEncoder
    from espnet_ext.espnet.lengths import context_encoder_length

    model = build(
        "--model_conf",
        "preset=tiny",
        "--model_conf",
        "config={encoder_layers: 0}",
        "--model_conf",
        "context={num_encoder_layers: 1, num_decoder_layers: 1, downsample_rate: 0.6, "
        "conv_ffn: true, pos_conv_kernel: 0}",
    ).eval()
    path = tmp_path / "200updates.pth"
    model.save_pretrained(path)
    trained = W2V2ContextEncoder(64, dropout_rate=0.0, path=str(path)).eval()
    conf = yaml.safe_load(yaml.safe_dump(trained.portable_conf()))
    assert set(conf) == {"context"} and conf["context"]["downsample_rate"] == 0.6
    path.unlink()
    rebuilt = W2V2ContextEncoder(64, dropout_rate=0.0, **conf).eval()
    rebuilt.load_state_dict(trained.state_dict())
    feats, lengths = torch.randn(2, 20, 64), torch.tensor([20, 13])
    with torch.no_grad():
        expected, expected_lengths, _ = trained(feats, lengths)
        output, output_lengths, _ = rebuilt(feats, lengths)
    assert torch.equal(output_lengths, expected_lengths) and torch.equal(output, expected)
    assert context_encoder_length(50, conf) == 30
    with pytest.raises(ValueError, match="give path or context, not both"):
        W2V2ContextEncoder(64, path="x.pth", **conf)
    with pytest.raises(ValueError, match="context holds a context network of width 64; found input_size 32"):
        W2V2ContextEncoder(32, **conf)
