"""Training state that survives kills and bad files (espnet_ext.espnet.resume, Trainer.resume).

The unit tests build the files by hand. The training tests run what asr.sh stage 11 runs (the tiny
wav2vec 2.0 CTC config on 6 utterances, 3 epochs, every epoch file kept) and compare epoch files
bit for bit with an uninterrupted run's: after a resume from checkpoint.pth, after an unreadable
checkpoint.pth (resumed from checkpoint.prev.pth), after a kill inside the write of an epoch file
(the run writes it again from the checkpoint), and after a disk-full write (the run stops naming the
file; the previous state is intact and a re-run finishes the same). With neither checkpoint intact
the run goes on from the last epoch file's weights and says what is lost.
"""

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from espnet_ext.espnet import resume
from espnet_ext.espnet.resume import CHECKPOINT, PREVIOUS, newest_intact_state

ROOT = Path(__file__).resolve().parents[2]
ASR_TINY = ROOT / "egs2/mini/asr1/conf/tuning/train_asr_w2v2_tiny_ctc.yaml"


def full_state(epoch: int, value: float) -> dict:
    return {
        "model": {"w": torch.full((2,), value)},
        "reporter": {"stats": {}, "epoch": epoch},
        "optimizers": [],
        "schedulers": [],
        "scaler": None,
    }


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# ----------------------------------------------------------------------------- unit


def test_atomic_saves_keep_the_previous_checkpoint(tmp_path):
    with resume.atomic_torch_saves():
        for epoch in (1, 2):
            torch.save(full_state(epoch, epoch), tmp_path / CHECKPOINT)
            torch.save({"w": torch.full((2,), float(epoch))}, tmp_path / f"{epoch}epoch.pth")
    assert torch.save.__module__.startswith("torch")  # put back
    assert torch.load(tmp_path / CHECKPOINT)["reporter"]["epoch"] == 2
    assert torch.load(tmp_path / PREVIOUS)["reporter"]["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1epoch.pth", "2epoch.pth", PREVIOUS, CHECKPOINT]


def test_newest_intact_state_prefers_checkpoint_then_previous_then_epoch_files(tmp_path, caplog):
    torch.save(full_state(3, 3.0), tmp_path / CHECKPOINT)
    torch.save(full_state(2, 2.0), tmp_path / PREVIOUS)
    for epoch in (1, 2, 3):
        torch.save({"w": torch.full((2,), float(epoch))}, tmp_path / f"{epoch}epoch.pth")
    assert newest_intact_state(tmp_path).source.name == CHECKPOINT

    truncate(tmp_path / CHECKPOINT)
    with caplog.at_level(logging.ERROR):
        state = newest_intact_state(tmp_path)
    assert state.source.name == PREVIOUS and state.states["reporter"]["epoch"] == 2
    (moved,) = tmp_path.glob(f"{CHECKPOINT}.bad-*")  # moved aside, not deleted
    assert str(tmp_path / CHECKPOINT) in caplog.text and "PytorchStreamReader" in caplog.text

    truncate(tmp_path / PREVIOUS)
    truncate(tmp_path / "3epoch.pth")
    state = newest_intact_state(tmp_path)
    assert state.source.name == "2epoch.pth" and state.epoch == 2 and state.states is None
    assert torch.equal(state.weights["w"], torch.full((2,), 2.0))
    assert {p.name.split(".bad-")[0] for p in tmp_path.glob("*.bad-*")} == {CHECKPOINT, PREVIOUS, "3epoch.pth"}


def test_a_state_that_is_not_a_checkpoint_is_not_resumed_from(tmp_path):
    torch.save({"model": {}}, tmp_path / CHECKPOINT)  # no reporter, optimizers ...
    assert newest_intact_state(tmp_path, move=False) is None
    assert (tmp_path / CHECKPOINT).exists()  # move=False: another rank's view, nothing moved


def test_missing_checkpoint_is_restored_from_the_previous_one(tmp_path):
    torch.save(full_state(1, 1.0), tmp_path / PREVIOUS)
    resume.restore_missing_checkpoint(tmp_path)
    assert torch.load(tmp_path / CHECKPOINT)["reporter"]["epoch"] == 1


def test_epoch_files_without_any_checkpoint_are_not_overwritten_from_scratch(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "1epoch.pth")
    with pytest.raises(ValueError, match="1epoch.pth"):
        resume.restore_missing_checkpoint(tmp_path)
    resume.restore_missing_checkpoint(tmp_path / "new")  # nothing there: a fresh start


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def train_command(tmp_path_factory, tiny_asr_data):
    """``train_command(exp, max_epoch)``: the training command line."""
    data = tiny_asr_data(tmp_path_factory.mktemp("data"))

    def command(exp: Path, max_epoch: int):
        return [
            sys.executable,
            "-m",
            "espnet_ext.bin.asr_train",
            "--config",
            str(ASR_TINY),
            "--max_epoch",
            str(max_epoch),
            "--output_dir",
            str(exp),
            "--use_preprocessor",
            "true",
            "--ngpu",
            "0",
            "--batch_type",
            "unsorted",
            "--batch_size",
            "3",
            "--num_att_plot",
            "0",
            "--resume",
            "true",
            "--keep_nbest_models",
            "10",
            "--use_matplotlib",
            "false",
            *data,
        ]

    return command


@pytest.fixture(scope="module")
def train(train_command, venv_env):
    """``train(exp, max_epoch, fault=None, check=True)``: run the training; the finished process."""
    env = dict(venv_env, OMP_NUM_THREADS="1")

    def run(exp: Path, max_epoch: int, fault: str = None, check: bool = True):
        run_env = dict(env, ESPNET_EXT_FAULT=fault) if fault else env
        result = subprocess.run(train_command(exp, max_epoch), capture_output=True, text=True, env=run_env, timeout=600)
        if check:
            assert result.returncode == 0, result.stderr[-4000:]
        return result

    return run


@pytest.fixture(scope="module")
def reference(train, tmp_path_factory):
    """An uninterrupted 3-epoch run: {epoch: state dict}."""
    exp = tmp_path_factory.mktemp("reference") / "exp"
    train(exp, 3)
    return {e: torch.load(exp / f"{e}epoch.pth", weights_only=True) for e in (1, 2, 3)}


def assert_same(exp: Path, reference, epochs=(1, 2, 3)):
    for epoch in epochs:
        state = torch.load(exp / f"{epoch}epoch.pth", weights_only=True)
        assert state.keys() == reference[epoch].keys()
        different = [k for k in state if not torch.equal(state[k], reference[epoch][k])]
        assert not different, f"{epoch}epoch.pth differs from the uninterrupted run's: {different[:5]}"


@pytest.mark.slow
def test_resume_from_a_bad_checkpoint_uses_the_previous_one_bit_for_bit(train, reference, tmp_path):
    exp = tmp_path / "exp"
    train(exp, 2)
    assert torch.load(exp / PREVIOUS, weights_only=False)["reporter"]["epoch"] == 1
    truncate(exp / CHECKPOINT)
    result = train(exp, 3)
    log = result.stderr
    assert f"Cannot resume from {exp / CHECKPOINT}" in log and "failed finding central directory" in log
    assert f"The training was resumed using {exp / PREVIOUS}" in log
    assert len(list(exp.glob(f"{CHECKPOINT}.bad-*"))) == 1
    assert_same(exp, reference)  # epoch 2 trained again, the same bits


@pytest.mark.slow
def test_kill_inside_an_epoch_file_write_is_repaired_on_resume(train_command, train, reference, venv_env, tmp_path):
    """SIGKILL while 2epoch.pth is half written (after checkpoint.pth of epoch 2 landed): the re-run
    resumes at epoch 3, writes 2epoch.pth again from the checkpoint and removes the temporary."""
    exp = tmp_path / "exp"
    env = dict(venv_env, OMP_NUM_THREADS="1", ESPNET_EXT_FAULT="pause:2epoch.pth:120")
    proc = subprocess.Popen(
        train_command(exp, 3), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 300
    while not list(exp.glob("2epoch.pth.tmp.*.paused")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "training ended before the paused write"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (exp / "2epoch.pth").exists() and list(exp.glob("2epoch.pth.tmp.*"))
    assert torch.load(exp / CHECKPOINT, weights_only=False)["reporter"]["epoch"] == 2
    log = train(exp, 3).stderr
    assert "wrote 2epoch.pth, latest.pth" in log
    assert_same(exp, reference)
    assert not list(exp.glob("*.tmp.*"))


@pytest.mark.slow
def test_disk_full_stops_naming_the_file_and_keeps_the_previous_state(train, reference, tmp_path):
    exp = tmp_path / "exp"
    failed = train(exp, 3, fault="enospc:checkpoint.pth:2", check=False)
    assert failed.returncode != 0
    assert f"Could not write {exp / CHECKPOINT}: OSError: [Errno 28] No space left on device" in failed.stderr
    assert torch.load(exp / CHECKPOINT, weights_only=False)["reporter"]["epoch"] == 1  # the previous state
    assert not list(exp.glob("*.tmp.*")) and not (exp / "2epoch.pth").exists()
    train(exp, 3)
    assert_same(exp, reference)


@pytest.mark.slow
def test_without_an_intact_checkpoint_training_goes_on_from_the_last_epoch_file(train, reference, tmp_path):
    exp = tmp_path / "exp"
    train(exp, 2)
    truncate(exp / CHECKPOINT)
    (exp / PREVIOUS).unlink()
    log = train(exp, 3).stderr
    assert "resuming from 2epoch.pth, the model weights after epoch 2 only; training goes on at epoch 3" in log
    assert "optimizer's state" in log and "reporter's history" in log
    (kept,) = exp.glob("epochs_before_resume-*")  # ESPnet's n-best pruning removed them from exp
    assert sorted(p.name for p in kept.iterdir()) == ["1epoch.pth", "2epoch.pth"]
    assert_same(kept, reference, epochs=(1, 2))  # the epochs before, untouched
    state = torch.load(exp / CHECKPOINT, weights_only=False)
    assert state["reporter"]["epoch"] == 3 and sorted(state["reporter"]["stats"]) == [3]


@pytest.mark.slow
def test_a_finished_run_with_a_torn_checkpoint_reruns_without_error(train, reference, tmp_path):
    """The reported failure: a finished experiment whose checkpoint.pth is cut to half (no
    checkpoint.prev.pth, as runs before it had none); re-running the training stage succeeds."""
    exp = tmp_path / "exp"
    train(exp, 3)
    (exp / PREVIOUS).unlink()
    truncate(exp / CHECKPOINT)
    log = train(exp, 3).stderr
    assert f"Cannot resume from {exp / CHECKPOINT}" in log and "resuming from 3epoch.pth" in log
    assert_same(exp, reference)
