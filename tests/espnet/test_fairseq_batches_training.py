"""--fairseq_batches in a real pre-training run (python -m espnet_ext.bin.ssl_train, the tiny
model, 8 mini-corpus utterances): the trainer makes one update per batch of the sampler."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from espnet_ext.data.batches import fairseq_batches
from espnet_ext.report.plan import numel_batches

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "egs2/mini/ssl1/conf/tuning/train_ssl_w2v2_tiny.yaml"


def test_ssl_train_updates_once_per_fairseq_batch(tmp_path, ssl_train, wav_dir):
    files = sorted((ROOT / "egs2/mini/corpus/en/wav").glob("*.flac"))
    lengths = wav_dir(tmp_path / "train", files[:8])
    wav_dir(tmp_path / "valid", files[8:10])
    conf = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    conf.update(batch_type="numel", batch_bins=64000, accum_grad=1, max_epoch=1, num_iters_per_epoch=None,
                fairseq_batches=True, collate_fn_conf=dict(conf.get("collate_fn_conf") or {}, max_sample_size=16000))
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
