"""ssl_report: the pre-training report from a synthetic experiment (checkpoint.pth, train.log, config.yaml).

The real short pre-training of tests/egs2/test_compare_checkpoints.py is reported there too.
"""

from __future__ import annotations

import datetime
import math
import os
import time

import numpy as np
import pytest
import torch
import yaml

from espnet_ext.bin.ssl_report import main
from espnet_ext.report import ssl as report
from espnet_ext.wav2vec2.presets import preset_config

K = 9  # distractors: chance L_m = log(10)


def epoch_line(epoch: int, train: dict, valid: dict) -> str:
    def pairs(values):
        return ", ".join(f"{k}={v}" for k, v in values.items())

    return (
        f"[vm] 2026-11-22 04:43:49,845 (trainer:394) INFO: {epoch}epoch results: [train] {pairs(train)}, "
        f"time=1 minute and 2.5 seconds, total_count={4 * epoch}, [valid] {pairs(valid)}, time=0.46 seconds, "
        f"total_count={2 * epoch}, [att_plot] time=2.19 seconds, total_count=0"
    )


LOG = "\n".join(
    [
        "# python3 -m espnet_ext.bin.ssl_train ...",
        # ESPnet sometimes writes no ", " before a value: both forms must parse
        "[vm] x (trainer:811) INFO: 1epoch:train:1-2batch: iter_time=0.06, loss=5.0loss_m=2.5, code_ppl=20.0, "
        "optim0_lr0=1.000e-04",
        "[vm] x (trainer:811) INFO: 1epoch:train:3-4batch: loss=4.0, loss_m=2.4, code_ppl=21.0optim0_lr0=2.000e-04",
        epoch_line(1, {"loss": 9.0, "loss_m": 9.0}, {"loss": 9.0}),  # replaced by checkpoint.pth's epoch 1
        "[vm] x (trainer:811) INFO: 2epoch:train:1-2batch: loss=3.5, loss_m=2.35, code_ppl=22.0, optim0_lr0=3.000e-04",
        "[vm] x (ssl_model:116) WARNING: wav2vec2 pre-training: code perplexity 2.0 < 0.1 x G·V = 3.2 (codebook "
        "collapse: raise diversity_weight or the Gumbel temperature) for 1000 training batches",
        epoch_line(
            3,
            {"loss": 2.0, "loss_m": 2.29, "code_ppl": 2.5, "acc": 0.2, "optim0_lr0": 4e-4},
            {"loss": 2.1, "loss_m": 2.295, "code_ppl": 2.6, "acc": 0.25},
        ),
        "",
    ]
)


def reporter_epoch(epoch: int, loss_m: float, acc: float) -> dict:
    return {
        "train": {
            "loss": np.float64(loss_m + 1),
            "loss_m": loss_m,
            "acc": acc,
            "code_ppl": 25.0,
            "optim0_lr0": np.float64(1e-4 * epoch),
            "time": datetime.timedelta(seconds=9),
            "total_count": 4 * epoch,
        },
        "valid": {
            "loss": loss_m + 0.9,
            "loss_m": loss_m - 0.1,
            "acc": acc + 0.01,
            "code_ppl": 24.0,
            "time": datetime.timedelta(microseconds=5),
            "total_count": 2 * epoch,
        },
        "att_plot": {"time": datetime.timedelta(seconds=1), "total_count": 0},
    }


@pytest.fixture
def exp(tmp_path):
    exp = tmp_path / "exp" / "ssl_synthetic"
    (exp / "checkpoints").mkdir(parents=True)
    (exp / "train.log").write_text(LOG, encoding="utf-8")
    state = {
        "model": {"num_updates": torch.tensor(42)},
        "optimizers": [],
        "schedulers": [],
        "scaler": None,
        "reporter": {"epoch": 2, "stats": {1: reporter_epoch(1, 2.30, 0.10), 2: reporter_epoch(2, 2.20, 0.15)}},
    }
    torch.save(state, exp / "checkpoint.pth")
    config = {"model": "wav2vec2", "model_conf": {"preset": "tiny", "config": {"num_negatives": K}}}
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    for n in (20, 10):
        (exp / "checkpoints" / f"{n}updates.pth").write_bytes(b"")
    return exp


def test_parse_pairs_with_and_without_separators():
    assert report.parse_pairs(
        "loss=5.180loss_m=3.281, feature_pen=1.0e-04code_ppl=24.7, acc=nan, time=1 minute and 2 seconds, sim_neg=-0.125"
    ) == {
        "loss": 5.18,
        "loss_m": 3.281,
        "feature_pen": 1e-4,
        "code_ppl": 24.7,
        "acc": pytest.approx(math.nan, nan_ok=True),
        "sim_neg": -0.125,
    }


def test_history_merges_checkpoint_and_log(exp):
    history = report.load_history(exp)
    assert list(history.epochs) == [1, 2, 3]
    assert history.epochs[1]["train"]["loss_m"] == 2.30  # the checkpoint wins over the log
    assert history.epochs[3]["valid"]["loss_m"] == 2.295  # only in the log
    assert "time" not in history.epochs[1]["train"] and history.epochs[1]["train"]["total_count"] == 4
    assert history.updates == 42 and history.checkpoints == [10, 20]
    tiny = preset_config("tiny")
    assert history.chance == report.Chance(K, tiny.latent_groups * tiny.latent_vars)
    assert history.chance.loss_m == pytest.approx(math.log(10))
    # 4 iterations an epoch (total_count grows by 4): batches 1-2 end at epoch 0.5, 3-4 at 1.0, epoch 2's 1-2 at 1.5
    assert report.interval_series(history, "loss_m") == [(0.5, 2.5), (1.0, 2.4), (1.5, 2.35)]
    assert report.interval_series(history, "optim0_lr0") == [(0.5, 1e-4), (1.0, 2e-4), (1.5, 3e-4)]
    assert report.epoch_series(history, "valid", "acc") == [
        (1, pytest.approx(0.11)),
        (2, pytest.approx(0.16)),
        (3, 0.25),
    ]
    assert len(history.warnings) == 1 and history.warnings[0].startswith("code perplexity 2.0")


def test_summary_start_end_best_and_checks(exp):
    history = report.load_history(exp)
    by_key = {(s.stat, s.phase): s for s in report.summarize(history)}
    lm = by_key[("loss_m", "valid")]
    assert (lm.start, lm.end, lm.best[0], lm.best[1]) == pytest.approx((2.20, 2.295, 2.10, 2))
    acc = by_key[("acc", "train")]
    assert (acc.start, acc.end, acc.best) == (0.10, 0.2, (0.2, 3))
    assert by_key[("optim0_lr0", "train")].best is None and ("optim0_lr0", "valid") not in by_key
    problems = report.checks(history)
    assert any("at chance" in p for p in problems)  # 2.295 > 0.98 log(10) = 2.257
    assert any("codebook collapse" in p for p in problems)  # 2.6 < 3.2
    text = report.format_summary(history, "report.png")
    assert f"L_m = log(K+1) = {math.log(10):.3f}" in text and "10updates.pth, 20updates.pth" in text
    assert "|L_m (contrastive) (`loss_m`)|valid|2.200|2.295|2.100 (2)|" in text
    assert "- log: code perplexity 2.0" in text and "optimizer updates: 42" in text


def test_healthy_run_has_no_warnings(exp):
    (exp / "train.log").unlink()
    history = report.load_history(exp)
    assert report.checks(history) == [] and history.warnings == []
    assert "## Warnings\n\nnone" in report.format_summary(history)


def test_cli_writes_png_and_markdown_once(exp, tmp_path):
    import matplotlib.image

    out = tmp_path / "out"
    assert main([str(exp), "--out_dir", str(out)]) == 0
    png = out / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.shape[:2] == (1000, 1400) and image.std() > 0
    assert (out / "report.md").read_text().startswith("<!-- Generated by python -m espnet_ext.bin.ssl_report")
    old = time.time() - 100
    for path in (png, out / "report.md"):
        os.utime(path, (old, old))
    assert main([str(exp), "--out_dir", str(out)]) == 0
    assert png.stat().st_mtime == old and (out / "report.md").stat().st_mtime == old


def test_log_only_and_errors(exp, tmp_path, caplog):
    (exp / "checkpoint.pth").unlink()
    history = report.load_history(exp)
    assert list(history.epochs) == [1, 3] and history.updates is None
    assert report.interval_series(history, "loss_m")[0] == (0.5, 2.5)  # total_count from the log's epoch line
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty)]) == 1
    assert "expected epoch results" in caplog.text
    assert main([str(tmp_path / "missing")]) == 1
    assert "expected a pre-training experiment directory" in caplog.text
