"""Integration: egs2/aishell/asr1 on the mini corpus in AISHELL-1's native layout.

One recipe run is shared: stage 1 downloads the openslr-style tarballs (file:// URLs) and
prepares data/; one extracted wav of train and one of test are then corrupted; stages 2-5,
then 10-13 as users run them (conftest's tiny CTC model, a few epochs, greedy and beam-search
decoding, CER by our scorer and sclite; the corrupt test utterance listed as left out). Bad
input for local/data.sh is tried on its own.
"""

from __future__ import annotations

import re
import shutil

import pytest
import soundfile as sf

from tools import mini_layouts

# The mini AISHELL layout has few training utterances: the tiny CTC model needs ~300 updates
# (5 s batches, 20 epochs) to leave the all-blank stage (8 epochs of 10 s batches gave 100 %
# greedy). Measured (2 cores, 2026-12-02): CER 45.6 / 42.6 % (greedy / beam) on the 14 test
# utterances; chance (nothing output) is 100 %. The bound leaves room for another machine's
# arithmetic.
E2E_EPOCHS = 20
E2E_BATCH_BINS = 80000  # audio samples per batch (5 s)
CER_BELOW = 70.0


@pytest.fixture(scope="module")
def recipe_run(corpus_recipe, run_recipe, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("aishell")
    mini_layouts.write_aishell(mini_layouts.DEFAULT_CORPUS, tmp / "openslr", tarballs=True)
    recipe = corpus_recipe("aishell", tmp / "asr1", f"AISHELL={tmp / 'db'}\n")
    stage1 = run_recipe(
        recipe, "--stage", "1", "--stop_stage", "1", "--local_data_opts", f"--base_url {(tmp / 'openslr').as_uri()}"
    )
    corrupt = sorted((tmp / "db/data_aishell/wav/train").rglob("*.wav"))[3]
    corrupt.write_bytes(b"RIFF this is not audio" * 10)
    corrupt_test = sorted((tmp / "db/data_aishell/wav/test").rglob("*.wav"))[0]
    corrupt_test.write_bytes(b"RIFF this is not audio" * 10)
    # one job per step: on 2 cores the ESPnet start-up of each extra job costs more than it saves
    rest = run_recipe(recipe, "--stage", "2", "--stop_stage", "5", "--nj", "1")
    return recipe, tmp, stage1, rest, corrupt.stem, corrupt_test.stem


@pytest.fixture(scope="module")
def trained(recipe_run, tiny_ctc_config, train_decode_score):
    recipe = recipe_run[0]
    config = tiny_ctc_config(max_epoch=E2E_EPOCHS, batch_bins=E2E_BATCH_BINS)
    return recipe, train_decode_score(recipe, config, "--average", "last:2", "--test_sets", "test")


@pytest.mark.slow
def test_download_and_data_dirs(recipe_run):
    recipe, tmp, stage1, *_ = recipe_run
    assert (tmp / "db/.aishell.done").is_file()
    assert not list((tmp / "db/data_aishell/wav").glob("*.tar.gz"))
    assert "expected 141,925" in stage1.stderr  # the mini corpus: a warning, and the run went on
    transcript = {}
    for line in (tmp / "db/data_aishell/transcript/aishell_transcript_v0.8.txt").read_text("utf-8").splitlines():
        utt, words = line.split(maxsplit=1)
        transcript[utt] = words.replace(" ", "")
    for split in ("train", "dev", "test"):
        text = dict(
            line.split(maxsplit=1) for line in (recipe / "data" / split / "text").read_text("utf-8").splitlines()
        )
        on_disk = {p.stem for p in (tmp / "db/data_aishell/wav" / split).rglob("*.wav")}
        assert set(text) == on_disk
        assert all(text[u] == transcript[u] for u in text)


@pytest.mark.slow
def test_corrupt_wav_is_excluded_and_listed(recipe_run):
    recipe, _, _, _, corrupt, _ = recipe_run
    excluded = (recipe / "dump/raw/org/train/excluded.txt").read_text(encoding="utf-8")
    assert excluded.startswith(corrupt) and f"{corrupt}.wav" in excluded
    dumped = (recipe / "dump/raw/train/wav.scp").read_text().splitlines()
    assert len(dumped) == len((recipe / "data/train/wav.scp").read_text().splitlines()) - 1
    first = recipe / dumped[0].split(maxsplit=1)[1]
    assert sf.info(str(first)).samplerate == 16000


@pytest.mark.slow
def test_end_to_end_cer_with_both_decoders(trained, check_decodes):
    recipe, exp = trained
    tokens = (recipe / "data/token_list/char/tokens.txt").read_text(encoding="utf-8").split("\n")
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-2] == "<sos/eos>"
    assert all(len(t) == 1 and "\u4e00" <= t <= "\u9fff" for t in tokens[2:-2])  # Mandarin characters
    errors = check_decodes(recipe, exp, ("test",), "cer", CER_BELOW)
    print("AISHELL mini CER:", errors)
    for decode in exp.glob("decode_*/test"):
        assert not (decode / "score_wer").exists()  # --score_metrics cer: WER means nothing here
    results = (exp / "RESULTS.md").read_text(encoding="utf-8")
    assert "### CER" in results and "WER" not in results


@pytest.mark.slow
def test_lm_stages_and_shallow_fusion(trained, lm_decode_score, tiny_ctc_config):
    """Stages 6-9 on Mandarin characters (the recipe's LM config, shrunk) and a decoding with the
    LM and the 3-gram, scored by CER."""
    recipe, _ = trained
    config = tiny_ctc_config(max_epoch=E2E_EPOCHS, batch_bins=E2E_BATCH_BINS)
    decode = lm_decode_score(recipe, config, "test", "--average", "last:2")
    assert (decode / "test/score_cer/result.txt").is_file() and not (decode / "test/score_wer").exists()


@pytest.mark.slow
def test_test_utterance_left_out_is_listed(recipe_run, trained):
    """A test utterance excluded in stage 3 is not scored as deletions: it is listed and counted."""
    recipe, _, _, _, _, corrupt_test = recipe_run
    _, exp = trained
    scored = (recipe / "dump/raw/test/text").read_text(encoding="utf-8").splitlines()
    assert len(scored) == len((recipe / "data/test/text").read_text(encoding="utf-8").splitlines()) - 1
    (greedy,) = exp.glob("decode_ctc_greedy_*/test")
    left = (greedy / "score_cer/left_out.txt").read_text(encoding="utf-8")
    assert left.startswith(f"{corrupt_test}\t") and f"{corrupt_test}.wav" in left and left.count("\n") == 1
    results = (exp / "RESULTS.md").read_text(encoding="utf-8")
    assert re.search(rf"^\|test\|{len(scored)}\|\d+\|([\d.]+\|){{6}}1\|$", results, re.M), results
    assert "score_cer/left_out.txt" in results


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing", "empty", "no_transcript"])
def test_data_sh_bad_input(case, corpus_recipe, run_recipe, tmp_path):
    corpus = tmp_path / "corpus"
    if case != "missing":
        corpus.mkdir()
    if case == "no_transcript":
        mini_layouts.write_aishell(mini_layouts.DEFAULT_CORPUS, corpus)
        (corpus / "data_aishell/transcript/aishell_transcript_v0.8.txt").unlink()
    recipe = corpus_recipe("aishell", tmp_path / "asr1", f"AISHELL={corpus}\n")
    result = run_recipe(recipe, "--download", "false", script="local/data.sh", check=False)
    if case == "no_transcript":  # --download false: the completeness check names it before anything is written
        assert result.returncode == 1
        assert (
            f"AISHELL-1 at {corpus}/data_aishell is incomplete; missing: "
            "transcript/aishell_transcript_v0.8.txt" in result.stderr
        )
    else:
        assert result.returncode == 2
        assert f"{corpus}/data_aishell not found: point AISHELL in db.sh" in result.stderr
    assert not (recipe / "data/train/wav.scp").exists()


@pytest.mark.slow
def test_data_sh_uses_a_complete_copy_and_refuses_a_partial_one(corpus_recipe, run_recipe, tmp_path):
    """The default --download true with the archives unreachable: a copy extracted by hand (no
    marker) is used; with one speaker's tarball left unextracted, stage 1 stops naming it."""
    corpus = tmp_path / "corpus"
    mini_layouts.write_aishell(mini_layouts.DEFAULT_CORPUS, corpus)
    recipe = corpus_recipe("aishell", tmp_path / "asr1", f"AISHELL={corpus}\n")
    gone = f"--base_url {(tmp_path / 'gone').as_uri()}"
    result = run_recipe(recipe, *gone.split(), script="local/data.sh")
    assert f"AISHELL-1 found complete at {corpus}/data_aishell" in result.stderr and "Downloading" not in result.stderr
    assert len((recipe / "data/test/text").read_text("utf-8").splitlines()) == len(
        list((corpus / "data_aishell/wav/test").rglob("*.wav"))
    )
    speaker = sorted((corpus / "data_aishell/wav/test").iterdir())[0]
    shutil.rmtree(speaker)
    (corpus / "data_aishell/wav" / f"{speaker.name}.tar.gz").write_bytes(b"")
    for opts in (gone.split(), ["--download", "false"]):
        result = run_recipe(recipe, *opts, script="local/data.sh", check=False)
        assert result.returncode == 1, result.stderr[-2000:]
        assert f"AISHELL-1 at {corpus}/data_aishell is incomplete" in result.stderr
        assert f"{speaker.name} ({speaker.name}.tar.gz not extracted)" in result.stderr
