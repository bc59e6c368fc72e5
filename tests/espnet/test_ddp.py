"""DDP over gloo in real processes (tests/espnet/ddp_steps.py, one per rank): updates from 2
processes with half of each batch equal those of 1 process with the whole batch; each rank trains
on its share of every batch, no utterance twice, and the planner's audio per GPU batch is what a
rank gets; ``--num_procs`` and the ``unused_parameters`` default of the project's tasks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
STEPS = Path(__file__).with_name("ddp_steps.py")
ASR_TINY = ROOT / "egs2/mini/asr1/conf/tuning/train_asr_w2v2_tiny_ctc.yaml"
SSL_TINY = ROOT / "egs2/mini/ssl1/conf/tuning/train_ssl_w2v2_tiny.yaml"


def start_ranks(tmp_path: Path, name: str, what: str, world: int, task_args: list, env: dict) -> list:
    """``ddp_steps.py what`` in ``world`` processes (started, not waited for: see :func:`results`)."""
    init = tmp_path / f"{name}.init"
    started = []
    for r in range(world):
        out = tmp_path / f"{name}.{r}.pt"
        command = [sys.executable, str(STEPS), what, str(r), str(world), str(init), str(out), *map(str, task_args)]
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append((proc, out))
    return started


def results(started: list) -> list:
    """Each process's result, in the order started (their output shown when one failed)."""
    logs = [proc.communicate(timeout=600)[0] for proc, _ in started]
    for (proc, _), log in zip(started, logs):
        assert proc.returncode == 0, log[-4000:]
    return [torch.load(out, weights_only=False) for _, out in started]


@pytest.fixture
def env(venv_env):
    return dict(venv_env, OMP_NUM_THREADS="1")


def test_two_processes_with_half_batches_update_as_one_with_whole_batches(tmp_path, tiny_asr_data, env):
    """The tiny wav2vec 2.0 CTC model without dropout, masks or layerdrop, three updates (the
    first with the backbone frozen: freeze_finetune_updates 1) through ESPnet's trainer: the
    weights of both ranks are identical after every update and equal those of one process up to
    float sums; the update counter and the LR schedule count the same updates on every rank."""
    options = tiny_asr_data(tmp_path / "data")
    lengths = sorted(int(line.split()[1]) for line in (tmp_path / "data/train/speech_shape").read_text().splitlines())
    bins = lengths[4]  # numel batches of 2 + 2 + 2 utterances, with or without min_batch_size 2
    assert lengths[3] * 2 > bins and lengths[1] * 2 > bins
    frontend = [
        f"{k}=0.0"
        for k in ("mask_prob", "mask_channel_prob", "layerdrop", "dropout", "attention_dropout")
        + ("activation_dropout", "dropout_input")
    ]
    args = ["--config", ASR_TINY, "--output_dir", tmp_path / "exp", "--ngpu", "0", *options]
    args += ["--batch_type", "numel", "--batch_bins", bins, "--encoder_conf", "dropout_rate=0.0"]
    args += [a for kv in frontend for a in ("--frontend_conf", kv)]
    args += ["--frontend_conf", "freeze_finetune_updates=1", "--scheduler_conf", "warmup_steps=2"]
    # SGD: the weights show the gradients (Adam's first step, g / (|g| + eps), makes float-sum
    # differences of near-zero gradients as large as the learning rate)
    args += ["--optim", "sgd", "--optim_conf", "lr=0.1"]
    one, *two = results(
        start_ranks(tmp_path, "one", "train", 1, args, env) + start_ranks(tmp_path, "two", "train", 2, args, env)
    )
    assert len(one) == len(two[0]) == len(two[1]) == 4  # the initial state and 3 updates
    backbone = [k for k in one[0]["state"] if k.startswith("frontend.model.")]
    for update in range(1, 4):
        whole, halves = one[update], [two[r][update] for r in (0, 1)]
        # rank r trained on utterances [r::2] of the batch the single process trained on
        assert sorted(halves[0]["keys"] + halves[1]["keys"]) == sorted(whole["keys"])
        assert halves[0]["keys"] == whole["keys"][0::2] and halves[1]["keys"] == whole["keys"][1::2]
        for key, value in whole["state"].items():
            assert torch.equal(halves[0]["state"][key], halves[1]["state"][key]), (update, key)
            torch.testing.assert_close(halves[0]["state"][key], value, rtol=1e-5, atol=2e-6, msg=f"{update} {key}")
        for rank_or_whole in (whole, *halves):
            assert int(rank_or_whole["state"]["frontend.num_updates"]) == update
            assert rank_or_whole["scheduler_steps"] == update and rank_or_whole["lr"] == whole["lr"]
    # update 1 left the frozen backbone as it was; update 2 trained it
    assert all(torch.equal(one[1]["state"][k], one[0]["state"][k]) for k in backbone)
    assert not all(torch.equal(one[2]["state"][k], one[1]["state"][k]) for k in backbone)


def test_each_rank_gets_its_share_and_the_planner_sees_it(tmp_path, wav_dir, env):
    """Pre-training batches (cropped to each rank's shortest utterance and to 24000 samples) in 2
    processes, with the fairseq_batches sampler and with numel: every batch of the sampler split
    between the ranks, each utterance once per epoch, and the planner's audio per update and per
    GPU batch (python -m espnet_ext.bin.plan --ngpu 2 --train_shape) what the ranks' collated
    batches hold."""
    from espnet_ext.data.sampling import sampler_batches
    from espnet_ext.report import plan

    files = sorted((ROOT / "egs2/mini/corpus/en/wav").glob("*.flac"))[:14]
    lengths = wav_dir(tmp_path / "stats/train", files)
    wav_dir(tmp_path / "valid", files[-2:])
    train = tmp_path / "stats/train"
    keys = [line.split()[0] for line in (train / "speech_shape").read_text().splitlines()]
    samplers, configs, args = (True, False), {}, []
    for fairseq in samplers:
        conf = yaml.safe_load(SSL_TINY.read_text())
        conf.update(batch_bins=160000, fairseq_batches=fairseq, num_iters_per_epoch=None)
        conf["collate_fn_conf"] = dict(conf["collate_fn_conf"], max_sample_size=24000)
        configs[fairseq] = tmp_path / f"ssl_{fairseq}.yaml"
        configs[fairseq].write_text(yaml.safe_dump(conf))
        args += ["--then"] if args else []
        args += ["--config", configs[fairseq], "--output_dir", tmp_path / "exp", "--ngpu", "0"]
        args += ["--train_data_path_and_name_and_type", f"{train}/wav.scp,speech,sound"]
        args += ["--train_shape_file", f"{train}/speech_shape"]
        args += ["--valid_data_path_and_name_and_type", f"{tmp_path}/valid/wav.scp,speech,sound"]
        args += ["--valid_shape_file", f"{tmp_path}/valid/speech_shape"]
    found = results(start_ranks(tmp_path, "batches", "batches", 2, args, env))
    for index, fairseq in enumerate(samplers):
        ranks = [found[0][index], found[1][index]]
        expected = sampler_batches(lengths, 160000, 2, None, fairseq, 24000 if fairseq else None)
        for epoch in (1, 2):
            seen = [k for r in (0, 1) for batch, _ in ranks[r][epoch] for k in batch]
            assert sorted(seen) == sorted(keys), fairseq  # every utterance, once
            assert len(ranks[0][epoch]) == len(ranks[1][epoch]) == len(expected)
            formed = {frozenset(keys[i] for i in b) for b in expected}
            pairs = list(zip(ranks[0][epoch], ranks[1][epoch]))
            assert {frozenset(a + b) for (a, _), (b, _) in pairs} == formed, fairseq
        audio = [sum(shape[0] * shape[1] for _, shape in pair) for pair in zip(ranks[0][1], ranks[1][1])]
        rows, _ = plan.plan_config(configs[fairseq], plan.Options(ngpu=2, train_shape=tmp_path / "stats"), None)
        planned = {row.key: row.ours for row in rows}
        assert planned["audio_per_update_s"] == pytest.approx(np.mean(audio) / 16000), fairseq
        assert planned["audio_per_gpu_batch_s"] == pytest.approx(np.mean(audio) / 2 / 16000), fairseq
        assert planned["updates_per_epoch"] == len(expected), fairseq


def test_project_tasks_default_to_unused_parameters(tmp_path):
    from espnet_ext.espnet.tasks import ASRTask, CLSTask, LMTask, SSLTask

    for task in (ASRTask, CLSTask, LMTask, SSLTask):
        assert task.get_parser().parse_args(["--output_dir", "x"]).unused_parameters is True, task
        assert task.get_parser().parse_args(["--output_dir", "x"]).num_procs == 1, task
    config = tmp_path / "c.yaml"
    config.write_text("unused_parameters: false\n")
    assert ASRTask.get_parser().parse_args(["--output_dir", "x", "--config", str(config)]).unused_parameters is False


def test_num_procs_is_for_cpu_training():
    from espnet_ext.espnet.tasks import SSLTask

    with pytest.raises(ValueError, match="--num_procs 2 is for training on CPU"):
        SSLTask.main(cmd=["--output_dir", "x", "--ngpu", "1", "--num_procs", "2"])
    with pytest.raises(ValueError, match="--num_procs: expected >= 1"):
        SSLTask.main(cmd=["--output_dir", "x", "--num_procs", "0"])
