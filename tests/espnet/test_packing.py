"""Packing (``python -m espnet_ext.bin.pack``): a model fine-tuned from a checkpoint packs into a zip
whose config builds the frontend from the recorded architecture, so that it loads and computes the
same outputs after the checkpoint is gone; what packing refuses, and that it replaces the zip
atomically. The recipe-level checks (a real training, another process and directory) are in
``tests/egs2/test_mini_asr1.py`` and ``tests/egs2/test_ravdess_cls1.py``."""

from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import espnet_ext  # noqa: F401  (registry)
from espnet_ext.bin.pack import main as pack_cli
from espnet_ext.espnet.packing import TRAINING_ONLY_KEYS, foreign_paths, pack_model
from espnet_ext.espnet.portable import RECORD_KEY
from espnet_ext.wav2vec2.importers import save_backbone
from espnet_ext.wav2vec2.model import wav2vec2_model
from espnet_ext.wav2vec2.presets import preset_config

TOKENS = ["<blank>", "<unk>", "a", "b", "c", "<sos/eos>"]
EXP = Path("exp/asr_x")
MODEL = EXP / "valid.loss.ave.pth"
STATS = Path("exp/stats/feats_stats.npz")

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    """A pre-training checkpoint outside the recipe dir, of an architecture no preset has, pre-trained
    on normalised waveforms."""
    architecture = dataclasses.replace(
        preset_config("tiny"), encoder_layers=1, layer_norm_first=False, conv_pos=8, conv_pos_groups=2
    )
    torch.manual_seed(0)
    path = tmp_path / "ssl" / "checkpoints" / "100updates.pth"
    save_backbone(wav2vec2_model(architecture), architecture, path, normalize=True)
    return path


def train(recipe: Path, checkpoint: Path, *extra: str, stats: Path = STATS):
    """What stage 11 leaves in ``recipe`` (the working directory): ``exp/asr_x/config.yaml`` (as
    ESPnet writes it, after building the model) and a model file whose weights differ from the
    checkpoint's; global_mvn statistics. Returns the model."""
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    from espnet_ext.espnet.tasks import ASRTask

    stats.parent.mkdir(parents=True)
    np.savez(stats, count=np.array(100), sum=np.full(64, 3.0), sum_square=np.full(64, 200.0))
    args = ASRTask.get_parser().parse_args(
        [
            "--output_dir",
            str(EXP),
            "--token_list",
            "x",
            "--frontend",
            "wav2vec2",
            "--frontend_conf",
            "preset=null",
            "--frontend_conf",
            f"path={checkpoint}",
            "--frontend_conf",
            "dropout=0.0",
            "--encoder",
            "w2v2_light",
            "--normalize",
            "global_mvn",
            "--normalize_conf",
            f"stats_file={stats}",
            "--model_conf",
            "ctc_weight=1.0",
            "--train_data_path_and_name_and_type",
            "/data/train/wav.scp,speech,sound",
            *extra,
        ]
    )
    args.token_list = TOKENS
    torch.manual_seed(1)
    model = ASRTask.build_model(args)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    EXP.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), MODEL)
    (EXP / "RESULTS.md").write_text("# RESULTS\n")
    with open(EXP / "config.yaml", "w", encoding="utf-8") as f:
        yaml_no_alias_safe_dump(vars(args), f, indent=4, sort_keys=False)
    return model.eval()


@pytest.fixture
def recipe(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "recipe"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


def pack(*options: str, out: str = str(EXP / "packed_model.zip")) -> int:
    return pack_cli(
        [
            "asr",
            "--asr_train_config",
            str(EXP / "config.yaml"),
            "--asr_model_file",
            str(MODEL),
            "--option",
            str(STATS),
            "--option",
            str(EXP / "RESULTS.md"),
            *options,
            "--outpath",
            out,
        ]
    )


def packed_config(zip_path) -> dict:
    with zipfile.ZipFile(zip_path) as archive:
        return yaml.safe_load(archive.read(str(EXP / "config.yaml")))


def encode(model, speech, lengths):
    with torch.no_grad():
        return model.encode(speech, lengths)[0]


def test_packed_model_loads_without_the_checkpoint_and_encodes_the_same(recipe, checkpoint, tmp_path):
    from espnet2.tasks.asr import ASRTask as ESPnetASRTask
    from espnet_model_zoo.downloader import ModelDownloader

    trained = train(recipe, checkpoint)
    recorded = yaml.safe_load((EXP / "config.yaml").read_text())
    assert recorded["frontend_conf"]["path"] == str(checkpoint)  # what it was fine-tuned from stays
    assert recorded[RECORD_KEY]["frontend_conf"]["normalize_waveform"] is True
    assert pack() == 0
    assert sorted(os.listdir(EXP)) == ["RESULTS.md", "config.yaml", "packed_model.zip", "valid.loss.ave.pth"]
    with zipfile.ZipFile(EXP / "packed_model.zip") as archive:
        assert sorted(archive.namelist()) == sorted(
            ["meta.yaml", str(EXP / "config.yaml"), str(MODEL), str(STATS), str(EXP / "RESULTS.md")]
        )
        text = archive.read(str(EXP / "config.yaml")).decode()
        names = archive.namelist()
    config = packed_config(EXP / "packed_model.zip")
    frontend = config["frontend_conf"]
    assert not {"path", "preset", "allow_unsafe"} & set(frontend) and RECORD_KEY not in config
    assert frontend["config"]["encoder_layers"] == 1 and frontend["config"]["layer_norm_first"] is False
    assert (frontend["normalize_waveform"], frontend["dropout"]) == (True, 0.0)
    assert config["normalize_conf"]["stats_file"] == str(STATS)
    assert str(checkpoint.parent) not in text
    # the files of this machine the packed config names: training's only (data, output dir)
    training_only = {key.split(".")[0] for key, _ in foreign_paths(config, names)}
    assert "train_data_path_and_name_and_type" in training_only and training_only <= TRAINING_ONLY_KEYS

    checkpoint.rename(tmp_path / "moved.pth")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.replace(EXP / "packed_model.zip", elsewhere / "model.zip")
    os.chdir(elsewhere)
    unpacked = ModelDownloader(str(elsewhere / "cache")).unpack_local_file(str(elsewhere / "model.zip"))
    model, args = ESPnetASRTask.build_model_from_file(unpacked["asr_train_config"], unpacked["asr_model_file"])
    assert args.normalize_conf["stats_file"].startswith(str(elsewhere / "cache"))
    speech = torch.randn(2, 16000) * 0.1
    lengths = torch.tensor([16000, 9000])
    assert torch.equal(encode(model.eval(), speech, lengths), encode(trained, speech, lengths))


def test_an_experiment_without_the_record_packs_from_the_checkpoint_while_it_is_there(
    recipe, checkpoint, tmp_path, caplog
):
    """A training that predates the record: the architecture is read from the checkpoint; once the
    checkpoint is gone, packing stops with a message naming it, and the zip already there stays."""
    train(recipe, checkpoint)
    assert pack(out="with_record.zip") == 0
    config = yaml.safe_load((EXP / "config.yaml").read_text())
    del config[RECORD_KEY]
    (EXP / "config.yaml").write_text(yaml.safe_dump(config))
    assert pack() == 0
    assert packed_config(EXP / "packed_model.zip") == packed_config("with_record.zip")
    before = (EXP / "packed_model.zip").read_bytes()
    checkpoint.rename(tmp_path / "moved.pth")
    with caplog.at_level("ERROR"):
        assert pack() == 1
    assert f"frontend_conf.path={str(checkpoint)!r}, which the packed model cannot carry" in caplog.text
    assert f"(not found: {checkpoint})" in caplog.text
    assert (EXP / "packed_model.zip").read_bytes() == before
    assert not [p for p in EXP.iterdir() if ".tmp" in p.name]


def test_paths_inference_reads_must_be_packed(recipe, checkpoint, tmp_path, caplog):
    """An absolute path (here the statistics) in an option inference reads: refused unless packed
    with --option, which makes it the file's name in the zip."""
    stats = tmp_path / "elsewhere" / "feats_stats.npz"
    train(recipe, checkpoint, stats=stats)
    with caplog.at_level("ERROR"):
        assert (
            pack_cli(
                [
                    "asr",
                    "--asr_train_config",
                    str(EXP / "config.yaml"),
                    "--asr_model_file",
                    str(MODEL),
                    "--outpath",
                    "a.zip",
                ]
            )
            == 1
        )
    assert f"found normalize_conf.stats_file: {stats} (pack the file with --option" in caplog.text
    assert not Path("a.zip").exists()
    assert (
        pack_cli(
            [
                "asr",
                "--asr_train_config",
                str(EXP / "config.yaml"),
                "--asr_model_file",
                str(MODEL),
                "--option",
                str(stats),
                "--outpath",
                "a.zip",
            ]
        )
        == 0
    )
    name = str(stats.resolve()).lstrip("/")
    assert packed_config("a.zip")["normalize_conf"]["stats_file"] == name
    assert name in zipfile.ZipFile("a.zip").namelist()


def test_a_record_that_does_not_build_the_trained_model_is_refused(recipe, checkpoint):
    train(recipe, checkpoint)
    config = yaml.safe_load((EXP / "config.yaml").read_text())
    config[RECORD_KEY]["frontend_conf"]["config"]["encoder_layers"] = 2
    (EXP / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(
        ValueError,
        match=r"config.yaml: the packed config does not build the model of "
        r"exp/asr_x/valid.loss.ave.pth: (?s:.*)Missing key\(s\) in state_dict: "
        r'"frontend.model.encoder.layers.1.attention',
    ):
        pack_model({"asr_train_config": EXP / "config.yaml"}, {"asr_model_file": MODEL}, "b.zip", [STATS])
