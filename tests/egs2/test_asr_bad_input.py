"""Bad input through the stage driver (stages 1-5): every bad utterance is excluded and
listed with a reason naming the file, the good ones all go on, nothing else is lost."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile

MINI = Path(__file__).resolve().parents[2] / "egs2" / "mini" / "asr1"

INJECT = r"""
# inject bad input into data/train after the real preparation
d=data/train
b=$(pwd)/bad_audio
for u in corrupt.flac empty.wav missing.wav rate8k.wav; do echo "bad-${u%%[.8]*} $b/$u" >> $d/wav.scp; done
printf 'bad-utf8 %s/good.wav\nbad-notext %s/good.wav\n' $b $b >> $d/wav.scp
printf 'bad-corrupt one\nbad-empty two\nbad-missing three\nbad-rate four\nbad-noaudio five\n' >> $d/text
printf 'bad-utf8 caf\xe9 \xff\n' >> $d/text
for u in corrupt empty missing rate utf8 notext noaudio; do echo "bad-$u bad" >> $d/utt2spk; done
"""


def make_recipe(tmp: Path, corpus: str = None) -> Path:
    recipe = tmp / "asr1"
    (recipe / "local").mkdir(parents=True)
    for name in ("asr.sh", "path.sh", "cmd.sh", "run.sh", "conf"):
        (recipe / name).symlink_to((MINI / name).resolve())
    db = f'MINI="{corpus}"\n' if corpus else (MINI / "db.sh").read_text()
    (recipe / "db.sh").write_text(db)
    data_sh = recipe / "local" / "data.sh"
    data_sh.write_text(f'#!/usr/bin/env bash\nset -euo pipefail\n{MINI}/local/data.sh "$@"\n{INJECT}')
    data_sh.chmod(0o755)
    bad = recipe / "bad_audio"
    bad.mkdir()
    (bad / "corrupt.flac").write_bytes(np.random.default_rng(0).bytes(4000))
    soundfile.write(bad / "empty.wav", np.zeros(0, dtype=np.int16), 16000)
    tone = (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32)
    soundfile.write(bad / "rate8k.wav", tone[:8000], 8000)
    soundfile.write(bad / "good.wav", tone, 16000)
    return recipe


def run(recipe, env, *args):
    return subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=900)


def listing(path: Path) -> dict:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, reason = line.replace("\t", " ").partition(" ")
        out[key] = reason
    return out


@pytest.mark.slow
def test_bad_utterances_are_listed_and_the_rest_goes_on(tmp_path, project_root, venv_env):
    recipe = make_recipe(tmp_path)
    env = dict(venv_env, ESPNET_EXT_ROOT=str(project_root))
    result = run(recipe, env, "--stage", "1", "--stop_stage", "5", "--expected_fs", "16000")
    assert result.returncode == 0, result.stderr[-4000:]

    dropped = listing(recipe / "data/train/.backup/dropped.txt")
    assert set(dropped) == {"bad-utf8", "bad-notext", "bad-noaudio"}
    assert "UTF-8" in dropped["bad-utf8"] and "text" in dropped["bad-utf8"]
    assert dropped["bad-notext"] == "no transcript" and dropped["bad-noaudio"] == "no audio"

    excluded = listing(recipe / "dump/raw/org/train/excluded.txt")
    assert set(excluded) == {"bad-corrupt", "bad-empty", "bad-missing", "bad-rate"}
    assert "corrupt.flac" in excluded["bad-corrupt"]
    assert "empty.wav" in excluded["bad-empty"]
    assert "missing.wav" in excluded["bad-missing"]
    assert "8000" in excluded["bad-rate"] and "16000" in excluded["bad-rate"]

    good = [line.split()[0] for line in (MINI / "../corpus/en/text").resolve().read_text().splitlines()]
    kept = {line.split()[0] for line in (recipe / "dump/raw/train/text").read_text().splitlines()}
    train = {line.split()[0] for line in (recipe / "data/train/text").read_text().splitlines()}
    assert not any(k.startswith("bad-") for k in kept)
    assert train - kept <= {"bad-corrupt", "bad-empty", "bad-missing", "bad-rate"}
    assert len(kept) > 0.6 * len(good)
    assert (recipe / "data/token_list/char/tokens.txt").is_file()


@pytest.mark.slow
def test_missing_corpus_dir_is_a_clear_error(tmp_path, project_root, venv_env):
    recipe = make_recipe(tmp_path, corpus=str(tmp_path / "nowhere"))
    env = dict(venv_env, ESPNET_EXT_ROOT=str(project_root))
    result = run(recipe, env, "--stage", "1", "--stop_stage", "1")
    assert result.returncode != 0
    assert f"{tmp_path}/nowhere/en/text not found" in result.stderr
    assert "db.sh" in result.stderr
