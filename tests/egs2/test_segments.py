"""Integration: egs2/mini/asr1 stages 1-5 on the mini corpus laid out as long recordings with a
``segments`` file (``tools.mini_layouts.write_mini_recordings``, one recording per speaker, two bad
segments added).

Stage 1 keeps the segments (and drops the one whose end is before its start, listed in
``.backup/dropped.txt``); stage 3 cuts one audio file per utterance, sample for sample the mini
corpus's own utterance, and excludes the segment that ends beyond its recording (listed in
``excluded.txt``); stages 4-5 run on the cut audio as on the usual layout.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from espnet_ext.data.kaldi_files import read_map
from tools import mini_layouts

# where stage 3 writes each set (train and dev are filtered by stage 4 afterwards)
DUMPS = {"train": "dump/raw/org/train", "dev": "dump/raw/org/dev", "test": "dump/raw/test"}


@pytest.fixture(scope="module")
def recipe_run(corpus_recipe, run_recipe, tmp_path_factory):
    corpus = mini_layouts.write_mini_recordings(
        mini_layouts.DEFAULT_CORPUS, tmp_path_factory.mktemp("corpus"), bad_segments=True
    ).path
    recipe = corpus_recipe("mini", tmp_path_factory.mktemp("dir") / "asr1", f"MINI={corpus}\n")
    run_recipe(recipe, "--nj", "2", "--stage", "1", "--stop_stage", "5")
    return recipe


@pytest.mark.slow
def test_stage1_keeps_the_segments_and_lists_the_bad_one(recipe_run):
    data = recipe_run / "data"
    for name in ("train", "dev", "test"):
        segments = read_map(data / name / "segments")
        recordings = {value.split()[0] for value in segments.values()}
        assert set(read_map(data / name / "wav.scp")) == recordings
    dropped = (data / "train" / ".backup" / "dropped.txt").read_text().splitlines()
    assert len(dropped) == 1 and dropped[0].startswith("s01-en-9998 ")
    assert "bad segment: end 5.8875 s is not after start 11.775 s" in dropped[0]


@pytest.mark.slow
def test_stage3_cuts_the_original_utterances(recipe_run):
    """Every utterance of the mini corpus comes out of stage 3 sample for sample (FLAC is
    lossless, 16 kHz in and out), in the set the usual layout puts it in."""
    originals = read_map(mini_layouts.DEFAULT_CORPUS / "en" / "text")
    seen = {}
    for name, dump in DUMPS.items():
        dump = recipe_run / dump
        assert not (dump / "segments").exists()
        wav, num_samples = read_map(dump / "wav.scp"), read_map(dump / "utt2num_samples")
        assert set(read_map(dump / "text")) == set(wav)
        for utt, path in wav.items():
            cut, fs = sf.read(recipe_run / path, dtype="int16")
            original, _ = sf.read(mini_layouts.DEFAULT_CORPUS / "en" / "wav" / f"{utt}.flac", dtype="int16")
            assert fs == 16000 and int(num_samples[utt]) == len(cut)
            np.testing.assert_array_equal(cut, original, err_msg=f"{name} {utt}")
            seen[utt] = name
    assert sorted(seen) == sorted(originals)  # the 240 utterances, each in one set
    assert [sum(1 for s in seen.values() if s == name) for name in DUMPS] == [176, 32, 32]


@pytest.mark.slow
def test_stage3_excludes_the_segment_beyond_its_recording(recipe_run):
    lines = (recipe_run / DUMPS["train"] / "excluded.txt").read_text().splitlines()
    assert len(lines) == 1
    utt, reason = lines[0].split("\t")
    assert utt == "s01-en-9999"
    assert reason.startswith("segment 11.775-25.55 s of recording s01-en ends 2.000 s beyond the recording's end")
    assert reason.endswith("expected at most 0.5 s beyond")
    for name in ("dev", "test"):
        assert (recipe_run / DUMPS[name] / "excluded.txt").read_text() == ""


@pytest.mark.slow
def test_stages_4_and_5_run_on_the_cut_audio(recipe_run):
    assert len(read_map(recipe_run / "dump/raw/train/text")) > 150
    tokens = (recipe_run / "data/token_list/char/tokens.txt").read_text().split("\n")
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-2] == "<sos/eos>"
