"""Integration: egs2/aishell/ssl1 with AISHELL-2 (the mini corpus in its released layout), stages
1-11 as ``run.sh --aishell2 DIR`` runs them: Mandarin-Wav2Vec2's pre-training set (AISHELL-1
dev/test sentences left out, 6 consecutive files of a speaker joined, 1 % held out for
validation), then a tiny pre-training of two epochs on it. AISHELL-1 is the mini corpus in its own
layout; its held-out speakers read the same sentences as two AISHELL-2 speakers (and a few
sentences recur elsewhere), so those utterances are the ones left out. One to two minutes on 2 cores.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import soundfile as sf

from espnet_ext.data.kaldi_files import read_map, sort_key
from tools import mini_layouts

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "egs2/mini/ssl1/conf/tuning/train_ssl_w2v2_tiny.yaml"
SSL_FILES = ("ssl.sh", "path.sh", "cmd.sh", "run.sh", "conf", "local", "db.sh")


@pytest.fixture(scope="module")
def recipe_run(corpus_recipe, run_recipe, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("aishell_ssl1")
    mini_layouts.write_aishell(mini_layouts.DEFAULT_CORPUS, tmp / "db")
    aishell2 = mini_layouts.write_aishell2(mini_layouts.DEFAULT_CORPUS, tmp / "a2").path
    corpus_recipe("aishell", tmp / "aishell/asr1", f"AISHELL={tmp / 'db'}\n")
    ssl1 = tmp / "aishell/ssl1"
    ssl1.mkdir()
    for name in SSL_FILES:
        (ssl1 / name).symlink_to(ROOT / "egs2/aishell/ssl1" / name)
    args = ("--aishell2", str(aishell2), "--stage", "1", "--stop_stage", "11", "--ngpu", "0", "--nj", "1")
    tiny = ("--ssl_config", str(TINY), "--ssl_args", "--max_epoch 2 --save_every_updates 4")
    result = run_recipe(ssl1, *args, *tiny)
    return ssl1, aishell2, result


def _pairs(path: Path) -> dict:
    return dict(line.split("\t") for line in path.read_text(encoding="utf-8").splitlines())


def _members(data: Path) -> dict:
    return {u: parts for u, *parts in (line.split() for line in (data / "members.txt").read_text().splitlines())}


@pytest.mark.slow
def test_aishell1_dev_test_sentences_are_left_out_and_listed(recipe_run):
    ssl1, _, _ = recipe_run
    a2_text = read_map(ssl1 / "data/aishell2/train/text")
    refs = {name: read_map(ssl1 / "data" / name / "text") for name in ("dev", "test")}
    sentences = {t for texts in refs.values() for t in texts.values()}
    expected = {u for u, t in a2_text.items() if t in sentences}
    assert len(expected) > 30  # the two held-out speakers' 30 utterances and sentences recurring elsewhere
    excluded = _pairs(ssl1 / "data/ssl_train_pt/excluded.txt")
    assert set(excluded) == expected
    for utt, reason in excluded.items():
        prefix, _, where = reason.partition(" as ")
        ref_utt, _, ref_dir = where.partition(" in data/")
        assert prefix == "same transcript (white space ignored)" and refs[ref_dir][ref_utt] == a2_text[utt]
    # the pre-training audio is AISHELL-2's alone (Mandarin-Wav2Vec2's set-up)
    assert set(read_map(ssl1 / "data/ssl_train/wav.scp")) == set(a2_text)


@pytest.mark.slow
def test_groups_are_six_consecutive_files_of_a_speaker_and_last_as_long(recipe_run):
    ssl1, aishell2, _ = recipe_run
    utt2spk = read_map(ssl1 / "data/aishell2/train/utt2spk")
    scp = read_map(ssl1 / "data/aishell2/train/wav.scp")
    excluded = _pairs(ssl1 / "data/ssl_train_pt/excluded.txt")
    members = {**_members(ssl1 / "data/ssl_train_pt"), **_members(ssl1 / "data/ssl_train_pt_valid")}
    kept = sorted((u for u in utt2spk if u not in excluded), key=sort_key)
    assert sorted((m for parts in members.values() for m in parts), key=sort_key) == kept  # each once
    by_speaker: dict = {}
    for utt in kept:
        by_speaker.setdefault(utt2spk[utt], []).append(utt)
    expected = []  # each speaker's kept files in id order, 6 at a time, the rest last
    for utts in by_speaker.values():
        expected += [utts[i : i + 6] for i in range(0, len(utts), 6)]
    assert sorted(members.values()) == sorted(expected)
    samples = {
        **read_map(ssl1 / "dump/raw/org/ssl_train_pt/utt2num_samples"),
        **read_map(ssl1 / "dump/raw/org/ssl_train_pt_valid/utt2num_samples"),
    }
    for utt, parts in members.items():
        assert len({utt2spk[p] for p in parts}) == 1  # never across speakers
        assert int(samples[utt]) == sum(sf.info(scp[p]).frames for p in parts)  # all 16 kHz: no resampling
    assert all(Path(p).is_relative_to(aishell2) for p in scp.values())


@pytest.mark.slow
def test_one_percent_held_out_seeded_and_disjoint(recipe_run):
    ssl1, _, _ = recipe_run
    train = read_map(ssl1 / "data/ssl_train_pt/wav.scp")
    valid = read_map(ssl1 / "data/ssl_train_pt_valid/wav.scp")
    groups = sorted({**train, **valid}, key=sort_key)
    k = max(1, round(len(groups) / 100))
    assert len(valid) == k and len(train) == len(groups) - k and not set(train) & set(valid)
    assert set(valid) == {groups[i] for i in random.Random(0).sample(range(len(groups)), k)}  # --valid_seed 0
    # the pre-training validates on the held-out share, not on AISHELL-1's dev (data/ssl_dev)
    (stats,) = (ssl1 / "exp").glob("ssl_stats_ssl_train_pt_*")
    assert set(read_map(stats / "valid/speech_shape")) == set(valid)
    assert set(read_map(stats / "train/speech_shape")) <= set(train)


@pytest.mark.slow
def test_tiny_pretraining_ran_on_the_set(recipe_run):
    ssl1, _, result = recipe_run
    (exp,) = (ssl1 / "exp").glob("ssl_train_ssl_w2v2_tiny*")
    log = (exp / "train.log").read_text(errors="replace")
    assert "2epoch results" in log and "ssl_train_pt_valid/wav.scp" in log
    assert list((exp / "checkpoints").glob("*updates.pth"))
    assert "Stage 2: pre-training set data/ssl_train_pt from data/ssl_train" in result.stderr
