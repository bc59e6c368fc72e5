"""--fairseq_batches in a real pre-training run (python -m espnet_ext.bin.ssl_train, the tiny
model, 8 mini-corpus utterances): the trainer makes one update per batch of the sampler."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import soundfile as sf
import torch
import yaml

from espnet_ext.data.batches import fairseq_batches
from espnet_ext.report.plan import numel_batches

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "egs2/mini/ssl1/conf/tuning/train_ssl_w2v2_tiny.yaml"


def write_data(directory: Path, files) -> list:
    directory.mkdir(parents=True)
    lengths = [sf.info(str(f)).frames for f in files]
    with open(directory / "wav.scp", "w") as scp, open(directory / "speech_shape", "w") as shape:
        for f, n in zip(files, lengths):
            scp.write(f"{f.stem} {f}\n")
            shape.write(f"{f.stem} {n}\n")
    return lengths


def test_ssl_train_updates_once_per_fairseq_batch(tmp_path, venv_env):
    files = sorted((ROOT / "egs2/mini/corpus/en/wav").glob("*.flac"))
    lengths = write_data(tmp_path / "train", files[:8])
    write_data(tmp_path / "valid", files[8:10])
    conf = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    conf.update(batch_type="numel", batch_bins=64000, accum_grad=1, max_epoch=1, num_iters_per_epoch=None,
                fairseq_batches=True, collate_fn_conf=dict(conf.get("collate_fn_conf") or {}, max_sample_size=16000))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(conf), encoding="utf-8")
    # 16 k-sample crops: 4 x 16 k fit 64 k, so two batches; numel (uncropped lengths) makes three
    expected = fairseq_batches(lengths, 64000, 16000)
    assert len(expected) == 2 and len(numel_batches(lengths, 64000)) == 3
    exp = tmp_path / "exp"
    train, valid = tmp_path / "train", tmp_path / "valid"
    command = [sys.executable, "-m", "espnet_ext.bin.ssl_train", "--config", str(config), "--output_dir", str(exp),
               "--use_preprocessor", "true", "--ngpu", "0", "--log_interval", "1",
               "--train_data_path_and_name_and_type", f"{train}/wav.scp,speech,sound",
               "--train_shape_file", f"{train}/speech_shape",
               "--valid_data_path_and_name_and_type", f"{valid}/wav.scp,speech,sound",
               "--valid_shape_file", f"{valid}/speech_shape"]
    result = subprocess.run(command, capture_output=True, text=True, env=venv_env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "FairseqBatchSampler(N-batch=2, batch_bins=64000, max_sample_size=16000" in result.stderr
    trained = torch.load(exp / "1epoch.pth", map_location="cpu", weights_only=True)
    assert int(trained["num_updates"]) == 2
