"""ssl.sh stage 2, the pre-training set (--exclude_texts_of, --concat / --concat_seconds with
--concat_audio files|pipes, --valid_percent): which sets it writes, that stages 3-4 read them,
and its option errors. The mini corpus in AISHELL-2's layout (prepared by the reader) is the
training set, AISHELL-1's dev and test (the same mini sentences) the reference sets. Seconds each."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

from espnet_ext.data.corpora import aishell, aishell2
from espnet_ext.data.kaldi_files import read_map
from tools import mini_layouts

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "egs2/mini/ssl1/conf/tuning/train_ssl_w2v2_tiny.yaml"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """data/{train,dev} (AISHELL-2's train and iOS dev) and data/{a1_dev,a1_test} (AISHELL-1's)."""
    tmp = tmp_path_factory.mktemp("corpora")
    mini_layouts.write_aishell2(mini_layouts.DEFAULT_CORPUS, tmp)
    mini_layouts.write_aishell(mini_layouts.DEFAULT_CORPUS, tmp)
    aishell2.prepare_aishell2(tmp, tmp / "a2")
    aishell.prepare_aishell(tmp, tmp / "a1")
    data = tmp / "data"
    for name, src in (("train", "a2/train"), ("dev", "a2/dev_ios"), ("a1_dev", "a1/dev"), ("a1_test", "a1/test")):
        shutil.copytree(tmp / src, data / name)
    return data


@pytest.fixture
def recipe(tmp_path, data) -> Path:
    recipe = tmp_path / "ssl1"
    recipe.mkdir()
    for name in ("ssl.sh", "path.sh", "cmd.sh"):
        (recipe / name).symlink_to((ROOT / "egs2/mini/ssl1" / name).resolve())
    shutil.copytree(data, recipe / "data")
    return recipe


def ssl(recipe: Path, env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    command = ["./ssl.sh", "--nj", "1", "--train_set", "train", "--ssl_config", str(TINY), *args]
    result = subprocess.run(command, cwd=recipe, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"ssl.sh {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    return result


@pytest.fixture
def env(venv_env):
    return dict(venv_env, ESPNET_EXT_ROOT=str(ROOT))


def _members(data_dir: Path) -> dict:
    return {
        utt: parts for utt, *parts in (line.split() for line in (data_dir / "members.txt").read_text().splitlines())
    }


def test_study_options_write_the_sets_stages_3_and_4_read(recipe, env):
    """--exclude_texts_of the AISHELL-1 sets, --concat 6 (files), --valid_percent 10, then stages 3-4."""
    ssl(
        recipe,
        env,
        *("--stage", "2", "--stop_stage", "4", "--valid_set", "dev"),
        *("--exclude_texts_of", "data/a1_dev data/a1_test", "--concat", "6", "--valid_percent", "10"),
        *("--min_wav_duration", "0.1", "--max_wav_duration", "100"),
    )
    train, valid = recipe / "data/train_pt", recipe / "data/train_pt_valid"
    texts = read_map(recipe / "data/train/text")
    refs = {**read_map(recipe / "data/a1_dev/text"), **read_map(recipe / "data/a1_test/text")}
    excluded = dict(line.split("\t") for line in (train / "excluded.txt").read_text().splitlines())
    assert set(excluded) == {u for u, t in texts.items() if t in refs.values()}
    assert not set(_members(train)) & set(_members(valid))
    members = {**_members(train), **_members(valid)}
    assert sorted(m for parts in members.values() for m in parts) == sorted(set(texts) - set(excluded))
    assert len(read_map(valid / "wav.scp")) == round(len(members) * 0.1)
    samples = read_map(recipe / "dump/raw/train_pt/utt2num_samples")  # stage 3 and 4 read the derived set
    scp = read_map(recipe / "data/train/wav.scp")
    for utt, parts in _members(train).items():
        assert int(samples[utt]) == sum(sf.info(scp[p]).frames for p in parts)
    assert (recipe / "dump/raw/train_pt_valid/wav.scp").is_file()
    assert not (recipe / "data/dev_pt").exists()  # --valid_set is not read: the held-out share replaces it


def test_concat_alone_joins_the_validation_set_too(recipe, env):
    options = ("--valid_set", "dev", "--concat", "3", "--concat_audio", "pipes")
    ssl(recipe, env, "--stage", "2", "--stop_stage", "3", *options)
    for name in ("train", "dev"):
        joined = recipe / "data" / f"{name}_pt"
        assert all(
            entry.startswith("sox ") or len(parts) == 1
            for entry, parts in zip(read_map(joined / "wav.scp").values(), _members(joined).values())
        )
        assert max(len(p) for p in _members(joined).values()) == 3
        assert (recipe / "dump/raw/org" / f"{name}_pt/wav.scp").is_file()  # stage 3 read it
    assert (recipe / "data/train_pt/excluded.txt").read_text() == ""
    again = ssl(recipe, env, "--stage", "2", "--stop_stage", "2", *options)
    assert again.stderr.count("already done: data/") == 2  # same inputs: skipped


def test_options_off_leave_the_sets_as_they_are(recipe, env):
    result = ssl(recipe, env, "--stage", "2", "--stop_stage", "2", "--valid_set", "dev")
    assert "Stage 2" not in result.stderr and not (recipe / "data/train_pt").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--valid_set", "dev", "--concat", "2", "--concat_seconds", "10"],
            "--concat and --concat_seconds: expected one",
        ),
        (["--concat", "2"], "--valid_set is required (or --valid_percent)"),
        (
            ["--valid_set", "dev", "--concat", "2", "--concat_audio", "links"],
            "--concat_audio links: expected files or pipes",
        ),
        (["--valid_set", "dev", "--exclude_texts_of", "data/nowhere"], "data/nowhere/text: not found"),
        (["--valid_set", "dev", "--concat", "six"], "--concat six: expected a whole number (0: off)"),
        (["--valid_set", "dev", "--valid_percent", "1%"], "--valid_percent 1%: expected a number (0: off)"),
    ],
)
def test_option_errors(recipe, env, args, message):
    result = ssl(recipe, env, "--stage", "2", "--stop_stage", "2", *args, check=False)
    assert result.returncode != 0 and message in result.stderr
