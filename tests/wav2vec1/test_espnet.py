"""wav2vec 1.0 in ESPnet: ``model: wav2vec1`` built by the SSL task from the mini config, a real
``espnet_ext.bin.ssl_train`` run whose ``checkpoints/<N>updates.pth`` load in the frontend, the
``wav2vec1`` frontend (checkpoints, reload after ESPnet's init, freezing counted in optimizer
updates, inside an ASR model with CTC), the stage-4 frame count, and the chance warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import yaml

import espnet_ext  # noqa: F401  (registry)
from espnet_ext.espnet.wav2vec1 import ChanceMonitor, ESPnetWav2Vec1Model, Wav2Vec1Frontend
from espnet_ext.wav2vec1.checkpoint import load_wav2vec1

ROOT = Path(__file__).resolve().parents[2]
SSL_CONFIG = ROOT / "egs2/mini/ssl1/conf/tuning/train_ssl_w2v1_tiny.yaml"
ASR_CONFIG = ROOT / "egs2/mini/asr1/conf/tuning/train_asr_w2v1_tiny_ctc.yaml"
TOKENS = ["<blank>", "<unk>", "a", "b", "c", "<sos/eos>"]


def batch(lengths=(16000, 11000)):
    generator = torch.Generator().manual_seed(1)
    speech = torch.randn(len(lengths), max(lengths), generator=generator) * 0.1
    return speech * (torch.arange(max(lengths)) < torch.tensor(lengths)[:, None]), torch.tensor(lengths)


def build_ssl(*extra: str) -> ESPnetWav2Vec1Model:
    from espnet_ext.espnet.tasks import SSLTask

    args = SSLTask.get_parser().parse_args(["--config", str(SSL_CONFIG), "--output_dir", "unused", *extra])
    SSLTask.check_required_command_args(args)  # no --token_list needed
    torch.manual_seed(0)
    model = SSLTask.build_model(args)
    assert SSLTask.build_preprocess_fn(args, train=True).tokenizer is None
    return model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("w2v1") / "100updates.pth"
    build_ssl().save_pretrained(path)
    return path


def test_ssl_task_builds_the_mini_config_and_steps():
    model = build_ssl()
    conf = yaml.safe_load(SSL_CONFIG.read_text())["model_conf"]
    assert isinstance(model, ESPnetWav2Vec1Model) and model.config.balanced_classes
    assert model.config.num_negatives == conf["config"]["num_negatives"] == 10
    assert not hasattr(model, "encoder")  # no ESPnet frontend / encoder / loss was built
    speech, lengths = batch()
    loss, stats, weight = model(speech, lengths, text=torch.zeros(2, 1), text_lengths=torch.ones(2))
    loss.backward()
    assert set(stats) == {"loss", "acc", "acc_k1", "acc_k12", "prob_pos", "prob_neg"}
    assert torch.allclose(loss.detach(), stats["loss"]) and 0 <= float(stats["acc"]) <= 1
    frames = [int(model.pretraining.backbone.output_lengths(n)) for n in lengths.tolist()]
    assert int(weight) == sum(max(0, t - 3 - k) for t in frames for k in range(12))  # the predictions
    assert model.pretraining.backbone.feature_extractor.conv_layers[0].conv.weight.grad.abs().sum() > 0


def test_bad_model_conf_is_named():
    with pytest.raises(ValueError, match=r"model_conf.config: unknown fields \['num_negative'\]"):
        ESPnetWav2Vec1Model(preset="tiny", config={"num_negative": 10})
    with pytest.raises(ValueError, match="preset: expected one of base, large, tiny"):
        ESPnetWav2Vec1Model(preset="huge")


def test_ssl_train_saves_update_checkpoints_the_frontend_loads(tmp_path, ssl_train, wav_dir):
    """What ssl1 stage 11 runs, on 12 utterances: 4 updates, a checkpoint every 2."""
    files = sorted((ROOT / "egs2/mini/corpus/en/wav").glob("*.flac"))
    train, valid = tmp_path / "train", tmp_path / "valid"
    wav_dir(train, files[:8])
    wav_dir(valid, files[8:12])
    exp = tmp_path / "exp"
    result = ssl_train(
        SSL_CONFIG,
        exp,
        train,
        valid,
        "--max_epoch",
        "1",
        "--batch_type",
        "unsorted",
        "--batch_size",
        "2",
        "--save_every_updates",
        "2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    saved = sorted(p.name for p in (exp / "checkpoints").iterdir())
    assert saved == ["2updates.pth", "4updates.pth"], saved
    assert "acc_k12=" in result.stderr  # the per-iteration log
    frontend = Wav2Vec1Frontend(path=str(exp / "checkpoints" / "4updates.pth")).eval()
    feats, frames = frontend(*batch())
    assert feats.shape[-1] == 64 and frames.tolist() == [98, 66]
    trained = torch.load(exp / "1epoch.pth", map_location="cpu", weights_only=True)
    assert int(trained["num_updates"]) == 4  # 8 utterances in batches of 2
    assert torch.equal(
        frontend.model.feature_extractor.conv_layers[0].conv.weight,
        trained["pretraining.backbone.feature_extractor.conv_layers.0.conv.weight"],
    )


# ---------------------------------------------------------------------------- the frontend
def test_frontend_loads_checkpoints_and_reloads_after_espnet_init(checkpoint):
    from espnet2.torch_utils.initialize import initialize

    loaded = load_wav2vec1(checkpoint)
    assert loaded.source_format == "espnet_ext" and set(loaded.predictor_state) == {"weight", "bias"}
    speech, lengths = batch()
    with torch.no_grad():
        expected = loaded.model(speech, lengths)
        context = Wav2Vec1Frontend(path=str(checkpoint)).eval()
        features = Wav2Vec1Frontend(path=str(checkpoint), output="features").eval()
        assert torch.allclose(context(speech, lengths)[0], expected.context, atol=1e-6)
        assert torch.allclose(features(speech, lengths)[0], expected.features, atol=1e-6)
        assert not any(p.requires_grad for p in features.model.feature_aggregator.parameters())  # not run
        holder = torch.nn.Module()
        holder.frontend = context
        initialize(holder, "xavier_uniform")  # ESPnet's init: then its reload hook
        assert torch.allclose(context(speech, lengths)[0], expected.context, atol=1e-6)


def test_backbone_only_export(tmp_path):
    model = ESPnetWav2Vec1Model(preset="tiny")
    model.save_pretrained(tmp_path / "backbone.pth", heads=False)
    loaded = load_wav2vec1(tmp_path / "backbone.pth")
    assert loaded.predictor_state == {} and loaded.config == model.config
    with pytest.raises(ValueError, match="expected a espnet_ext.wav2vec1 checkpoint"):
        torch.save({"weights": {}}, tmp_path / "other.pth")
        load_wav2vec1(tmp_path / "other.pth")


def test_frontend_bad_configuration_messages():
    with pytest.raises(ValueError, match="exactly one of path, preset or config; found none of them"):
        Wav2Vec1Frontend()
    with pytest.raises(ValueError, match="found path='a.pt', config"):
        Wav2Vec1Frontend(path="a.pt", config={})
    with pytest.raises(ValueError, match=r"wav2vec1 frontend: config: unknown fields \['layers'\]"):
        Wav2Vec1Frontend(config={"layers": 3})
    with pytest.raises(ValueError, match="output must be one of context, features"):
        Wav2Vec1Frontend(preset="tiny", output="hidden")
    with pytest.raises(ValueError, match="expected 16 kHz"):
        Wav2Vec1Frontend(preset="tiny", fs="8k")
    with pytest.raises(FileNotFoundError, match="no such wav2vec 1.0 checkpoint"):
        Wav2Vec1Frontend(path="/nonexistent.pth")


def test_freeze_counts_optimizer_updates():
    torch.manual_seed(0)
    frontend = Wav2Vec1Frontend(preset="tiny", freeze_finetune_updates=2)
    head = torch.nn.Linear(frontend.output_size(), 5)
    optimizer = torch.optim.SGD([*frontend.parameters(), *head.parameters()], lr=0.1)
    speech, lengths = batch()
    trained = []
    for _ in range(4):
        for _ in range(2):  # two accumulated micro-batches per update
            feats, _ = frontend(speech, lengths)
            head(feats).sum().backward()
        trained.append(frontend.model.feature_extractor.conv_layers[0].conv.weight.grad is not None)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    assert trained == [False, False, True, True] and int(frontend.num_updates) == 4


def test_in_an_espnet_asr_model_with_the_mini_config(checkpoint):
    """The mini CTC config with `path:` to a pre-training checkpoint: built by ASRTask, a training
    step runs and the wav2vec 1.0 network trains; the stage-4 filter counts its frames."""
    from espnet_ext.espnet.lengths import frames_from_dict
    from espnet_ext.espnet.tasks import ASRTask

    conf = yaml.safe_load(ASR_CONFIG.read_text())
    conf["frontend_conf"] = {**conf["frontend_conf"], "path": str(checkpoint)}
    del conf["frontend_conf"]["preset"]
    args = ASRTask.get_parser().parse_args(["--output_dir", "unused", "--token_list", "x"])
    for key, value in conf.items():
        setattr(args, key, value)
    args.token_list = list(TOKENS)
    model = ASRTask.build_model(args)
    speech, lengths = batch()
    loss, _, _ = model(speech, lengths, torch.tensor([[2, 3, 4], [4, 3, -1]]), torch.tensor([3, 2]))
    loss.backward()
    assert torch.isfinite(loss)
    assert model.frontend.model.feature_aggregator.conv_layers[0].conv.weight.grad.abs().sum() > 0
    frames = frames_from_dict(conf, "config")
    with torch.no_grad():
        encoded, encoded_lengths = model.encode(speech, lengths)
    assert encoded_lengths.tolist() == [frames(int(n)) for n in lengths] == [98, 66]


def test_chance_monitor_warns_while_the_loss_stays_at_chance(caplog):
    monitor = ChanceMonitor(chance=3.35, patience=4, every=1)
    with caplog.at_level(logging.WARNING):
        for _ in range(8):  # the first `patience` batches are never judged
            monitor.update_loss(torch.tensor(3.30))
    assert caplog.text == ""
    with caplog.at_level(logging.WARNING):
        monitor.update_loss(torch.tensor(3.30))  # 4 batches at chance after those
    assert "loss 3.300 at chance 3.350" in caplog.text
    caplog.clear()
    learning = ChanceMonitor(chance=3.35, patience=4, every=1)
    with caplog.at_level(logging.WARNING):
        for _ in range(12):
            learning.update_loss(torch.tensor(2.5))
    assert caplog.text == ""


def test_portable_conf_rebuilds_the_frontend_without_the_checkpoint(tmp_path):
    """``frontend_conf.config`` (what a packed model's config holds) builds the checkpoint's network;
    with the trained frontend's state dict it computes the same context, and the stage-4 frame
    count read from it equals the one read from the checkpoint."""
    from espnet_ext.espnet.lengths import wav2vec1_frontend_frames

    torch.manual_seed(0)
    ESPnetWav2Vec1Model(
        preset="tiny",
        config={"norm": "layer", "skip_connections_agg": True, "conv_aggregator_layers": [[64, 2, 1], [48, 3, 1]]},
    ).save_pretrained(tmp_path / "odd.pth")
    trained = Wav2Vec1Frontend(path=str(tmp_path / "odd.pth")).eval()
    conf = yaml.safe_load(yaml.safe_dump(trained.portable_conf()))
    assert set(conf) == {"config"} and conf["config"]["norm"] == "layer"
    assert wav2vec1_frontend_frames(12345, {"config": conf["config"]}) == wav2vec1_frontend_frames(
        12345, {"path": str(tmp_path / "odd.pth")}
    )
    (tmp_path / "odd.pth").unlink()
    rebuilt = Wav2Vec1Frontend(**conf).eval()
    assert rebuilt.output_size() == 48
    rebuilt.load_state_dict(trained.state_dict())
    speech, lengths = batch()
    with torch.no_grad():
        assert torch.equal(rebuilt(speech, lengths)[0], trained(speech, lengths)[0])
