"""Integration: egs2/mini/ssl1 pre-training as one DDP training (gloo) of 2 processes, on one node
(``--num_procs 2``), killed with SIGKILL and run again, and on 2 "nodes" through the slurm backend
(``--num_nodes 2``: a stand-in ``srun`` starts one task per node as a local process with the
SLURM_* variables a real one sets), uninterrupted.

What both must show: the ranks hold the same model after every epoch (the trainer's digest line),
one progress line per epoch and one set of ``<N>updates.pth`` (rank 0 writes), the update counter
and the LR schedule at the same count, the Gumbel temperature of that count. The ranks of 2 nodes x
1 process get the shares those of 1 node x 2 processes get, so the two runs train the same model,
epoch by epoch: the killed run resumes and ends with the uninterrupted run's model.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

MINI = Path(__file__).resolve().parents[2] / "egs2" / "mini" / "ssl1"
CONFIG = "conf/tuning/train_ssl_w2v2_tiny.yaml"
EPOCHS, ITERS, EVERY = 3, 3, 4
TRAIN = ("--ssl_config", CONFIG, "--save_every_updates", str(EVERY))
TRAIN += ("--ssl_args", f"--max_epoch {EPOCHS} --num_iters_per_epoch {ITERS} --use_matplotlib false")
DIGEST = re.compile(r"Epoch (\d+): the (\d+) ranks hold identical models \(state digest (\w+), (\d+) updates\)")

#: srun as slurm runs a job step of --nodes N --ntasks-per-node 1: N tasks, here local processes
FAKE_SRUN = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "${SRUN_RECORD}"
nodes=1
while [[ "$1" == --* ]]; do
    case "$1" in --nodes) nodes=$2 ;; esac
    shift 2
done
pids=()
for ((i = 0; i < nodes; i++)); do
    SLURM_JOB_ID=1 SLURM_STEP_ID=0 SLURM_PROCID=${i} SLURM_NODEID=${i} SLURM_LOCALID=0 SLURM_NTASKS=${nodes} \
    SLURM_NNODES=${nodes} SLURM_JOB_NUM_NODES=${nodes} SLURM_STEP_NUM_NODES=${nodes} SLURM_STEP_NUM_TASKS=${nodes} \
    SLURM_JOB_NODELIST="localhost" SLURM_STEP_NODELIST="localhost" SLURMD_NODENAME="node${i}" "$@" &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "${pid}" || rc=$?; done
exit ${rc}
"""


def make_recipe(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in ("ssl.sh", "path.sh", "cmd.sh", "db.sh", "run.sh", "conf", "local"):
        (dest / name).symlink_to((MINI / name).resolve())
    return dest


def run(recipe: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"run.sh {' '.join(args)} failed:\n{result.stderr[-4000:]}"
    return result


def exp_of(recipe: Path, expdir: str) -> Path:
    (exp,) = (recipe / expdir).glob("ssl_train_ssl_w2v2_tiny*")
    return exp


def digests(log: Path) -> dict:
    """{epoch: (ranks, digest, updates)} of the trainer's digest lines (the last one per epoch)."""
    return {int(e): (int(n), d, int(u)) for e, n, d, u in DIGEST.findall(log.read_text(errors="replace"))}


@pytest.fixture(scope="module")
def runs(project_root, venv_env, tmp_path_factory):
    base = tmp_path_factory.mktemp("ddp")
    recipe = make_recipe(base / "ssl1")
    # one thread per process in both runs, so that they compute the same sums
    env = dict(venv_env, ESPNET_EXT_ROOT=str(project_root), OMP_NUM_THREADS="1")
    timings = {}
    start = time.time()
    run(recipe, env, "--stop_stage", "10", "--local_data_opts", "--synth_utts 0 --langs en", "--nj", "2", *TRAIN)
    timings["stages 1-10"] = time.time() - start

    # 2 processes, killed (the whole process group) once the first epoch is saved, then run again
    start = time.time()
    one_node = ("--stage", "11", "--stop_stage", "11", "--num_procs", "2", *TRAIN)
    train = subprocess.Popen(
        ["./run.sh", *one_node],
        cwd=recipe,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log, saved = recipe / "exp/ssl_train_ssl_w2v2_tiny/train.log", recipe / "exp/ssl_train_ssl_w2v2_tiny/checkpoint.pth"
    deadline = time.time() + 900
    while not saved.exists() and train.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert train.poll() is None, "the training ended before it could be killed"
    os.killpg(train.pid, signal.SIGKILL)
    train.wait()
    before = digests(log)
    resumed = run(recipe, env, *one_node)
    timings["2 processes, killed and resumed"] = time.time() - start

    # 2 "nodes" through the slurm backend, one process each
    start = time.time()
    bin_dir = base / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(FAKE_SRUN)
    (bin_dir / "srun").chmod(0o755)
    slurm_env = dict(env, PATH=f"{bin_dir}:{env['PATH']}", ESPNET_EXT_CMD_BACKEND="slurm")
    slurm_env["SRUN_RECORD"] = str(base / "srun.txt")
    nodes = ("--stage", "10", "--stop_stage", "11", "--expdir", "exp_nodes", "--num_nodes", "2", *TRAIN)
    nodes = run(recipe, slurm_env, *nodes)
    timings["2 nodes"] = time.time() - start
    return {
        "one_node": (exp_of(recipe, "exp"), resumed, before),
        "nodes": (exp_of(recipe, "exp_nodes"), nodes),
        "srun": (base / "srun.txt").read_text().splitlines(),
        "timings": timings,
    }


def check_one_training(exp: Path, stderr: str, first: int = 1) -> int:
    """What a distributed run must show (see the module) for epochs ``first``.. (those of the last
    command); returns its update count."""
    conf = yaml.safe_load((MINI / CONFIG).read_text())
    found = digests(exp / "train.log")
    assert sorted(found) == list(range(first, EPOCHS + 1)), found
    assert all(ranks == 2 for ranks, _, _ in found.values())
    assert [updates for _, _, updates in found.values()] == [ITERS * e for e in range(first, EPOCHS + 1)]
    assert "ranks' models differ" not in (exp / "train.log").read_text()
    # rank 0 alone prints progress lines and writes checkpoints
    assert stderr.count("(train.log) epoch ") == EPOCHS - first + 1
    state = torch.load(exp / "checkpoint.pth", map_location="cpu", weights_only=False)
    updates = int(state["model"]["num_updates"])
    assert updates == EPOCHS * ITERS == int(state["schedulers"][0]["last_epoch"])
    names = sorted(int(p.name[: -len("updates.pth")]) for p in (exp / "checkpoints").glob("*updates.pth"))
    assert names == list(range(EVERY, updates + 1, EVERY)) + ([updates] if updates % EVERY else [])
    for n in names:  # each holds the model of its update count
        saved = torch.load(exp / "checkpoints" / f"{n}updates.pth", map_location="cpu", weights_only=False)
        assert int(saved["num_updates"]) == n
    # the Gumbel temperature of the last epoch's updates (the epoch's mean of the "temp" value)
    start, end, decay = conf["model_conf"]["config"]["latent_temp"]
    temps = [max(end, start * decay**u) for u in range(updates - ITERS, updates)]
    last = [line for line in (exp / "train.log").read_text().splitlines() if f"{EPOCHS}epoch results" in line][-1]
    temp = float(re.search(r"\[train\].*?\btemp=([0-9.]+)", last).group(1))
    assert min(temps) - 1e-3 <= temp <= max(temps) + 1e-3
    return updates


@pytest.mark.slow
def test_two_nodes_through_slurm_are_one_training(runs):
    exp, result = runs["nodes"]
    training = [line for line in runs["srun"] if "ssl_train" in line]
    assert len(training) == 1 and "--nodes 2 --ntasks-per-node 1" in training[0]
    assert "--dist_launcher slurm" in training[0] and f"--dist_init_method file://{exp}/.dist_init_" in training[0]
    check_one_training(exp, result.stderr)
    assert not list(exp.glob(".dist_init_*"))
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["dist_launcher"] == "slurm" and config["dist_backend"] == "gloo"


@pytest.mark.slow
def test_two_processes_killed_resume_to_the_model_of_the_uninterrupted_run(runs):
    exp, result, before = runs["one_node"]
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["num_procs"] == 2 and config["dist_backend"] == "gloo"
    assert 1 <= len(before) < EPOCHS
    log = (exp / "train.log").read_text()
    assert "The training was resumed using" in log
    resumed_at = min(digests(exp / "train.log"))
    assert resumed_at in (len(before), len(before) + 1)  # the epoch cut short is trained again
    check_one_training(exp, result.stderr, first=resumed_at)
    # epoch by epoch the model of 2 nodes x 1 process, before the kill and after it
    uninterrupted = digests(runs["nodes"][0] / "train.log")
    assert before == {e: uninterrupted[e] for e in before}
    assert digests(exp / "train.log") == {e: uninterrupted[e] for e in range(resumed_at, EPOCHS + 1)}


@pytest.mark.slow
def test_timings(runs, record_property):
    record_property("summary", ", ".join(f"{k} {v:.0f} s" for k, v in runs["timings"].items()))
