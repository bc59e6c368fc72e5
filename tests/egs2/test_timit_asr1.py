"""Integration: egs2/timit/asr1 on the mini corpus laid out as TIMIT (SPHERE audio).

Recipe copies (conftest.py's corpus_recipe) run in tmp: stages 1-5 for phones, then stages
10-13 as users run them (a tiny CTC model trained for a few epochs, greedy and beam-search
decoding, PER on space-separated phones by our scorer and sclite), the 48-phone set scored on
39 phones, stage 13's report, the word variant, lower-case names, and bad input (db.sh unset
or wrong, an empty directory, an unknown phone symbol).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from espnet_ext import scoring
from espnet_ext.data.kaldi_files import read_map
from tools import mini_layouts

RECIPE = Path(__file__).resolve().parents[2] / "egs2" / "timit" / "asr1"
SETS = ("train", "dev", "test")


def failed(result: subprocess.CompletedProcess, status: int) -> str:
    """The stderr of a run that had to fail with ``status``."""
    assert result.returncode == status, result.stderr[-4000:]
    return result.stderr


@pytest.fixture(scope="module")
def copy_of(corpus_recipe):
    """``copy_of(dest, corpus)``: a timit recipe directory in ``dest``, db.sh set to ``corpus``."""
    return lambda dest, corpus: corpus_recipe("timit", dest, f"TIMIT={corpus}\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return mini_layouts.write_timit(mini_layouts.DEFAULT_CORPUS, tmp_path_factory.mktemp("c")).path


@pytest.fixture(scope="module")
def recipe_run(corpus, run_recipe, copy_of, tmp_path_factory):
    recipe = copy_of(tmp_path_factory.mktemp("r") / "asr1", str(corpus))
    return recipe, run_recipe(recipe, "--nj", "2", "--stage", "1", "--stop_stage", "5")


@pytest.mark.slow
def test_stages_1_to_5_phones(recipe_run, corpus):
    recipe, result = recipe_run
    texts = {name: read_map(recipe / "data" / name / "text") for name in SETS}
    assert [len(texts[name]) for name in SETS] == [130, 39, 39]
    assert not any(re.search(r"_SA\d$", utt) for t in texts.values() for utt in t)
    spk = {name: set(read_map(recipe / "data" / name / "utt2spk").values()) for name in SETS}
    assert spk["dev"] <= set(mini_layouts.DEV_SPEAKERS) and spk["test"] <= set(mini_layouts.CORE_TEST_SPEAKERS)
    for name in SETS:  # stage 1 lists the SPHERE files; stage 3 encodes them, once
        wav = read_map(recipe / "data" / name / "wav.scp")
        assert all(Path(p).suffix == ".WAV" and Path(p).is_relative_to(corpus.resolve()) for p in wav.values())
        dumped = read_map(recipe / "dump/raw" / name / "wav.scp")
        assert dumped.keys() == wav.keys() and all(p.endswith(".flac") for p in dumped.values())
    assert not (recipe / "data/local/timit_flac").exists()
    assert read_map(recipe / "dump/raw/test/text") == texts["test"]
    assert len(read_map(recipe / "dump/raw/train/utt2num_samples")) == 130
    tokens = (recipe / "data/token_list/phn/tokens.txt").read_text().split()
    phones = set(tokens[2:-1])
    assert "sil" in phones and not phones & {"h#", "q", "pau", "tcl", "ao", "zh"}  # folded to 39
    rows = [line.split() for line in (RECIPE / "conf/phones.60-48-39.map").read_text().splitlines()]
    assert phones <= {row[2] for row in rows if len(row) == 3 and not row[0].startswith("#")}
    assert "Successfully finished" in result.stderr


# Measured on the mini TIMIT layout (2 cores, 8 epochs, 2026-12-02): PER dev 11.1 / 9.0 %, test
# 14.8 / 12.7 % (greedy / beam); chance (a model that outputs nothing) is 100 %. (Before the
# phones were separated by spaces, every utterance scored ~100 %.)
E2E_EPOCHS = 8
PER_BELOW = 40.0


@pytest.fixture(scope="module")
def trained(recipe_run, tiny_ctc_config, train_decode_score):
    recipe, _ = recipe_run
    return recipe, train_decode_score(recipe, tiny_ctc_config(max_epoch=E2E_EPOCHS), "--average", "last:2")


@pytest.mark.slow
def test_end_to_end_per_with_both_decoders(trained, check_decodes):
    """Stages 10-13 as users run them: hypotheses are phones separated by spaces, PER well below 100 %."""
    recipe, exp = trained
    errors = check_decodes(recipe, exp, ("dev", "test"), "per", PER_BELOW)
    tokens = set((recipe / "data/token_list/phn/tokens.txt").read_text().split())
    for decode in exp.glob("decode_*/test"):
        hyps = scoring.read_text(decode / "text")
        words = [w for t in hyps.values() for w in t.split()]
        assert words and set(words) <= tokens, decode  # every word of a hypothesis is a phone
    assert "### PER" in (exp / "RESULTS.md").read_text()
    print("TIMIT mini PER:", errors)


@pytest.mark.slow
def test_lm_stages_and_shallow_fusion_on_phones(trained, lm_decode_score, tiny_ctc_config):
    """Stages 6-9 on phone transcripts (the LM reads them as words: ESPnet's LMTask has no phn;
    the n-gram's tokens are phones) and a decoding with both, scored by PER."""
    recipe, exp = trained
    decode = lm_decode_score(recipe, tiny_ctc_config(max_epoch=E2E_EPOCHS), "test", "--average", "last:2")
    (lm,) = (recipe / "exp").glob("lm_train_lm_transformer_phn")
    assert yaml.safe_load((lm / "config.yaml").read_text())["token_type"] == "word"
    phones = set((recipe / "data/token_list/phn/tokens.txt").read_text().split())
    assert set((recipe / "exp/ngram/train.tokens").read_text().split()) <= phones
    per = scoring.read_summary(decode / "test/score_per/result.txt").errors
    print(f"TIMIT mini PER with the LM and the 3-gram: {per}")
    assert per < PER_BELOW


@pytest.mark.slow
def test_48_phone_set_is_scored_on_39(trained, run_recipe):
    """--phone_set 48 references folded to 39 give the 39-phone model the same PER as its own references."""
    recipe, exp = trained
    run_recipe(recipe, "--phone_set", "48", "--stage", "1", "--stop_stage", "1")
    (greedy,) = exp.glob("decode_ctc_greedy_*/test")
    refs48 = read_map(recipe / "data/test_phn48/text")
    assert set(" ".join(refs48.values()).split()) & {"vcl", "cl", "epi"}  # the 48 set, not folded
    fold = scoring.read_fold_map(RECIPE / "conf/phones.60-48-39.map")
    hyps = scoring.read_text(greedy / "text")
    on48 = scoring.score(scoring.fold_texts(refs48, fold), scoring.fold_texts(hyps, fold), "phn")
    assert on48.total == scoring.score(scoring.read_text(recipe / "dump/raw/test/text"), hyps, "phn").total


@pytest.mark.slow
def test_scoring_reports_per(trained, run_recipe, tiny_ctc_config):
    """Stage 13 on a hypothesis with known errors (the greedy decoding's, replaced): scored again
    (scoring is keyed by the hypotheses), PER, labelled as such, with the right count."""
    recipe, exp = trained
    ref = read_map(recipe / "data/test/text")
    (hyp_dir,) = exp.glob("decode_ctc_greedy_*/test")
    decoded = (hyp_dir / "text").read_text()
    hyp = {u: " ".join(t.split()[1:]) for u, t in ref.items()}  # one deletion per utterance
    (hyp_dir / "text").write_text("".join(f"{u} {t}\n" for u, t in hyp.items()))
    args = (
        "--stage",
        "13",
        "--stop_stage",
        "13",
        "--test_sets",
        "test",
        "--asr_tag",
        "e2e",
        "--average",
        "last:2",
        "--asr_config",
        str(tiny_ctc_config(max_epoch=E2E_EPOCHS)),
        "--inference_config",
        "conf/decode_ctc_greedy.yaml",
    )
    try:
        result = run_recipe(recipe, *args)
        assert f"Stage 13: score test (per) in exp/asr_e2e/{hyp_dir.parent.name}" in result.stderr
        assert "already done" not in result.stderr
        results = (exp / "RESULTS.md").read_text()
        n_phones = sum(len(t.split()) for t in ref.values())
        per = 100 * len(ref) / n_phones
        assert "### PER" in results and "### CER" not in results and "### WER" not in results
        assert f"|test|{len(ref)}|{n_phones}|" in results and f"|{per:.1f}|" in results
        assert (hyp_dir / "score_per/result.txt").is_file()
    finally:  # the decoding's own hypotheses and scores again
        (hyp_dir / "text").write_text(decoded)
        run_recipe(recipe, *args)


@pytest.mark.slow
def test_word_variant_and_lower_case_names(recipe_run, run_recipe, copy_of, tmp_path):
    recipe, _ = recipe_run
    run_recipe(recipe, "--stage", "1", "--stop_stage", "1", "--trans_type=word")
    words = {name: read_map(recipe / "data" / f"{name}_word" / "text") for name in SETS}
    for name in SETS:
        assert words[name].keys() == read_map(recipe / "data" / name / "text").keys()
        assert all(re.fullmatch(r"[a-z' ]+", t) for t in words[name].values())
    lower = mini_layouts.write_timit(mini_layouts.DEFAULT_CORPUS, tmp_path / "lower", case="lower").path
    assert (lower.name, next(lower.iterdir()).name.islower()) == ("timit", True)
    other = copy_of(tmp_path / "asr1", str(lower))
    run_recipe(other, "--stage", "1", "--stop_stage", "1")
    for name in SETS:
        assert read_map(other / "data" / name / "text") == read_map(recipe / "data" / name / "text")


@pytest.mark.slow
def test_bad_corpus_input(corpus, run_recipe, copy_of, tmp_path):
    def stage1_fails(name: str, corpus_dir, status: int, *args: str) -> str:
        recipe = copy_of(tmp_path / name, str(corpus_dir))
        return failed(run_recipe(recipe, "--stop_stage", "1", *args, check=False), status)

    assert "set TIMIT in db.sh" in stage1_fails("a", "", 2)
    nowhere, empty = tmp_path / "nowhere", tmp_path / "empty"
    assert f"{nowhere} not found: TIMIT in db.sh must point to your copy" in stage1_fails("b", nowhere, 2)
    empty.mkdir()
    assert f"{empty}: expected TRAIN/ and TEST/" in stage1_fails("c", empty, 1)
    assert "--trans_type phn|word" in stage1_fails("d", corpus, 1, "--trans_type", "chars")
    # an unknown phone symbol stops stage 1, naming the symbol and the file
    broken = Path(shutil.copytree(corpus, tmp_path / "TIMIT"))
    phn = sorted(broken.glob("TEST/DR*/*/SX*.PHN"))[0]
    phn.write_text(phn.read_text().replace(" h#\n", " xx\n", 1))
    assert f"{phn}: unknown phone symbol 'xx'" in stage1_fails("e", broken, 1)
