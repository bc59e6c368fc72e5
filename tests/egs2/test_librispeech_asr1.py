"""Integration: egs2/librispeech/asr1 on the mini corpus laid out as LibriSpeech.

Recipe copies (conftest.py's corpus_recipe) run in tmp: stages 1-5 on the
directory layout (a corrupt .flac and a missing transcript line injected), then 10-13 as users
run them (conftest's tiny CTC model for a few epochs, greedy and beam-search decoding, CER and
WER by our scorer and sclite), stage 1 from the
openslr tarballs through the download path (file:// URLs), BPE tokens, the random subset,
train_960, and bad corpus directories.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from espnet_ext.data.kaldi_files import read_map
from tools import mini_layouts

EVAL_SETS = ("dev_clean", "dev_other", "test_clean", "test_other")
# Measured on the mini LibriSpeech layout (2 cores, 8 epochs of conftest's tiny CTC model,
# 2026-12-02): CER test_clean 26.5 / 23.9 %, test_other 38.4 / 38.8 % (greedy / beam); chance
# (nothing output) is 100 %.
E2E_EPOCHS = 8
CER_BELOW = 55.0


def failed(result: subprocess.CompletedProcess, status: int) -> str:
    """The stderr of a run that had to fail with ``status``."""
    assert result.returncode == status, result.stderr[-4000:]
    return result.stderr


@pytest.fixture(scope="module")
def copy_of(corpus_recipe):
    """``copy_of(dest, corpus)``: a librispeech recipe directory in ``dest``, db.sh set to ``corpus``."""
    return lambda dest, corpus: corpus_recipe("librispeech", dest, f"LIBRISPEECH={corpus}\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The directory layout, with one corrupt .flac and one transcript line removed."""
    root = mini_layouts.write_librispeech(mini_layouts.DEFAULT_CORPUS, tmp_path_factory.mktemp("c")).path
    flacs = sorted((root / "train-clean-100").glob("*/*/*.flac"))
    flacs[3].write_bytes(b"fLaC but not really" * 50)
    trans = next(flacs[20].parent.glob("*.trans.txt"))
    trans.write_text(
        "".join(line + "\n" for line in trans.read_text().splitlines() if not line.startswith(flacs[20].stem))
    )
    return root


@pytest.fixture(scope="module")
def recipe_run(corpus, run_recipe, copy_of, tmp_path_factory):
    recipe = copy_of(tmp_path_factory.mktemp("dir") / "asr1", str(corpus.parent))
    result = run_recipe(
        recipe, "--nj", "2", "--stage", "1", "--stop_stage", "5", "--local_data_opts", "--download false"
    )
    return recipe, result


@pytest.mark.slow
def test_stages_1_to_5_on_the_native_layout(recipe_run, corpus):
    recipe, result = recipe_run
    counts = {name: len(read_map(recipe / "data" / name / "text")) for name in ("train_clean_100", *EVAL_SETS)}
    assert counts == {"train_clean_100": 149, "dev_clean": 30, "dev_other": 15, "test_clean": 30, "test_other": 15}
    dev = read_map(recipe / "data" / "dev" / "text")
    assert dev == {**read_map(recipe / "data/dev_clean/text"), **read_map(recipe / "data/dev_other/text")}
    assert all(t == t.upper() for t in dev.values())
    flacs = sorted((corpus / "train-clean-100").glob("*/*/*.flac"))
    missing = (recipe / "data/train_clean_100/excluded.txt").read_text()
    assert missing == f"{flacs[20].stem}\tno line in {next(flacs[20].parent.glob('*.trans.txt'))}\n"
    corrupt = (recipe / "dump/raw/org/train_clean_100/excluded.txt").read_text()
    assert corrupt.startswith(flacs[3].stem) and len(corrupt.splitlines()) == 1
    assert len(read_map(recipe / "dump/raw/train_clean_100/text")) == 148
    for name in EVAL_SETS:  # test sets are dumped whole, not filtered
        assert read_map(recipe / "dump/raw" / name / "text") == read_map(recipe / "data" / name / "text")
    tokens = (recipe / "data/token_list/char/tokens.txt").read_text().split()
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    assert set(tokens[2:-1]) == set(
        "".join(read_map(recipe / "dump/raw/train_clean_100/text").values()).replace(" ", "")
    ) | {"<space>"}
    assert "Successfully finished" in result.stderr


@pytest.fixture(scope="module")
def trained(recipe_run, tiny_ctc_config, train_decode_score):
    recipe, _ = recipe_run
    return recipe, train_decode_score(
        recipe, tiny_ctc_config(max_epoch=E2E_EPOCHS), "--average", "last:2", "--test_sets", "test_clean test_other"
    )


@pytest.mark.slow
def test_end_to_end_cer_and_wer_with_both_decoders(trained, check_decodes):
    """Before the other tests change the token list (BPE) or the data dirs."""
    recipe, exp = trained
    errors = check_decodes(recipe, exp, ("test_clean", "test_other"), "cer", CER_BELOW)
    print("LibriSpeech mini CER:", errors)
    for decode in exp.glob("decode_*/test_clean"):
        assert (decode / "score_wer/result.txt").is_file()


@pytest.mark.slow
def test_lm_stages_and_shallow_fusion(trained, lm_decode_score, tiny_ctc_config):
    """Stages 6-9 with the recipe's LM config (shrunk) and a decoding with the LM and the 3-gram,
    scored by CER and WER; before the other tests change the token list."""
    recipe, _ = trained
    decode = lm_decode_score(recipe, tiny_ctc_config(max_epoch=E2E_EPOCHS), "test_clean", "--average", "last:2")
    assert (decode / "test_clean/score_cer/result.txt").is_file() and (decode / "test_clean/score_wer").is_dir()


@pytest.mark.slow
def test_bpe_tokens(recipe_run, run_recipe):
    import sentencepiece

    recipe, _ = recipe_run
    run_recipe(recipe, "--stage", "4", "--stop_stage", "5", "--token_type", "bpe", "--nbpe", "40")
    bpe = sentencepiece.SentencePieceProcessor(model_file=str(recipe / "data/token_list/bpe_unigram40/bpe.model"))
    assert bpe.get_piece_size() == 40
    tokens = (recipe / "data/token_list/bpe_unigram40/tokens.txt").read_text().split()
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-1] == "<sos/eos>"
    assert set(tokens[2:-1]) <= {bpe.id_to_piece(i) for i in range(40)} and "▁TWO" in tokens


@pytest.mark.slow
def test_bpe_recipe_scores_ter(recipe_run, run_recipe, tiny_ctc_config):
    """A BPE recipe scores CER, WER and TER by default (ESPnet's ter: the token error rate on the
    BPE pieces of the reference and hypothesis texts), with sclite's counts where it is installed,
    and RESULTS.md has a TER table. One epoch of the tiny model, greedy decoding of test_clean."""
    from espnet_ext import scoring

    recipe, _ = recipe_run
    bpe_args = ("--token_type", "bpe", "--nbpe", "40")
    run_recipe(recipe, "--stage", "4", "--stop_stage", "5", *bpe_args)
    run_recipe(
        recipe,
        *("--stage", "10", "--stop_stage", "13", "--ngpu", "0", "--nj", "1", "--inference_nj", "1", *bpe_args),
        *("--asr_config", str(tiny_ctc_config(max_epoch=1)), "--asr_tag", "e2e_bpe", "--average", "last:1"),
        *("--inference_config", "conf/decode_ctc_greedy.yaml", "--test_sets", "test_clean"),
    )
    exp = recipe / "exp" / "asr_e2e_bpe"
    (decode,) = [d for d in exp.glob("decode_*") if d.is_dir()]
    scored = decode / "test_clean"
    assert sorted(p.name for p in scored.glob("score_*")) == ["score_cer", "score_ter", "score_wer"]
    ter = scoring.read_summary(scored / "score_ter" / "result.txt")
    encode = scoring.bpe_encoder(recipe / "data/token_list/bpe_unigram40/bpe.model")
    refs = read_map(recipe / "dump/raw/test_clean/text")
    assert ter.sentences == len(refs) and ter.words == sum(len(encode(t)) for t in refs.values())
    assert (scored / "score_ter" / "hyp.trn").is_file() == scoring.sclite_available()  # sclite agreed if it ran
    results = (exp / "RESULTS.md").read_text(encoding="utf-8")
    assert results.index("### CER") < results.index("### WER") < results.index("### TER")
    assert f"|test_clean|{ter.sentences}|{ter.words}|" in results.split("### TER")[1]


@pytest.mark.slow
def test_download_path_from_tarballs(recipe_run, run_recipe, copy_of, tmp_path):
    recipe, _ = recipe_run
    tarballs = mini_layouts.write_librispeech(mini_layouts.DEFAULT_CORPUS, tmp_path / "openslr", tarballs=True).path
    fresh = copy_of(tmp_path / "asr1", "downloads")
    opts = f"--data_url {tarballs.as_uri()} --md5_check false"
    run_recipe(fresh, "--stage", "1", "--stop_stage", "1", "--local_data_opts", opts)
    for part in ("train-clean-100", "dev-clean", "dev-other", "test-clean", "test-other"):
        assert (fresh / "downloads/LibriSpeech" / part / ".complete").is_file()
    assert not (fresh / "downloads/LibriSpeech/train-clean-360").exists()
    for name in EVAL_SETS:  # the same data as from the directory layout (which is the same corpus)
        assert read_map(fresh / "data" / name / "text") == read_map(recipe / "data" / name / "text")
    # a re-run finds the markers and downloads nothing (the archives are gone from the "server")
    shutil.rmtree(tarballs)
    again = run_recipe(fresh, "--stage", "1", "--stop_stage", "1", "--local_data_opts", opts)
    assert again.stderr.count("already downloaded and extracted") == 5
    # openslr's md5 sums do not match the mini archives: the download stops, naming the archive
    broken = copy_of(tmp_path / "asr1_md5", "downloads")
    mini_layouts.write_librispeech(mini_layouts.DEFAULT_CORPUS, tmp_path / "openslr2", tarballs=True)
    opts = f"--data_url {(tmp_path / 'openslr2').as_uri()}"
    stderr = failed(run_recipe(broken, "--stop_stage", "1", "--local_data_opts", opts, check=False), 1)
    assert "dev-clean.tar.gz: md5 mismatch" in stderr and "expected 42e2234ba48799c1f50f24a7926300a1" in stderr


@pytest.mark.slow
def test_random_subset_and_train_960(recipe_run, corpus, run_recipe, copy_of, tmp_path):
    recipe, _ = recipe_run
    full = set(read_map(recipe / "data/train_clean_100/text"))
    subsets = []
    for seed in (0, 0, 1):  # (both option forms: --name value and --name=value)
        run_recipe(
            recipe,
            "--stage",
            "1",
            "--stop_stage",
            "1",
            "--train_set=train_clean_100_sub20",
            "--local_data_opts",
            f"--download false --subset_seed {seed}",
        )
        subsets.append(set(read_map(recipe / "data/train_clean_100_sub20/text")))
    assert len(subsets[0]) == 20 and subsets[0] <= full
    assert subsets[0] == subsets[1] != subsets[2]
    # train_960: three training parts (here: train-clean-100's speakers spread over them)
    layout = Path(shutil.copytree(corpus, tmp_path / "LibriSpeech"))
    readers = sorted((layout / "train-clean-100").iterdir())
    moved = {}
    for reader, part in zip(readers[:4], ["train-clean-360"] * 2 + ["train-other-500"] * 2):
        (layout / part).mkdir(exist_ok=True)
        reader.rename(layout / part / reader.name)
        moved.update({chapter.name: part for chapter in (layout / part / reader.name).iterdir()})
    lines = []  # CHAPTERS.TXT says which part each chapter is in: moved chapters move there too
    for line in (layout / "CHAPTERS.TXT").read_text().splitlines():
        chapter = line.split("|")[0].strip()
        lines.append(line.replace("train-clean-100", moved[chapter]) if chapter in moved else line)
    (layout / "CHAPTERS.TXT").write_text("\n".join(lines) + "\n")
    big = copy_of(tmp_path / "asr1", str(tmp_path))
    run_recipe(
        big, "--stage", "1", "--stop_stage", "1", "--train_set", "train_960", "--local_data_opts", "--download false"
    )
    train_parts = ("train_clean_100", "train_clean_360", "train_other_500")
    parts = [read_map(big / "data" / name / "text") for name in train_parts]
    assert all(parts) and read_map(big / "data/train_960/text") == {k: v for p in parts for k, v in p.items()}
    assert set(read_map(big / "data/train_960/text")) == full
    listed = [(big / "data" / name / "excluded.txt").read_text().splitlines() for name in train_parts]
    assert (big / "data/train_960/excluded.txt").read_text().splitlines() == sorted(sum(listed, []))
    assert [line.split("\t")[0] for line in sum(listed, [])] == [
        line.split("\t")[0] for line in (recipe / "data/train_clean_100/excluded.txt").read_text().splitlines()
    ]


@pytest.mark.slow
def test_missing_or_empty_corpus_directory(run_recipe, copy_of, tmp_path):
    no_download = ("--stop_stage", "1", "--local_data_opts", "--download false")
    missing = copy_of(tmp_path / "a", str(tmp_path / "nowhere"))
    stderr = failed(run_recipe(missing, *no_download, check=False), 2)
    assert f"{tmp_path / 'nowhere'} not found: LIBRISPEECH in db.sh must point to" in stderr
    unset = copy_of(tmp_path / "b", "")
    assert "set LIBRISPEECH in db.sh" in failed(run_recipe(unset, "--stop_stage", "1", check=False), 2)
    (tmp_path / "empty").mkdir()
    empty = copy_of(tmp_path / "c", str(tmp_path / "empty"))
    stderr = failed(run_recipe(empty, *no_download, check=False), 1)
    assert f"{tmp_path / 'empty'}: expected LibriSpeech/<part>/ or <part>/ directories" in stderr
    stderr = failed(run_recipe(empty, "--stop_stage", "1", "--train_set", "train_clean_5", check=False), 2)
    assert "--train_set must be train_clean_100, train_960, train_clean_100_sub<N>, train_10h" in stderr


def test_librilight_10h_split_from_a_local_copy(corpus, corpus_recipe, run_recipe, tmp_path):
    """--train_set train_10h: dev/test from LibriSpeech, the training set from Libri-light's
    librispeech_finetuning/ (here the mini train-clean-100 laid out as it; LIBRILIGHT in db.sh)."""
    librilight = mini_layouts.write_librilight_finetuning(corpus, tmp_path / "ll").path
    db_sh = f"LIBRISPEECH={corpus.parent}\nLIBRILIGHT={librilight.parent}\n"
    recipe = corpus_recipe("librispeech", tmp_path / "asr1", db_sh)
    opts = ["--train_set", "train_10h", "--download", "false"]
    result = run_recipe(recipe, *opts, script="local/data.sh")
    assert "Libri-light's 10h split from" in result.stderr
    text = read_map(recipe / "data/train_10h/text")
    expected = {}
    for trans in (librilight / "9h").glob("*/*/*/*.trans.txt"):
        expected.update(line.split(maxsplit=1) for line in trans.read_text().splitlines())
    assert set(expected) < set(text) and len(read_map(recipe / "data/test_clean/text")) == 30
    assert not (recipe / "data/train_clean_100").exists()
    unset = corpus_recipe("librispeech", tmp_path / "b", f"LIBRISPEECH={corpus.parent}\n")
    stderr = failed(run_recipe(unset, *opts, script="local/data.sh", check=False), 2)
    assert "set LIBRILIGHT in db.sh to the directory holding it" in stderr


@pytest.mark.slow
def test_data_sh_uses_complete_parts_and_downloads_only_missing_ones(corpus, run_recipe, copy_of, tmp_path):
    """The default --download true on a tree extracted by hand (no .complete markers): complete
    parts are used, a missing one is the only one fetched, a partial one stops stage 1."""
    layout = Path(shutil.copytree(corpus, tmp_path / "LibriSpeech"))
    shutil.rmtree(layout / "test-clean")
    server = tmp_path / "openslr"  # serves test-clean only: fetching another part would fail
    mini_layouts.write_librispeech(mini_layouts.DEFAULT_CORPUS, tmp_path / "all", tarballs=True)
    server.mkdir()
    shutil.move(tmp_path / "all/test-clean.tar.gz", server)
    recipe = copy_of(tmp_path / "asr1", str(tmp_path))
    opts = ["--data_url", server.as_uri(), "--md5_check", "false"]
    result = run_recipe(recipe, *opts, script="local/data.sh")
    for part in ("train-clean-100", "dev-clean", "dev-other", "test-other"):
        assert f"{part} found complete at {layout / part}" in result.stderr
    assert f"downloading test-clean: missing from {layout / 'test-clean'}" in result.stderr
    assert [p.parent.name for p in layout.glob("*/.complete")] == ["test-clean"]
    assert len(read_map(recipe / "data/test_clean/text")) == 30
    chapter = sorted((layout / "dev-other").glob("*/*"))[0]
    shutil.rmtree(chapter)
    for extra in ([], ["--download", "false"]):
        stderr = failed(run_recipe(recipe, *opts, *extra, script="local/data.sh", check=False), 1)
        assert (
            f"dev-other at {layout / 'dev-other'} is incomplete; missing: 1 of the 2 chapter directories" in stderr
            and f"{chapter.parent.name}/{chapter.name}" in stderr
        )
