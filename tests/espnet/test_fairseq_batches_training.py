"""--fairseq_batches in a real pre-training run (python -m espnet_ext.bin.ssl_train, the tiny
model, 8 mini-corpus utterances): the trainer makes one update per batch of the sampler."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from espnet_ext.data.batches import fairseq_batches
from espnet_ext.data.sampling import numel_batches

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "egs2/mini/ssl1/conf/tuning/train_ssl_w2v2_tiny.yaml"


def test_ssl_train_updates_once_per_fairseq_batch(tmp_path, ssl_train, wav_dir):
    files = sorted((ROOT / "egs2/mini/corpus/en/wav").glob("*.flac"))
    lengths = wav_dir(tmp_path / "train", files[:8])
    wav_dir(tmp_path / "valid", files[8:10])
    conf = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    conf.update(
        batch_type="numel",
        batch_bins=64000,
        accum_grad=1,
        max_epoch=1,
        num_iters_per_epoch=None,
        fairseq_batches=True,
        collate_fn_conf=dict(conf.get("collate_fn_conf") or {}, max_sample_size=16000),
    )
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(conf), encoding="utf-8")
    # 16 k-sample crops: 4 x 16 k fit 64 k, so two batches; numel (uncropped lengths) makes three
    expected = fairseq_batches(lengths, 64000, 16000)
    assert len(expected) == 2 and len(numel_batches(lengths, 64000)) == 3
    exp = tmp_path / "exp"
    result = ssl_train(config, exp, tmp_path / "train", tmp_path / "valid")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "FairseqBatchSampler(N-batch=2, batch_bins=64000, max_sample_size=16000" in result.stderr
    trained = torch.load(exp / "1epoch.pth", map_location="cpu", weights_only=True)
    assert int(trained["num_updates"]) == 2


def test_asr_train_batches_audio_alone_under_the_ceiling(tmp_path, wav_dir, venv_env):
    """Fine-tuning (asr1 stage 11's command, the tiny wav2vec 2.0 CTC config): uncropped lengths,
    labels not counted; the 8 utterances make 4 batches under 64 k samples (numel: 3)."""
    import subprocess
    import sys

    files = sorted((ROOT / "egs2/mini/corpus/en/wav").glob("*.flac"))[:10]
    transcripts = dict(line.split(maxsplit=1) for line in (ROOT / "egs2/mini/corpus/en/text").read_text().splitlines())
    lengths = wav_dir(tmp_path / "train", files[:8])
    wav_dir(tmp_path / "valid", files[8:])
    for name, subset in (("train", files[:8]), ("valid", files[8:])):
        (tmp_path / name / "text").write_text("".join(f"{f.stem} {transcripts[f.stem]}\n" for f in subset))
    tokens = sorted({c for f in files for c in transcripts[f.stem] if c != " "})
    (tmp_path / "tokens.txt").write_text("\n".join(["<blank>", "<unk>", "<space>", *tokens, "<sos/eos>"]) + "\n")
    assert [len(b) for b in fairseq_batches(lengths, 64000)] == [2, 2, 3, 1]
    assert len(numel_batches(lengths, 64000)) == 3
    command = [
        sys.executable,
        "-m",
        "espnet_ext.bin.asr_train",
        "--config",
        str(ROOT / "egs2/mini/asr1/conf/tuning/train_asr_w2v2_tiny_ctc.yaml"),
        "--max_epoch",
        "1",
        "--output_dir",
        str(tmp_path / "exp"),
        "--use_preprocessor",
        "true",
        "--token_type",
        "char",
        "--token_list",
        str(tmp_path / "tokens.txt"),
        "--ngpu",
        "0",
        "--num_att_plot",
        "0",
        "--batch_type",
        "numel",
        "--batch_bins",
        "64000",
        "--fairseq_batches",
        "true",
    ]
    for name in ("train", "valid"):
        data = tmp_path / name
        command += [
            f"--{name}_data_path_and_name_and_type",
            f"{data}/wav.scp,speech,sound",
            f"--{name}_data_path_and_name_and_type",
            f"{data}/text,text,text",
            f"--{name}_shape_file",
            f"{data}/speech_shape",
        ]
    result = subprocess.run(command, capture_output=True, text=True, env=venv_env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "FairseqBatchSampler(N-batch=4, batch_bins=64000, max_sample_size=None" in result.stderr
    assert "[train] mini-batch sizes summary: N-batch=4, mean=2.0, min=1, max=3" in result.stderr
