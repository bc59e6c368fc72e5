"""Tests of the planner (espnet_ext.report.plan, espnet_ext.bin.plan)."""

from __future__ import annotations

import glob
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from espnet_ext.bin import plan as plan_cli
from espnet_ext.report import mask_stats, plan

ROOT = Path(__file__).resolve().parents[2]
# every shipped acoustic-model config (the planner plans those; an LM config names `lm:`)
CONFIGS = sorted(
    p for p in glob.glob(str(ROOT / "egs2/*/*/conf/tuning/*.yaml")) if "lm" not in yaml.safe_load(Path(p).read_text())
)
BASE_100H = ROOT / "egs2/librispeech/asr1/conf/tuning/train_asr_w2v2_base_100h_ctc.yaml"
BASE_10H = ROOT / "egs2/librispeech/asr1/conf/tuning/train_asr_w2v2_base_10h_ctc.yaml"
SSL_BASE = ROOT / "egs2/librispeech/ssl1/conf/tuning/train_ssl_w2v2_base.yaml"
SSL_MINI = ROOT / "egs2/mini/ssl1/conf/tuning/train_ssl_w2v2_mini.yaml"


def _write_shapes(stats: Path, speech, text=None):
    (stats / "train").mkdir(parents=True)
    (stats / "train" / "speech_shape").write_text(
        "".join(f"u{i:03d} {n}\n" for i, n in enumerate(speech)), encoding="utf-8"
    )
    if text is not None:
        (stats / "train" / "text_shape.char").write_text(
            "".join(f"u{i:03d} {n},30\n" for i, n in enumerate(text)), encoding="utf-8"
        )


# --- rows of shipped configs, by hand -----------------------------------------------------


def _rows(config, reference=None, **opts):
    rows, notes = plan.plan_config(config, plan.Options(**opts), reference)
    return {r.key: r for r in rows}, notes


def test_base_100h_rows():
    rows, _ = _rows(BASE_100H, "base_100h")
    ours = {k: r.ours for k, r in rows.items()}
    ref = {k: r.reference for k, r in rows.items()}
    # ours (1 GPU): 3.2 M samples x accum_grad 8 = 1600 s; num_iters_per_epoch 8000 / 8 = 1000
    # updates per epoch x 80 epochs
    assert ours["audio_per_update_s"] == 1600.0 and ours["audio_per_gpu_batch_s"] == 200.0
    assert ours["updates_per_epoch"] == 1000 and ours["total_updates"] == 80000
    # TristageLR(max_steps 80000): 8000 / 32000 / 40000, from 0.01 x 3e-5 to 0.05 x 3e-5
    assert (ours["lr_warmup_updates"], ours["lr_hold_updates"], ours["lr_decay_updates"]) == (8000, 32000, 40000)
    assert ours["lr_schedule_end"] == 80000
    assert ours["lr_peak"] == pytest.approx(3e-5) and ours["lr_final"] == pytest.approx(1.5e-6)
    assert ours["lr_initial"] == pytest.approx(3e-7 + (3e-5 - 3e-7) / 8000)
    assert ours["grad_clip"] == ref["grad_clip"] == "none"  # grad_clip 1e10, fairseq clip_norm 0
    assert (ours["frozen_backbone_updates"], ours["feature_grad_mult"]) == (0, 0.0)
    # fairseq: 3.2 M x 2 GPUs x update_freq 4 = 1600 s; 80 k updates; 8000 / 32000 / 40000
    assert ref["audio_per_update_s"] == 1600.0 and ref["total_updates"] == 80000
    assert (ref["lr_warmup_updates"], ref["lr_hold_updates"], ref["lr_decay_updates"]) == (8000, 32000, 40000)
    assert ref["lr_peak"] == pytest.approx(3e-5) and ref["lr_final"] == pytest.approx(1.5e-6)
    assert ref["passes_over_data"] == pytest.approx(80000 * 1600 / (100.6 * 3600)) == ours["passes_over_data"]
    # masks: same options; 10 s -> 499 frames; channels of 768; require_same_masks over the
    # utterances of 10 s in 200 s (ours: batch_bins on one GPU; fairseq: max_tokens per GPU): 20,
    # cut to 16 by required_batch_size_multiple 8 (fairseq's default; the config's with fairseq_batches)
    assert ours["mask_batch"] == ref["mask_batch"] == 16
    assert mask_stats.mask_batch(200.0, 10.0) == 20 and mask_stats.mask_batch(200.0, 10.0, multiple=8) == 16
    assert (
        mask_stats.mask_batch(70.0, 10.0, multiple=8) == 7
        and mask_stats.mask_batch(200.0, 10.0, cap=4, multiple=8) == 4
    )
    assert ours["require_same_masks"] is ref["require_same_masks"] is True
    time = mask_stats.mask_statistics(499, 0.65, 10, 2, batch=16)
    assert ref["masked_fraction"] == ours["masked_fraction"] == pytest.approx(time.same_fraction)
    assert ours["masked_fraction_utterance"] == pytest.approx(time.fraction)
    assert 0.47 < time.fraction < 0.51 and 0.42 < time.same_fraction < 0.46  # ~49% -> ~44%
    chan = mask_stats.mask_statistics(768, 0.5, 64, batch=16)
    assert ref["channel_masked_fraction"] == ours["channel_masked_fraction"] == pytest.approx(chan.same_fraction)
    assert "gumbel_temp_final" not in rows
    # every row the same but the epoch's bookkeeping (1000 updates here, one pass in fairseq)
    assert [k for k, r in rows.items() if not plan.same(r.ours, r.reference)] == ["updates_per_epoch", "epochs"]
    assert ref["updates_per_epoch"] == pytest.approx(100.6 * 3600 / 1600)
    # the config's other GPU counts (its header) keep every row
    for ngpu, bins, accum, iters in ((2, 6_400_000, 4, 4000), (8, 25_600_000, 1, 1000)):
        other, _ = _rows(
            BASE_100H, "base_100h", ngpu=ngpu, batch_bins=bins, accum_grad=accum, num_iters_per_epoch=iters
        )
        assert [k for k in ours if not plan.same(other[k].ours, ours[k])] == [], ngpu


def test_base_10h_rows():
    rows, _ = _rows(BASE_10H, "base_10h")  # Libri-light's 10 h
    ours = {k: r.ours for k, r in rows.items()}
    # 1600 s per update; 4000 batches / 8 = 500 updates per epoch x 40 epochs = 20000
    assert ours["audio_per_update_s"] == 1600.0 and ours["updates_per_epoch"] == 500
    assert ours["total_updates"] == rows["total_updates"].reference == 20000
    assert (ours["lr_warmup_updates"], ours["lr_hold_updates"], ours["lr_decay_updates"]) == (2000, 8000, 10000)
    assert ours["frozen_backbone_updates"] == rows["frozen_backbone_updates"].reference == 10000
    assert rows["lr_peak"].reference == pytest.approx(5e-5) == ours["lr_peak"]
    assert ours["passes_over_data"] == pytest.approx(20000 * 1600 / 36000)
    assert [k for k, r in rows.items() if not plan.same(r.ours, r.reference)] == ["updates_per_epoch", "epochs"]


def test_pretrain_base_rows_and_fewer_gpu_advice():
    rows, _ = _rows(SSL_BASE, "pretrain_base")
    assert rows["audio_per_update_s"].ours == 11_200_000 * 8 / 16000 == rows["audio_per_update_s"].reference
    assert rows["total_updates"].ours == 400_000  # 32000 iterations / 8 x 100 epochs
    assert rows["lr_final"].ours == pytest.approx(0.0, abs=1e-12)
    assert rows["gumbel_temp_final"].ours == rows["gumbel_temp_final"].reference == 0.5
    assert rows["grad_clip"].ours == "none"
    # the config's fewer-GPU advice: batch_bins 1.4 M, accum_grad 64 keeps num_iters_per_epoch 32000
    rows, _ = _rows(SSL_BASE, "pretrain_base", batch_bins=1_400_000, accum_grad=64)
    assert rows["total_updates"].ours == 50_000
    assert rows["gumbel_temp_final"].ours == pytest.approx(2 * 0.999995**50_000)  # ~1.56
    assert rows["lr_final"].ours == pytest.approx(5e-4 * (1 - (50_000 - 32_000) / 368_000))


def test_mini_ssl_rows_from_shapes(tmp_path):
    _write_shapes(tmp_path, [100000, 100000, 150000, 150000, 200000, 200000])
    # the mini config's values, with the batch size these shapes were chosen for (400k samples)
    config = yaml.safe_load(SSL_MINI.read_text())
    config["batch_bins"] = 400000
    (tmp_path / "ssl_mini.yaml").write_text(yaml.safe_dump(config))
    rows, notes = _rows(tmp_path / "ssl_mini.yaml", train_shape=tmp_path, ngpu=2)
    v = {k: r.ours for k, r in rows.items()}
    # batches [100k, 100k, 150k] (3 x 150k > 400k) and [150k, 200k, 200k], longest first; rank r
    # gets [r::2] and crops it to its own shortest: 2 x 100k + 100k and 2 x 150k + 200k samples
    assert v["audio_per_update_s"] == pytest.approx(400000 / 16000)
    assert v["audio_per_gpu_batch_s"] == pytest.approx(400000 / 16000 / 2)
    config = plan.load_config(tmp_path / "ssl_mini.yaml")
    total = 2 * config["max_epoch"]
    assert (v["updates_per_epoch"], v["total_updates"]) == (2, total)
    assert v["passes_over_data"] == pytest.approx(total * 400000 / 900000)
    lr = config["optim_conf"]["lr"]  # WarmupLR, still warming up at the end
    warmup = config["scheduler_conf"]["warmup_steps"]
    assert warmup > total
    assert v["lr_initial"] == pytest.approx(lr * warmup**0.5 * warmup**-1.5)
    assert v["lr_final"] == pytest.approx(lr * warmup**0.5 * total * warmup**-1.5)
    start, end, decay = config["model_conf"]["config"]["latent_temp"]
    assert v["gumbel_temp_final"] == pytest.approx(max(end, start * decay**total))
    assert v["feature_grad_mult"] == 0.1 and v["grad_clip"] == 10.0
    # masks at the median utterance, 150000 samples = 468 frames
    # (one utterance of 9.4 s per GPU's 12.5 s: nothing to trim)
    assert v["mask_batch"] == 1
    assert v["masked_fraction"] == pytest.approx(mask_stats.mask_statistics(468, 0.65, 10, 2).fraction)
    assert any("simulated over 6 utterances" in n for n in notes)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(Path(p).relative_to(ROOT)))
def test_every_shipped_config_plans(config):
    cfg = plan.load_config(config)
    rows, _ = _rows(config, train_hours=10.0)
    accum = int(cfg.get("accum_grad", 1))
    assert rows["audio_per_update_s"].ours == pytest.approx(cfg["batch_bins"] * accum / 16000)
    iters = cfg.get("num_iters_per_epoch")
    per_epoch = iters // accum if iters else int(10.0 * 3600 / (cfg["batch_bins"] / 16000) // accum)
    assert rows["total_updates"].ours == per_epoch * cfg["max_epoch"]
    clip = cfg.get("grad_clip", 5.0)
    assert rows["grad_clip"].ours == ("none" if clip >= 1e6 else clip)
    assert rows["lr_peak"].ours > 0


# --- errors and the command line ----------------------------------------------------------


def test_unknown_scheduler_names_the_file(tmp_path, capsys):
    config = tmp_path / "conf.yaml"
    config.write_text("batch_type: numel\nbatch_bins: 1000\nscheduler: foolr\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{config}: scheduler 'foolr'"):
        plan.plan_config(config)
    assert plan_cli.main([str(config)]) == 1
    assert str(config) in capsys.readouterr().err


def test_cli_json_and_table(capsys):
    assert plan_cli.main([str(BASE_100H), "--reference", "base_100h", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rows"]["total_updates"] == {"ours": 80000, "reference": 80000, "same": True}
    assert out["rows"]["epochs"]["same"] is False
    assert out["rows"]["mask_prob"]["same"] is True
    assert plan_cli.main([str(BASE_100H), "--reference", "base_100h"]) == 0
    table = capsys.readouterr().out
    assert "differs" in table and "fairseq base_100h" in table
    assert math.isfinite(out["rows"]["masked_fraction"]["ours"])


def test_schedule_end_notes_and_num_iters_override(tmp_path):
    # base_10h without num_iters_per_epoch, 20 epochs at 35 h: 35 x 3600 / 200 = 630 batches,
    # 78 updates per epoch, 1560 in all; the tri-stage curve is drawn over 20000
    config = plan.load_config(BASE_10H)
    del config["num_iters_per_epoch"]
    config["max_epoch"] = 20
    short = tmp_path / "short.yaml"
    short.write_text(yaml.safe_dump(config), encoding="utf-8")
    _, notes = _rows(short, train_hours=35.0)
    assert "training ends at update 1560, the LR schedule at 20000: the LR never reaches its final value" in notes
    # the fewer-GPU advice made whole: 8 x the iterations per epoch restores 4 k updates per epoch
    rows, _ = _rows(SSL_BASE, batch_bins=1_400_000, accum_grad=64, num_iters_per_epoch=256_000)
    assert rows["updates_per_epoch"].ours == 4000 and rows["total_updates"].ours == 400_000


def test_frontend_defaults_match_the_frontend():
    # read from the source, not by importing (which builds ESPnet's registry)
    import ast

    tree = ast.parse((ROOT / "espnet_ext/espnet/frontend.py").read_text(encoding="utf-8"))
    init = next(
        n
        for c in ast.walk(tree)
        if isinstance(c, ast.ClassDef) and c.name == "Wav2Vec2Frontend"
        for n in c.body
        if isinstance(n, ast.FunctionDef) and n.name == "__init__"
    )
    names = [a.arg for a in init.args.args][-len(init.args.defaults) :]
    defaults = {n: ast.literal_eval(d) for n, d in zip(names, init.args.defaults)}
    assert {k: defaults[k] for k in plan.FRONTEND_DEFAULTS} == plan.FRONTEND_DEFAULTS


# --- the corpus BASE fine-tuning configs, the ssl1 configs, and the headers that quote the plan --

AISHELL = ROOT / "egs2/aishell/asr1/conf/tuning/train_asr_w2v2_base_ctc.yaml"
JSUT = ROOT / "egs2/jsut/asr1/conf/tuning/train_asr_w2v2_base_ctc.yaml"
TIMIT = ROOT / "egs2/timit/asr1/conf/tuning/train_asr_w2v2_base_ctc.yaml"
SSL_LARGE = ROOT / "egs2/librispeech/ssl1/conf/tuning/train_ssl_w2v2_large.yaml"
#: fairseq's BASE fine-tuning budgets (examples/wav2vec/config/finetuning/base_{1h,10h,100h,960h}.yaml):
#: hours of labelled data -> max_update, all at 1600 s of audio per update
FAIRSEQ_UPDATES = {1.0: 13_000, 10.0: 20_000, 100.6: 80_000, 960.9: 320_000}


def interpolated_updates(hours: float) -> float:
    """The configs' rule: updates linear in log(hours) between fairseq's neighbouring recipes."""
    points = sorted(FAIRSEQ_UPDATES.items())
    for (h0, u0), (h1, u1) in zip(points, points[1:]):
        if h0 <= hours <= h1:
            return u0 * (u1 / u0) ** (math.log(hours / h0) / math.log(h1 / h0))
    raise ValueError(hours)


@pytest.mark.parametrize(
    "config,hours,reference,updates,frozen,lr",
    [
        (AISHELL, 150.0, "base_100h", 100_000, 0, 3e-5),
        (JSUT, 9.4, "base_10h", 20_000, 10_000, 5e-5),
        (TIMIT, 3.1, "base_10h", 16_000, 10_000, 5e-5),
    ],
)
def test_corpus_base_configs_rows(config, hours, reference, updates, frozen, lr):
    rows, notes = _rows(config, reference, train_hours=hours)
    ours = {k: r.ours for k, r in rows.items()}
    ref = {k: r.reference for k, r in rows.items()}
    # fairseq's batch: 3.2 M samples (200 s) per GPU batch, 8 of them per update; fairseq_batches
    # makes batch_bins a ceiling on audio alone, as max_tokens
    assert ours["audio_per_update_s"] == ref["audio_per_update_s"] == 1600.0
    assert ours["audio_per_gpu_batch_s"] == ref["audio_per_gpu_batch_s"] == 200.0
    assert any("fairseq_batches" in n for n in notes)
    # the budget: the interpolation rule, rounded (within 3%); 500 or 1000 updates per epoch
    assert ours["total_updates"] == updates
    assert abs(updates / interpolated_updates(hours) - 1) < 0.03
    assert ours["updates_per_epoch"] in (500, 1000)
    assert ours["passes_over_data"] == pytest.approx(updates * 1600 / (hours * 3600))
    # tri-stage over the whole run: 10% / 40% / 50%, 0.01 x lr to lr to 0.05 x lr
    assert (ours["lr_warmup_updates"], ours["lr_hold_updates"], ours["lr_decay_updates"]) == (
        updates // 10,
        updates * 4 // 10,
        updates // 2,
    )
    assert ours["lr_schedule_end"] == updates
    assert ours["lr_peak"] == pytest.approx(lr) == ref["lr_peak"]
    assert ours["lr_final"] == pytest.approx(0.05 * lr) and ours["lr_initial"] == pytest.approx(
        0.01 * lr + 0.99 * lr / (updates // 10)
    )
    assert ours["frozen_backbone_updates"] == frozen == ref["frozen_backbone_updates"]
    for key in (
        "feature_grad_mult",
        "mask_prob",
        "mask_length",
        "mask_channel_prob",
        "mask_channel_length",
        "require_same_masks",
        "mask_batch",
        "masked_fraction",
        "channel_masked_fraction",
        "grad_clip",
    ):
        assert plan.same(ours[key], ref[key]), key
    # what differs from the reference is the budget's size and the epoch's bookkeeping
    differ = {k for k, r in rows.items() if not plan.same(r.ours, r.reference)}
    assert differ <= {
        "updates_per_epoch",
        "epochs",
        "total_updates",
        "passes_over_data",
        "lr_schedule_end",
        "lr_warmup_updates",
        "lr_hold_updates",
        "lr_decay_updates",
        "lr_initial",
        "lr_final",
    }


def test_fairseq_budgets_quoted_in_the_headers():
    # passes over the data of fairseq's recipes (1,600 s per update), quoted in the AISHELL header
    passes = [FAIRSEQ_UPDATES[h] * 1600 / (h * 3600) for h in sorted(FAIRSEQ_UPDATES)]
    assert [round(p) for p in passes] == [5778, 889, 353, 148]
    assert round(interpolated_updates(150.0), -3) == 102_000  # "~102k"
    assert round(interpolated_updates(9.4), -2) == 19_800  # "~19.8k"
    assert round(interpolated_updates(3.1), -2) == 16_100  # "~16.1k"


def _header_plans(path):
    """(planner arguments, quoted summary) for each '# python -m espnet_ext.bin.plan <this file>
    ARGS:' line of a config's header, and its GPU table rows (ngpu, batch_bins, accum, iters)."""
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    plans, table = [], []
    for i, line in enumerate(lines):
        if line.startswith("# python -m espnet_ext.bin.plan <this file> ") and line.endswith(":"):
            quoted = []
            for follow in lines[i + 1 :]:
                if not follow.startswith("#   "):
                    break
                quoted.append(follow[4:])
            plans.append((line[len("# python -m espnet_ext.bin.plan <this file> ") : -1].split(), " ".join(quoted)))
        row = re.match(
            r"#\s+(\d+) GPUs?.*:\s+batch_bins\s+(\d+), accum_grad\s+(\d+), num_iters_per_epoch\s+(\d+)$", line
        )
        if row:
            table.append(tuple(int(v) for v in row.groups()))
    return plans, table


def _summary(capsys, argv):
    assert plan_cli.main(argv) == 0
    return " ".join(capsys.readouterr().out.split())


HEADED = [AISHELL, JSUT, TIMIT, BASE_100H, BASE_10H] + [
    ROOT / f"egs2/librispeech/ssl1/conf/tuning/train_ssl_w2v2_{size}.yaml"
    for size in ("base", "medium", "small", "large", "downsample")
]


@pytest.mark.parametrize("config", HEADED, ids=lambda p: str(Path(p).relative_to(ROOT / "egs2")))
def test_headers_quote_what_the_planner_prints(config, capsys):
    """Each BASE fine-tuning config and each ssl1 config quotes the planner for the GPU count it
    is written for (so the quote cannot rot), and every row of its GPU table plans the same."""
    plans, table = _header_plans(config)
    assert plans, f"{config}: no planner line in the header"
    for argv, quoted in plans:
        assert "--summary" in argv and "--ngpu" in argv
        assert _summary(capsys, [str(config)] + argv) == " ".join(quoted.split()), (config, argv)
    assert len(table) >= 3, f"{config}: no GPU table"
    cfg = plan.load_config(config)
    argv = plans[0][0]
    for ngpu, bins, accum, iters in table:
        if (bins, accum, iters) == (cfg["batch_bins"], cfg["accum_grad"], cfg["num_iters_per_epoch"]):
            assert ["--ngpu", str(ngpu)] == argv[argv.index("--ngpu") : argv.index("--ngpu") + 2]
        assert bins // ngpu == cfg["batch_bins"] // int(argv[argv.index("--ngpu") + 1])
        other = _summary(
            capsys,
            [str(config)]
            + argv
            + [
                "--ngpu",
                str(ngpu),
                "--batch_bins",
                str(bins),
                "--accum_grad",
                str(accum),
                "--num_iters_per_epoch",
                str(iters),
            ],
        )
        assert other == " ".join(plans[0][1].split()), (config, ngpu)


def test_every_config_with_a_planner_line_quotes_it(capsys):
    seen = {Path(c).resolve() for c in CONFIGS}
    quoted = [c for c in sorted(seen) if _header_plans(c)[0]]
    assert set(quoted) >= {Path(c).resolve() for c in HEADED}
    for config in set(quoted) - {Path(c).resolve() for c in HEADED}:
        for argv, text in _header_plans(config)[0]:
            assert _summary(capsys, [str(config)] + argv) == " ".join(text.split()), config


def test_pretrain_configs_keep_fairseqs_schedule_on_one_gpu():
    # BASE on 1 GPU: 1.4 M x 64 = 89.6 M samples per update, 256000 / 64 x 100 = 400 k updates:
    # the LR reaches 0 and the Gumbel temperature its floor, as in fairseq
    rows, _ = _rows(SSL_BASE, "pretrain_base", ngpu=1, batch_bins=1_400_000, accum_grad=64, num_iters_per_epoch=256_000)
    for key in (
        "audio_per_update_s",
        "audio_per_gpu_batch_s",
        "total_updates",
        "lr_final",
        "gumbel_temp_final",
        "lr_warmup_updates",
        "lr_decay_updates",
        "mask_batch",
        "masked_fraction",
    ):
        assert plan.same(rows[key].ours, rows[key].reference), key
    assert rows["gumbel_temp_final"].ours == 0.5 and rows["total_updates"].ours == 400_000
    # LARGE on 1 GPU: 1.2 M x 128 = 153.6 M samples, 1 M updates, temperature floor 0.1
    rows, _ = _rows(
        SSL_LARGE, "pretrain_large", ngpu=1, batch_bins=1_200_000, accum_grad=128, num_iters_per_epoch=1_280_000
    )
    assert rows["audio_per_update_s"].ours == rows["audio_per_update_s"].reference == 1_200_000 * 128 / 16000
    assert rows["total_updates"].ours == 1_000_000 and rows["gumbel_temp_final"].ours == 0.1
    assert [k for k, r in rows.items() if not plan.same(r.ours, r.reference)] == ["updates_per_epoch", "epochs"]


def test_fairseq_batches_simulated_from_shapes(tmp_path):
    """With fairseq_batches the planner batches as the sampler does: sizes cropped to
    max_sample_size, batch_bins a ceiling, the per-GPU cap; audio seen = count x shortest."""
    lengths = [400_000] * 10 + [120_000] * 12
    _write_shapes(tmp_path, lengths)
    conf = yaml.safe_load(SSL_BASE.read_text(encoding="utf-8"))
    conf.update(batch_bins=1_000_000, accum_grad=1, num_iters_per_epoch=None, max_epoch=1, max_utterances_per_gpu=None)
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump(conf), encoding="utf-8")
    # by hand: the 400 k ones count 250 k, so 4 fit (5 x 250 k > 1 M): [4 L], [4 L], then
    # [L, L, S, S] (largest 250 k: 4 fit), then the 120 k ones: 8 fit (9 x 120 k > 1 M): [8 S], [2 S].
    # crop_audio: the model sees count x shortest: 4 x 250k, 4 x 250k, 4 x 120k, 8 x 120k, 2 x 120k
    rows, _ = _rows(path, train_shape=tmp_path)
    seen = [1_000_000, 1_000_000, 480_000, 960_000, 240_000]
    assert rows["updates_per_epoch"].ours == 5
    assert rows["audio_per_update_s"].ours == pytest.approx(np.mean(seen) / 16000)
    # capped at 3 per GPU: [3 L] x 3, [L, S, S], [3 S] x 3, [S]
    conf["max_utterances_per_gpu"] = 3
    path.write_text(yaml.safe_dump(conf), encoding="utf-8")
    rows, _ = _rows(path, train_shape=tmp_path)
    capped = [3 * 250_000] * 3 + [3 * 120_000] + [3 * 120_000] * 3 + [120_000]
    assert rows["updates_per_epoch"].ours == 8
    assert rows["audio_per_update_s"].ours == pytest.approx(np.mean(capped) / 16000)
