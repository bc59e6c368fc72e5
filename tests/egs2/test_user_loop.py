"""The user's loop on the mini recipe: run stages 10-13, edit the tuning config, run them again,
decode with other options, re-run unchanged.

A result is keyed by its inputs: an edited config trains a new experiment beside the old one (which
stays as it was), other inference options decode again into their own directory, and a re-run
with nothing changed skips every step in seconds. The config is the mini recipe's own, cut to a
few epochs so that the loop runs in a few minutes.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

TUNING = "tuning/train_asr_w2v2_mini_ctc.yaml"
COMMON = ("--average", "last:2", "--inference_nj", "1", "--nj", "1")


def run(recipe: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["./run.sh", *COMMON, *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, f"run.sh {' '.join(args)} failed:\n{result.stderr[-5000:]}"
    return result


def set_max_epoch(recipe: Path, epochs: int) -> None:
    """Edit the tuning config as a user would: the max_epoch line, comments kept."""
    path = recipe / "conf" / TUNING
    text, n = re.subn(r"(?m)^max_epoch:\s*\d+", f"max_epoch: {epochs}", path.read_text())
    assert n == 1
    path.write_text(text)


def experiments(recipe: Path):
    return sorted(p.name for p in (recipe / "exp").glob("asr_*") if not p.name.startswith("asr_stats"))


def snapshot(directory: Path) -> dict:
    """Every file under ``directory`` with its modification time."""
    return {str(p.relative_to(directory)): p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def loop(project_root, venv_env, tmp_path_factory):
    recipe = tmp_path_factory.mktemp("loop") / "asr1"
    source = project_root / "egs2/mini/asr1"
    recipe.mkdir()
    for name in ("asr.sh", "path.sh", "cmd.sh", "db.sh", "run.sh", "local"):
        (recipe / name).symlink_to((source / name).resolve())
    shutil.copytree(source / "conf", recipe / "conf")  # the user's own copy to edit (links followed)
    (recipe / "conf/train_asr.yaml").unlink()
    (recipe / "conf/train_asr.yaml").symlink_to(TUNING)
    env = dict(venv_env, ESPNET_EXT_ROOT=str(project_root))
    set_max_epoch(recipe, 2)
    first = run(recipe, env, "--stop_stage", "13")
    return recipe, env, first


@pytest.mark.slow
def test_an_unchanged_rerun_skips_every_step_in_seconds(loop):
    recipe, env, _ = loop
    (exp,) = experiments(recipe)
    before = snapshot(recipe / "exp" / exp)
    start = time.time()
    again = run(recipe, env, "--stage", "10", "--stop_stage", "13")
    elapsed = time.time() - start
    print(f"unchanged stages 10-13: {elapsed:.1f} s")
    # statistics, training, two test sets' decoding, their CER and WER scoring
    assert again.stderr.count("already done") == 8, again.stderr
    assert experiments(recipe) == [exp]
    assert snapshot(recipe / "exp" / exp) == before  # nothing rewritten
    assert elapsed < 60, again.stderr


@pytest.mark.slow
def test_an_edited_config_trains_a_new_experiment_beside_the_old(loop):
    recipe, env, _ = loop
    old = "asr_train_asr_w2v2_mini_ctc_char"  # the config's name (that conf/train_asr.yaml links to), the tokens
    old_dir = recipe / "exp" / old
    old_files = snapshot(old_dir)
    old_results = (old_dir / "RESULTS.md").read_text()
    set_max_epoch(recipe, 3)
    edited = run(recipe, env, "--stage", "10", "--stop_stage", "13")
    new = sorted(set(experiments(recipe)) - {old})
    assert len(new) == 1 and new[0].startswith(old + "_"), experiments(recipe)
    new_dir = recipe / "exp" / new[0]
    assert re.search(r"config: max_epoch 2 -> 3\b.*using exp/" + new[0], edited.stderr), edited.stderr
    assert f"already done: exp/{new[0]} " not in edited.stderr
    record = json.loads((new_dir / "inputs.json").read_text())
    assert record["inputs"]["config"]["value"]["max_epoch"] == 3
    assert (new_dir / "3epoch.pth").is_file() and (new_dir / ".done_train").is_file()
    # the old experiment is untouched, and the new one has its own results
    assert {k: v for k, v in snapshot(old_dir).items() if k in old_files} == old_files
    assert not (old_dir / "3epoch.pth").exists()
    assert (old_dir / "RESULTS.md").read_text() == old_results
    assert (new_dir / "last2.ave.pth").read_bytes() != (old_dir / "last2.ave.pth").read_bytes()
    assert (new_dir / "RESULTS.md").read_text() != old_results
    # the table of every experiment: a row each, the setting that differs as a column
    table = (recipe / "exp/RESULTS_experiments.md").read_text()
    assert f"|{old}|2|" in table and f"|{new[0]}|3|" in table and "|max_epoch|" in table, table
    # back to the first config: the first experiment again, nothing trained
    set_max_epoch(recipe, 2)
    back = run(recipe, env, "--stage", "11", "--stop_stage", "11")
    assert f"already done: exp/{old} " in back.stderr
    set_max_epoch(recipe, 3)


@pytest.mark.slow
def test_other_inference_options_decode_again_into_their_own_directory(loop):
    recipe, env, _ = loop
    beam = ("--stage", "12", "--stop_stage", "13", "--inference_config", "conf/decode_ctc_beam.yaml")
    one = run(recipe, env, *beam, "--inference_args", "--beam_size 1", "--asr_exp_file", "exp_name")
    four = run(recipe, env, *beam, "--inference_args", "--beam_size 4")
    for result in (one, four):
        assert "already done" not in result.stderr
    exp = recipe / (recipe / "exp_name").read_text().strip()
    dirs = sorted(p.name for p in exp.glob("decode_ctc_beam*"))
    assert dirs == ["decode_ctc_beam_beam_size1_last2.ave", "decode_ctc_beam_beam_size4_last2.ave"], dirs
    for d in dirs:
        record = json.loads((exp / d / "inputs.json").read_text())
        assert record["inputs"]["inference_args"]["value"] == f"--beam_size {d[len('decode_ctc_beam_beam_size')]}"
        assert (exp / d / "test/score_cer/result.txt").is_file()
    # the same options again: nothing decoded
    again = run(recipe, env, *beam, "--inference_args", "--beam_size 4")
    assert again.stderr.count("already done") == 6, again.stderr  # 2 sets' decoding, CER and WER scoring
    # the decoding config's content is an input too: an edited beam config decodes again, beside
    (recipe / "conf/decode_ctc_beam.yaml").write_text(
        (recipe / "conf/decode_ctc_beam.yaml").read_text().replace("penalty: 0.0", "penalty: 0.5")
    )
    penalty = run(recipe, env, *beam, "--inference_args", "--beam_size 4")
    assert "inference_config: penalty 0.0 -> 0.5" in penalty.stderr, penalty.stderr
    assert len(list(exp.glob("decode_ctc_beam_beam_size4_last2.ave_*"))) == 1
