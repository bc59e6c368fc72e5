"""Integration: egs2/aishell/asr1 on the mini corpus in AISHELL-1's native layout.

One recipe run is shared: stage 1 downloads the openslr-style tarballs (file:// URLs) and
prepares data/; one extracted wav is then corrupted; stages 2-5 and 10-13 run with a tiny
conformer CTC config (2 epochs). Bad input for local/data.sh is tried on its own.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from espnet_ext.data import mini_layouts

TINY_CONFIG = {  # fbank + a 2-block conformer, CTC only: trains in seconds on the mini corpus
    "frontend": "default",
    "frontend_conf": {"n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 40},
    "encoder": "conformer",
    "encoder_conf": {"output_size": 64, "attention_heads": 2, "linear_units": 128, "num_blocks": 2,
                     "input_layer": "conv2d", "macaron_style": True, "pos_enc_layer_type": "rel_pos",
                     "selfattention_layer_type": "rel_selfattn", "rel_pos_type": "latest",
                     "use_cnn_module": True, "cnn_module_kernel": 7},
    "model_conf": {"ctc_weight": 1.0, "lsm_weight": 0.0},
    "optim": "adam", "optim_conf": {"lr": 0.002},
    "scheduler": "warmuplr", "scheduler_conf": {"warmup_steps": 50},
    "batch_type": "numel", "batch_bins": 400000, "max_epoch": 2, "num_workers": 0,
    "num_att_plot": 0, "best_model_criterion": [["valid", "loss", "min"]], "keep_nbest_models": 2,
    "seed": 0,
}


@pytest.fixture(scope="module")
def recipe_run(corpus_recipe, run_recipe, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("aishell")
    mini_layouts.write_aishell(mini_layouts.DEFAULT_CORPUS, tmp / "openslr", tarballs=True)
    recipe = corpus_recipe("aishell", tmp / "asr1", f"AISHELL={tmp / 'db'}\n")
    stage1 = run_recipe(recipe, "--stage", "1", "--stop_stage", "1",
                        "--local_data_opts", f"--base_url {(tmp / 'openslr').as_uri()}")
    corrupt = sorted((tmp / "db/data_aishell/wav/train").rglob("*.wav"))[3]
    corrupt.write_bytes(b"RIFF this is not audio" * 10)
    config = tmp / "train_tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_CONFIG))
    # one job per step: on 2 cores the ESPnet start-up of each extra job costs more than it saves
    rest = run_recipe(recipe, "--stage", "2", "--stop_stage", "13", "--nj", "1", "--inference_nj", "1",
                      "--asr_config", str(config), "--average", "last:2", "--test_sets", "test")
    return recipe, tmp, stage1, rest, corrupt.stem


@pytest.mark.slow
def test_download_and_data_dirs(recipe_run):
    recipe, tmp, stage1, _, _ = recipe_run
    assert (tmp / "db/.aishell.done").is_file()
    assert not list((tmp / "db/data_aishell/wav").glob("*.tar.gz"))
    assert "expected 141,925" in stage1.stderr  # the mini corpus: a warning, and the run went on
    transcript = {}
    for line in (tmp / "db/data_aishell/transcript/aishell_transcript_v0.8.txt").read_text("utf-8").splitlines():
        utt, words = line.split(maxsplit=1)
        transcript[utt] = words.replace(" ", "")
    for split in ("train", "dev", "test"):
        text = dict(line.split(maxsplit=1) for line in (recipe / "data" / split / "text").read_text("utf-8").splitlines())
        on_disk = {p.stem for p in (tmp / "db/data_aishell/wav" / split).rglob("*.wav")}
        assert set(text) == on_disk
        assert all(text[u] == transcript[u] for u in text)


@pytest.mark.slow
def test_corrupt_wav_is_excluded_and_listed(recipe_run):
    recipe, _, _, _, corrupt = recipe_run
    excluded = (recipe / "dump/raw/org/train/excluded.txt").read_text(encoding="utf-8")
    assert excluded.startswith(corrupt) and f"{corrupt}.wav" in excluded
    dumped = (recipe / "dump/raw/train/wav.scp").read_text().splitlines()
    assert len(dumped) == len((recipe / "data/train/wav.scp").read_text().splitlines()) - 1
    first = recipe / dumped[0].split(maxsplit=1)[1]
    assert sf.info(str(first)).samplerate == 16000


@pytest.mark.slow
def test_char_tokens_and_cer_only(recipe_run):
    recipe, _, _, _, _ = recipe_run
    tokens = (recipe / "data/token_list/char/tokens.txt").read_text(encoding="utf-8").split("\n")
    assert tokens[:2] == ["<blank>", "<unk>"] and tokens[-2] == "<sos/eos>"
    assert all(len(t) == 1 and "\u4e00" <= t <= "\u9fff" for t in tokens[2:-2])  # Mandarin characters
    (exp,) = [p for p in (recipe / "exp").glob("asr_*") if not p.name.startswith("asr_stats")]
    (decode,) = exp.glob("decode_*/test")
    result = (decode / "score_cer" / "result.txt").read_text(encoding="utf-8")
    assert re.search(r"Sum/Avg.*\d", result)
    assert not (decode / "score_wer").exists()  # --score_metrics cer: WER means nothing here
    results = (exp / "RESULTS.md").read_text(encoding="utf-8")
    row = re.search(r"^\|test\|(\d+)\|(\d+)\|([\d.]+\|){5}([\d.]+)\|", results, re.M)
    assert "### CER" in results and "WER" not in results and row, results
    assert int(row.group(1)) == len((recipe / "data/test/text").read_text().splitlines())


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
        assert f"AISHELL-1 at {corpus}/data_aishell is incomplete; missing: " \
               "transcript/aishell_transcript_v0.8.txt" in result.stderr
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
    assert len((recipe / "data/test/text").read_text("utf-8").splitlines()) == \
        len(list((corpus / "data_aishell/wav/test").rglob("*.wav")))
    speaker = sorted((corpus / "data_aishell/wav/test").iterdir())[0]
    shutil.rmtree(speaker)
    (corpus / "data_aishell/wav" / f"{speaker.name}.tar.gz").write_bytes(b"")
    for opts in (gone.split(), ["--download", "false"]):
        result = run_recipe(recipe, *opts, script="local/data.sh", check=False)
        assert result.returncode == 1, result.stderr[-2000:]
        assert f"AISHELL-1 at {corpus}/data_aishell is incomplete" in result.stderr
        assert f"{speaker.name} ({speaker.name}.tar.gz not extracted)" in result.stderr
