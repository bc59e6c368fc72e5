"""Fixtures for the corpus recipe tests: copies of egs2/<corpus>/asr1 run on mini corpora.

``corpus_recipe(corpus, dest, db_sh)`` makes ``dest`` a recipe directory whose files link to
``egs2/<corpus>/asr1`` (outputs stay in ``dest``) with its own ``db.sh`` text;
``run_recipe(recipe, *args, script="./run.sh", check=True)`` runs a script there with the
project's venv and ``ESPNET_EXT_ROOT`` (raising with the stderr tail when ``check`` and it fails).
``tiny_checkpoint`` is a random tiny wav2vec 2.0 backbone saved in this project's format: the
config dry runs put it where a config's ``frontend_conf.path`` points (no model hub here).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

RECIPE_FILES = ("asr.sh", "path.sh", "cmd.sh", "run.sh", "conf", "local")


@pytest.fixture(scope="session")
def corpus_recipe(project_root):
    def make(corpus: str, dest: Path, db_sh: str) -> Path:
        source = project_root / "egs2" / corpus / "asr1"
        dest.mkdir(parents=True)
        for name in RECIPE_FILES:
            (dest / name).symlink_to(source / name)
        (dest / "db.sh").write_text(db_sh)
        return dest

    return make


@pytest.fixture(scope="session")
def run_recipe(project_root, venv_env):
    env = dict(venv_env, ESPNET_EXT_ROOT=str(project_root))

    def run(recipe: Path, *args: str, script: str = "./run.sh", check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([script, *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=1800)
        if check and result.returncode != 0:
            raise AssertionError(f"{script} {' '.join(args)} failed:\n{result.stderr[-5000:]}")
        return result

    return run


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    from espnet_ext.wav2vec2.importers import save_backbone
    from espnet_ext.wav2vec2.model import wav2vec2_model
    from espnet_ext.wav2vec2.presets import preset_config

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_backbone(wav2vec2_model(preset_config("tiny")), preset_config("tiny"), path)
    return path


# --------------------------------------------------------------------------- end to end

TINY_CTC_CONFIG = {  # fbank + a 2-block conformer, CTC only: trains in seconds per epoch on the mini corpus
    "frontend": "default",
    "frontend_conf": {"n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 40},
    "normalize": "utterance_mvn",
    "encoder": "conformer",
    "encoder_conf": {
        "output_size": 64,
        "attention_heads": 2,
        "linear_units": 128,
        "num_blocks": 2,
        "input_layer": "conv2d",
        "macaron_style": True,
        "pos_enc_layer_type": "rel_pos",
        "selfattention_layer_type": "rel_selfattn",
        "rel_pos_type": "latest",
        "use_cnn_module": True,
        "cnn_module_kernel": 7,
    },
    "model_conf": {"ctc_weight": 1.0, "lsm_weight": 0.0},
    "optim": "adam",
    "optim_conf": {"lr": 0.002},
    "scheduler": "warmuplr",
    "scheduler_conf": {"warmup_steps": 50},
    "batch_type": "numel",
    "batch_bins": 160000,
    "max_epoch": 2,
    "num_workers": 0,
    "num_att_plot": 0,
    "best_model_criterion": [["valid", "loss", "min"]],
    "keep_nbest_models": 2,
    "seed": 0,
}


@pytest.fixture(scope="session")
def tiny_ctc_config(tmp_path_factory):
    """``tiny_ctc_config(**changes)``: :data:`TINY_CTC_CONFIG` with ``changes`` (top-level keys),
    written to a new YAML file whose path is returned."""
    import yaml

    def write(**changes) -> Path:
        path = tmp_path_factory.mktemp("conf") / "train_tiny_ctc.yaml"
        path.write_text(yaml.safe_dump({**TINY_CTC_CONFIG, **changes}))
        return path

    return write


def error_rate(result_txt: Path) -> float:
    """The Err % of the ``Sum/Avg`` row of an sclite-layout ``result.txt``."""
    from espnet_ext.scoring.result_txt import read_summary

    return read_summary(result_txt).errors


def _check_decodes(recipe: Path, exp: Path, test_sets, metric: str, below: float) -> dict:
    """Every decode dir of ``exp`` (greedy and beam): a hypothesis per utterance that was
    decoded (``dump/raw/<set>``), error below ``below`` %, sclite's counts equal to ours where
    sclite is installed (it leaves hyp.trn), RESULTS.md with a row per set. Returns
    ``{(decode dir name, set): error %}``."""
    from espnet_ext.scoring import read_text, sclite_available

    found = {}
    decodes = sorted(d for d in exp.glob("decode_*") if d.is_dir())
    assert {d.name.split("_")[2] for d in decodes} >= {"greedy", "beam"}, decodes
    results = (exp / "RESULTS.md").read_text(encoding="utf-8")
    for decode in decodes:
        for dset in test_sets:
            scored = read_text(recipe / "dump/raw" / dset / "text")
            hyps = read_text(decode / dset / "text")
            assert hyps.keys() == scored.keys(), f"{decode}/{dset}"
            score_dir = decode / dset / f"score_{metric}"
            err = error_rate(score_dir / "result.txt")
            assert err < below, f"{score_dir}: {metric.upper()} {err}% is not below {below}%"
            assert (score_dir / "hyp.trn").is_file() == sclite_available()
            assert f"|{dset}|{len(scored)}|" in results
            found[(decode.name, dset)] = err
    return found


def _portable_packed_config(exp: Path) -> dict:
    """The config packed in ``exp/packed_model.zip``: its wav2vec2 frontend is built from the
    architecture (``config``, 2 layers: the tiny preset), not a path, and only training-only keys
    may still name files of this machine. Returns it."""
    import zipfile

    import yaml

    from espnet_ext.espnet.packing import TRAINING_ONLY_KEYS, foreign_paths

    with zipfile.ZipFile(exp / "packed_model.zip") as archive:
        config = yaml.safe_load(archive.read(f"exp/{exp.name}/config.yaml"))
        names = archive.namelist()
    assert "path" not in config["frontend_conf"] and config["frontend_conf"]["config"]["encoder_layers"] == 2
    found = foreign_paths(config, names)
    print("absolute or local paths left in the packed config:", found)
    assert {key.split(".")[0] for key, _ in found} <= TRAINING_ONLY_KEYS
    return config


@pytest.fixture(scope="session")
def portable_packed_config():
    """``portable_packed_config(exp)``: see :func:`_portable_packed_config`."""
    return _portable_packed_config


@pytest.fixture(scope="session")
def check_decodes():
    """``check_decodes(recipe, exp, test_sets, metric, below)``: see :func:`_check_decodes`."""
    return _check_decodes


@pytest.fixture(scope="session")
def train_decode_score(run_recipe):
    """``train_decode_score(recipe, config, *args)``: :func:`_train_decode_score`."""
    return lambda recipe, config, *args: _train_decode_score(run_recipe, recipe, config, *args)


def _train_decode_score(run_recipe, recipe: Path, config: Path, *args: str) -> Path:
    """Stages 10-13 with ``config`` and greedy decoding, then 12-13 with the beam-search
    config; returns the experiment dir. Training on CPU: ``--ngpu 0`` (a corpus recipe's run.sh
    says ``--ngpu 1``)."""
    run_recipe(
        recipe,
        "--stage",
        "10",
        "--stop_stage",
        "13",
        "--ngpu",
        "0",
        "--nj",
        "1",
        "--inference_nj",
        "1",
        "--asr_config",
        str(config),
        "--asr_tag",
        "e2e",
        "--inference_config",
        "conf/decode_ctc_greedy.yaml",
        *args,
    )
    run_recipe(
        recipe,
        "--stage",
        "12",
        "--stop_stage",
        "13",
        "--inference_nj",
        "1",
        "--asr_config",
        str(config),
        "--asr_tag",
        "e2e",
        "--inference_config",
        "conf/decode_ctc_beam.yaml",
        *args,
    )
    return recipe / "exp" / "asr_e2e"


# --------------------------------------------------------------------------- language models
#: the recipe's conf/train_lm.yaml shrunk for a test: one small block (or LSTM layer), one epoch
TINY_LM_ARGS = {
    "transformer": "--max_epoch 1 --lm_conf layer=1 --lm_conf att_unit=32 --lm_conf head=2 --lm_conf unit=64",
    "seq_rnn": "--max_epoch 1 --lm_conf nlayers=1 --lm_conf unit=32",
}


@pytest.fixture(scope="session")
def lm_decode_score(run_recipe):
    """``lm_decode_score(recipe, config, test_set, *args)``: :func:`_lm_decode_score`."""
    return lambda recipe, config, test_set, *args: _lm_decode_score(run_recipe, recipe, config, test_set, *args)


def _lm_decode_score(run_recipe, recipe: Path, config: Path, test_set: str, *args: str) -> Path:
    """After :func:`_train_decode_score` (the same ``config`` and ``args``): stages 6-9 with the
    recipe's conf/train_lm.yaml (:data:`TINY_LM_ARGS`) and a 3-gram, then stages 12-13 of
    ``test_set`` with conf/decode_ctc_lm.yaml (the LM and the 3-gram, beam 2), on CPU. Checks the
    perplexity, the ARPA, a hypothesis per utterance and RESULTS.md; returns the LM decode dir."""
    import math

    import yaml

    from espnet_ext.scoring import read_text

    lm_type = yaml.safe_load((recipe / "conf/train_lm.yaml").read_text(encoding="utf-8"))["lm"]
    run_recipe(
        recipe,
        *("--stage", "6", "--stop_stage", "13", "--ngpu", "0", "--nj", "1", "--inference_nj", "1"),
        *("--test_sets", test_set),
        *("--use_lm", "true", "--use_ngram", "true", "--lm_args", TINY_LM_ARGS[lm_type]),
        *("--asr_config", str(config), "--asr_tag", "e2e", "--inference_config", "conf/decode_ctc_lm.yaml"),
        *("--inference_args", "--beam_size 2"),
        *args,
    )
    (lm,) = (recipe / "exp").glob("lm_train_lm_*")
    ppl = float((lm / "perplexity_test/ppl").read_text())
    tokens = (recipe / "exp/ngram/train.tokens").read_text(encoding="utf-8").splitlines()
    corpus = (recipe / "run.sh").resolve().parent.parent.name
    print(f"{corpus}: LM perplexity {ppl:.1f} on {test_set} ({len(tokens)} training sentences)")
    assert math.isfinite(ppl) and ppl > 1
    assert (recipe / "exp/ngram/3gram.arpa").read_text(encoding="utf-8").startswith("\\data\\")
    exp = recipe / "exp/asr_e2e"
    (decode,) = exp.glob(f"decode_ctc_lm_beam_size2_{lm.name}_valid.loss.ave_lmw*_ngram3w*_pen*")
    assert read_text(decode / test_set / "text").keys() == read_text(recipe / "dump/raw" / test_set / "text").keys()
    assert decode.name in (exp / "RESULTS.md").read_text(encoding="utf-8")
    return decode
