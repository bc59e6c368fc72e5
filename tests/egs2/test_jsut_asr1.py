"""Integration: egs2/jsut/asr1 on the mini corpus in JSUT 1.1's native layout.

One recipe run is shared: stage 1 downloads jsut_ver1.1.zip (a file:// URL) and prepares
data/ with small split sizes; one extracted wav is then corrupted; stages 2-5 resample the
48 kHz audio to 16 kHz, filter and build the character list; stages 10-13 run as users run
them (conftest's tiny CTC model for a few epochs, greedy and beam-search decoding, CER by our
scorer and sclite). Bad input for local/data.sh is tried on its own.
"""

from __future__ import annotations

import math

import pytest
import soundfile as sf

from tools import mini_layouts

NUM_EVAL, NUM_DEV = 8, 6
# The mini JSUT layout has few training utterances: 8 epochs of 10 s batches left the tiny CTC
# model all blank (100 % greedy CER); 20 epochs of 5 s batches (~300 updates) are what AISHELL's
# mini layout, of the same size, needs. Measured (2 cores, 2026-12-02): CER dev 31.6 %, eval1
# 19.1 % (greedy and beam alike). Chance (nothing output) is 100 %; the bound leaves room for
# another machine's arithmetic on these 6 and 8 utterances.
E2E_EPOCHS = 20
E2E_BATCH_BINS = 80000  # audio samples per batch (5 s)
CER_BELOW = 70.0


@pytest.fixture(scope="module")
def recipe_run(corpus_recipe, run_recipe, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jsut")
    mini_layouts.write_jsut(mini_layouts.DEFAULT_CORPUS, tmp / "site", make_zip=True)
    recipe = corpus_recipe("jsut", tmp / "asr1", f"JSUT={tmp / 'db'}\n")
    opts = f"--base_url {(tmp / 'site').as_uri()} --num_eval {NUM_EVAL} --num_dev {NUM_DEV}"
    stage1 = run_recipe(recipe, "--stage", "1", "--stop_stage", "1", "--local_data_opts", opts)
    corrupt = sorted((tmp / "db/jsut_ver1.1/basic5000/wav").glob("*.wav"))[-1]
    corrupt.write_bytes(corrupt.read_bytes()[:30])  # a truncated header
    rest = run_recipe(recipe, "--stage", "2", "--stop_stage", "5", "--nj", "2")
    return recipe, tmp, stage1, rest, corrupt.stem


@pytest.fixture(scope="module")
def trained(recipe_run, tiny_ctc_config, train_decode_score):
    recipe = recipe_run[0]
    config = tiny_ctc_config(max_epoch=E2E_EPOCHS, batch_bins=E2E_BATCH_BINS)
    return recipe, train_decode_score(recipe, config, "--average", "last:2")


@pytest.mark.slow
def test_zip_download_and_espnet_splits(recipe_run):
    recipe, tmp, stage1, _, _ = recipe_run
    assert (tmp / "db/.jsut.done").is_file()
    assert "subsets are missing" in stage1.stderr  # the mini layout has 3 of the 9 subsets
    basic = sorted(p.stem for p in (tmp / "db/jsut_ver1.1/basic5000/wav").glob("*.wav"))
    keys = {s: (recipe / "data" / s / "text").read_text("utf-8").split("\n") for s in ("eval1", "dev", "tr_no_dev")}
    keys = {s: [line.split(maxsplit=1)[0] for line in v if line] for s, v in keys.items()}
    assert keys["eval1"] == basic[:NUM_EVAL]
    assert keys["dev"] == basic[NUM_EVAL : NUM_EVAL + NUM_DEV]
    assert set(basic[NUM_EVAL + NUM_DEV :]) < set(keys["tr_no_dev"])
    assert any(k.startswith(("ONOMATOPEE300", "VOICEACTRESS100")) for k in keys["tr_no_dev"])


@pytest.mark.slow
def test_48k_audio_resampled_to_16k(recipe_run):
    recipe, _, _, _, _ = recipe_run
    for dset, dump in (("eval1", "dump/raw/eval1"), ("tr_no_dev", "dump/raw/org/tr_no_dev")):
        source = dict(line.split(maxsplit=1) for line in (recipe / "data" / dset / "wav.scp").read_text().splitlines())
        num_samples = dict(line.split() for line in (recipe / dump / "utt2num_samples").read_text().splitlines())
        utt = sorted(set(num_samples))[0]
        assert sf.info(source[utt]).samplerate == 48000
        dumped = dict(line.split(maxsplit=1) for line in (recipe / dump / "wav.scp").read_text().splitlines())[utt]
        info = sf.info(str(recipe / dumped))
        assert info.samplerate == 16000
        assert info.frames == int(num_samples[utt]) == math.ceil(sf.info(source[utt]).frames / 3)


@pytest.mark.slow
def test_corrupt_wav_excluded_and_char_tokens(recipe_run):
    recipe, _, _, _, corrupt = recipe_run
    excluded = (recipe / "dump/raw/org/tr_no_dev/excluded.txt").read_text(encoding="utf-8")
    assert excluded.startswith(corrupt) and f"{corrupt}.wav" in excluded
    assert corrupt not in (recipe / "dump/raw/tr_no_dev/wav.scp").read_text()
    tokens = (recipe / "data/token_list/char/tokens.txt").read_text(encoding="utf-8").split("\n")
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-2] == "<sos/eos>"
    train_chars = set(
        "".join(
            line.split(maxsplit=1)[1] for line in (recipe / "dump/raw/tr_no_dev/text").read_text("utf-8").splitlines()
        )
    )
    assert set(tokens[2:-2]) == train_chars and all("\u3040" <= t <= "\u30ff" for t in train_chars)  # kana


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing", "empty", "no_transcript"])
def test_data_sh_bad_input(case, corpus_recipe, run_recipe, tmp_path):
    corpus = tmp_path / "corpus"
    if case != "missing":
        corpus.mkdir()
    if case == "no_transcript":
        mini_layouts.write_jsut(mini_layouts.DEFAULT_CORPUS, corpus)
        (corpus / "jsut_ver1.1/basic5000/transcript_utf8.txt").unlink()
    recipe = corpus_recipe("jsut", tmp_path / "asr1", f"JSUT={corpus}\n")
    result = run_recipe(
        recipe, "--download", "false", "--num_eval", "5", "--num_dev", "5", script="local/data.sh", check=False
    )
    if case == "no_transcript":  # --download false: the completeness check names it before anything is written
        assert result.returncode == 1
        assert (
            f"JSUT 1.1 at {corpus}/jsut_ver1.1 is incomplete; missing: basic5000/transcript_utf8.txt" in result.stderr
        )
    else:
        assert result.returncode == 2
        assert f"{corpus}/jsut_ver1.1 not found: point JSUT in db.sh" in result.stderr
    assert not (recipe / "data/tr_no_dev/wav.scp").exists()


@pytest.mark.slow
def test_data_sh_uses_a_complete_copy_and_refuses_a_partial_one(corpus_recipe, run_recipe, tmp_path):
    """The default --download true with the zip unreachable: a copy unzipped by hand (no marker)
    is used; with wav files its transcript lists missing, stage 1 stops naming them."""
    corpus = tmp_path / "corpus"
    mini_layouts.write_jsut(mini_layouts.DEFAULT_CORPUS, corpus)
    recipe = corpus_recipe("jsut", tmp_path / "asr1", f"JSUT={corpus}\n")
    opts = ["--base_url", (tmp_path / "gone").as_uri(), "--num_eval", "5", "--num_dev", "5"]
    result = run_recipe(recipe, *opts, script="local/data.sh")
    assert f"JSUT 1.1 found complete at {corpus}/jsut_ver1.1" in result.stderr and "Downloading" not in result.stderr
    assert len((recipe / "data/eval1/text").read_text("utf-8").splitlines()) == 5
    wav = sorted((corpus / "jsut_ver1.1/voiceactress100/wav").glob("*.wav"))[0]
    wav.unlink()
    for extra in ([], ["--download", "false"]):
        result = run_recipe(recipe, *opts, *extra, script="local/data.sh", check=False)
        assert result.returncode == 1, result.stderr[-2000:]
        assert (
            f"JSUT 1.1 at {corpus}/jsut_ver1.1 is incomplete; missing: voiceactress100/wav/: 1 of the" in result.stderr
            and wav.name in result.stderr
        )


@pytest.mark.slow
def test_end_to_end_cer_with_both_decoders(trained, check_decodes):
    recipe, exp = trained
    errors = check_decodes(recipe, exp, ("dev", "eval1"), "cer", CER_BELOW)
    print("JSUT mini CER:", errors)


@pytest.mark.slow
def test_lm_stages_and_shallow_fusion(trained, lm_decode_score, tiny_ctc_config):
    """Stages 6-9 with the recipe's LSTM LM config (shrunk) and a decoding with the LM and the
    3-gram, scored by CER."""
    recipe, _ = trained
    config = tiny_ctc_config(max_epoch=E2E_EPOCHS, batch_bins=E2E_BATCH_BINS)
    decode = lm_decode_score(recipe, config, "eval1", "--average", "last:2")
    assert (decode / "eval1/score_cer/result.txt").is_file()
