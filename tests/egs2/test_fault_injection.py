"""Fault injection: the mini recipes killed at seeded moments, re-run, and compared with an uninterrupted run.

Each test runs a recipe once without interruption (the reference), then runs the same command in
a second copy of the recipe and kills it (SIGKILL to the whole process group: driver, launcher,
trainer, decoders) at each kill point in turn, re-running the same command after every kill;
the last run goes to the end. It must finish, and its results must equal the reference's bit for
bit: the epoch files and the averaged model (state dicts), the decoded text, RESULTS.md (but for
its date line), the packed model's files; for pre-training every ``<N>updates.pth``, the
checkpoint and the exported backbone.

A kill point is a stage and a trigger: ``delay`` kills a seeded random time after the driver
logged the stage's start (wherever the run then is: the stage, or a later one when the stage was
quicker); ``pause`` sets ``ESPNET_EXT_FAULT=pause:<file>:...`` (:mod:`espnet_ext.core.atomic`) so
that the write of that file stalls half written, and kills in the stall. Each kill is printed
(planned stage, the stage running at the kill, seconds after its start, trigger).

``FAULT_SEED`` (default 0) seeds the delays; ``FAULT_LONG=1`` adds kill points (CI runs 10 in the
fine-tuning recipe and 3 in pre-training, in a few minutes on 2 cores).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
import zipfile
from pathlib import Path
from typing import NamedTuple

import pytest
import torch

SEED = int(os.environ.get("FAULT_SEED", "0"))
LONG = os.environ.get("FAULT_LONG", "") == "1"
PAUSE_S = 300  # a paused write waits this long for its kill


class KillPoint(NamedTuple):
    stage: int
    trigger: str  # "delay" or "pause"
    arg: object  # delay: (low, high) seconds after the stage's start; pause: the file name (glob)


ASR_POINTS = [
    KillPoint(3, "delay", (0.0, 0.6)),
    KillPoint(3, "pause", "utt2num_samples"),
    KillPoint(11, "delay", (2.0, 8.0)),
    KillPoint(11, "pause", "checkpoint.pth"),
    KillPoint(11, "pause", "*epoch.pth"),
    KillPoint(11, "delay", (4.0, 12.0)),
    KillPoint(12, "pause", "last*.ave.pth"),
    KillPoint(12, "delay", (3.0, 12.0)),
    KillPoint(13, "pause", "RESULTS.md"),
    KillPoint(14, "pause", "packed_model.zip"),
]
ASR_LONG_POINTS = [
    KillPoint(4, "delay", (0.0, 0.5)),
    KillPoint(5, "delay", (0.0, 3.0)),
    KillPoint(10, "delay", (0.0, 10.0)),
    KillPoint(11, "pause", "checkpoint.prev.pth"),  # never written by replacing itself: a hard link
    KillPoint(12, "pause", "text"),
    KillPoint(13, "pause", "result.txt"),
    KillPoint(14, "delay", (0.0, 15.0)),
]
SSL_POINTS = [
    KillPoint(11, "pause", "*updates.pth"),
    KillPoint(11, "delay", (3.0, 12.0)),
    KillPoint(11, "pause", "checkpoint.pth"),
]
SSL_LONG_POINTS = [
    KillPoint(3, "delay", (0.0, 1.0)),
    KillPoint(11, "pause", "*epoch.pth"),
    KillPoint(12, "pause", "backbone.pth"),
    KillPoint(13, "delay", (0.0, 5.0)),
]
ASR_POINTS_USED = ASR_POINTS + (ASR_LONG_POINTS if LONG else [])
SSL_POINTS_USED = SSL_POINTS + (SSL_LONG_POINTS if LONG else [])

_STAGE_LINE = re.compile(r"^(\S+) \(\w+\.sh:\d+:main\) Stage (\d+):", re.M)


def link_recipe(source: Path, dest: Path, names) -> Path:
    dest.mkdir(parents=True)
    for name in names:
        (dest / name).symlink_to((source / name).resolve())
    return dest


class Attempt(NamedTuple):
    killed: bool
    description: str


def stage_starts(log: Path) -> list[int]:
    """The stage numbers the driver logged in ``log`` so far ("Stage N: ..."), in order."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return [int(m.group(2)) for m in _STAGE_LINE.finditer(text)]


def run_until_killed(recipe: Path, args, env: dict, point: KillPoint, rng: random.Random, log: Path) -> Attempt:
    """Run ``./run.sh args`` and kill it at ``point``; the attempt's outcome."""
    run_env = dict(env)
    if point.trigger == "pause":
        run_env["ESPNET_EXT_FAULT"] = f"pause:{point.arg}:{PAUSE_S}"
        delay = None
    else:
        delay = rng.uniform(*point.arg)
    with open(log, "w") as err:
        proc = subprocess.Popen(
            ["./run.sh", *args], cwd=recipe, env=run_env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
        )
    seen = {}  # stage -> time first seen
    stale = set(recipe.rglob("*.tmp.*.paused"))  # left by the kill of an earlier attempt
    deadline = time.time() + 900
    try:
        while proc.poll() is None and time.time() < deadline:
            for stage in stage_starts(log):
                seen.setdefault(stage, time.time())
            if delay is not None and point.stage in seen and time.time() >= seen[point.stage] + delay:
                break
            if delay is None and set(recipe.rglob("*.tmp.*.paused")) - stale:
                break
            time.sleep(0.05)
        else:
            return Attempt(False, f"not killed: the run ended (exit {proc.returncode}) before the trigger")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    now = time.time()
    for stage in stage_starts(log):
        seen.setdefault(stage, now)
    running = max(seen, key=seen.get) if seen else None
    at = f"stage {running}, {now - seen[running]:.2f} s after its start" if running is not None else "before stage 1"
    paused = sorted(str(p.relative_to(recipe))[: -len(".paused")] for p in set(recipe.rglob("*.tmp.*.paused")) - stale)
    how = (
        f"{delay:.2f} s after stage {point.stage} started"
        if delay is not None
        else f"inside the write of {', '.join(paused)}"
    )
    return Attempt(True, f"killed in {at}: {how}")


def chain_of_kills(recipe: Path, args, env: dict, points, logs: Path, report) -> None:
    """Kill at each of ``points`` in turn, then run to the end; every kill reported."""
    rng = random.Random(SEED)
    logs.mkdir()
    for i, point in enumerate(points, 1):
        attempt = run_until_killed(recipe, args, env, point, rng, logs / f"attempt{i}.log")
        report(
            f"kill point {i}/{len(points)} (seed {SEED}) planned stage {point.stage} {point.trigger} "
            f"{point.arg}: {attempt.description}"
        )
        assert attempt.killed, (logs / f"attempt{i}.log").read_text()[-3000:]
    final = subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=1800)
    assert final.returncode == 0, f"the re-run after the last kill failed:\n{final.stderr[-5000:]}"
    report(f"re-run after the last kill: finished ({final.stderr.strip().splitlines()[-1]})")


def assert_same_state(path: Path, reference: Path) -> None:
    mine, theirs = (torch.load(p, map_location="cpu", weights_only=False) for p in (path, reference))
    if isinstance(theirs, dict) and "model" in theirs and isinstance(theirs["model"], dict):
        mine, theirs = mine["model"], theirs["model"]  # a backbone export / training checkpoint: its model
    assert mine.keys() == theirs.keys(), path
    different = [k for k in theirs if isinstance(theirs[k], torch.Tensor) and not torch.equal(mine[k], theirs[k])]
    assert not different, f"{path} differs from the uninterrupted run's {reference}: {different[:5]}"


def without_date(results_md: Path) -> str:
    return re.sub(r"^- date: .*$", "- date: (removed)", results_md.read_text(encoding="utf-8"), flags=re.M)


@pytest.fixture
def report(capsys, request):
    """``report(line)``: print it now (without xdist) and list it at the end of the run (tests/conftest.py)."""

    def say(line: str) -> None:
        request.node.user_properties.append(("summary", line))
        with capsys.disabled():
            print(line, flush=True)

    return say


# --------------------------------------------------------------------------- fine-tuning (asr1)

ASR_FILES = ("asr.sh", "path.sh", "cmd.sh", "db.sh", "run.sh", "conf", "local")


@pytest.mark.slow
def test_mini_asr1_survives_kills_in_every_stage(project_root, venv_env, tiny_ctc_config, tmp_path, report):
    config = tiny_ctc_config(max_epoch=3)
    args = ("--asr_config", str(config), "--asr_tag", "tiny", "--average", "last:2", "--nj", "1", "--inference_nj", "2")
    env = dict(venv_env, ESPNET_EXT_ROOT=str(project_root))
    source = project_root / "egs2/mini/asr1"
    reference = link_recipe(source, tmp_path / "reference", ASR_FILES)
    start = time.time()
    result = subprocess.run(["./run.sh", *args], cwd=reference, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-5000:]
    report(f"uninterrupted run: {time.time() - start:.0f} s")
    killed = link_recipe(source, tmp_path / "killed", ASR_FILES)
    start = time.time()
    chain_of_kills(killed, args, env, ASR_POINTS_USED, tmp_path / "logs", report)
    report(f"{len(ASR_POINTS_USED)} kills and the re-runs: {time.time() - start:.0f} s")
    compare_asr(killed / "exp/asr_tiny", reference / "exp/asr_tiny")
    for name in ("train", "dev", "test"):
        for file in ("text", "wav.scp", "utt2num_samples"):
            assert (killed / "dump/raw" / name / file).read_text() == (reference / "dump/raw" / name / file).read_text()


def compare_asr(exp: Path, reference: Path) -> None:
    for name in ("2epoch.pth", "3epoch.pth", "last2.ave.pth", "checkpoint.pth"):
        assert_same_state(exp / name, reference / name)
    decodes = sorted(p.relative_to(reference) for p in reference.glob("decode_*/*/text"))
    assert decodes
    for text in decodes:
        assert (exp / text).read_text() == (reference / text).read_text(), text
    assert without_date(exp / "RESULTS.md") == without_date(reference / "RESULTS.md")
    with zipfile.ZipFile(exp / "packed_model.zip") as mine, zipfile.ZipFile(reference / "packed_model.zip") as theirs:
        assert sorted(mine.namelist()) == sorted(theirs.namelist())
        for name in theirs.namelist():
            if name.endswith(".pth"):
                continue  # compared as state dicts below
            data = mine.read(name)
            expected = theirs.read(name)
            if name.endswith(("RESULTS.md", "meta.yaml")):  # the date of scoring, the time of packing
                data, expected = (re.sub(rb"(- date|timestamp): .*", b"", d) for d in (data, expected))
            assert data == expected, name
    with zipfile.ZipFile(exp / "packed_model.zip") as z:
        (member,) = [n for n in z.namelist() if n.endswith(".pth")]
        unpacked = exp.parent / "unpacked.pth"
        unpacked.write_bytes(z.read(member))
    assert_same_state(unpacked, reference / "last2.ave.pth")


# --------------------------------------------------------------------------- pre-training (ssl1)

SSL_FILES = ("ssl.sh", "path.sh", "cmd.sh", "db.sh", "run.sh", "conf", "local")


@pytest.mark.slow
def test_mini_ssl1_survives_kills_in_pretraining(project_root, venv_env, tmp_path, report):
    args = (
        "--ssl_config",
        "conf/tuning/train_ssl_w2v2_tiny.yaml",
        "--local_data_opts",
        "--synth_utts 0 --langs en",
        "--ssl_args",
        "--max_epoch 2",
        "--save_every_updates",
        "5",
    )
    env = dict(venv_env, ESPNET_EXT_ROOT=str(project_root))
    source = project_root / "egs2/mini/ssl1"
    reference = link_recipe(source, tmp_path / "reference", SSL_FILES)
    start = time.time()
    result = subprocess.run(["./run.sh", *args], cwd=reference, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-5000:]
    report(f"uninterrupted run: {time.time() - start:.0f} s")
    killed = link_recipe(source, tmp_path / "killed", SSL_FILES)
    start = time.time()
    chain_of_kills(killed, args, env, SSL_POINTS_USED, tmp_path / "logs", report)
    report(f"{len(SSL_POINTS_USED)} kills and the re-runs: {time.time() - start:.0f} s")
    (exp,) = (killed / "exp").glob("ssl_train_*")
    ref_exp = reference / "exp" / exp.name
    saved = sorted(p.name for p in (ref_exp / "checkpoints").glob("*updates.pth"))
    assert saved and sorted(p.name for p in (exp / "checkpoints").glob("*updates.pth")) == saved
    for name in saved:
        assert_same_state(exp / "checkpoints" / name, ref_exp / "checkpoints" / name)
    for name in ("checkpoint.pth", "backbone.pth", "2epoch.pth"):
        assert_same_state(exp / name, ref_exp / name)
