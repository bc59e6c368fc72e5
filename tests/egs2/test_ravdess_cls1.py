"""Integration: egs2/ravdess/cls1, stages 1-8, on the mini RAVDESS-layout corpus, in a copy of
the recipe directory; and a dry run of every cls1 training config.

One run of the recipe (the tiny preset, 2 epochs) is shared by the tests below. The corpus
gets a file with a bad name (in a test actor), a song file and a corrupt WAV (in a training
actor): the first two are listed in data/skipped.txt, the third in stage 2's excluded.txt,
and the run goes on to RESULTS.md with accuracy and macro-F1 above chance (1/8).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs2" / "ravdess" / "cls1"
RECIPE_FILES = ("cls.sh", "path.sh", "cmd.sh", "db.sh", "run.sh", "conf", "local")
CONFIGS = sorted(ROOT.glob("egs2/*/cls1/conf/tuning/*.yaml"))
EMOTIONS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
BAD_NAME = "Actor_23/happy_take2.wav"
SONG = "Actor_01/03-02-03-01-01-01-01.wav"
CORRUPT = "Actor_05/03-01-03-01-02-01-05.wav"


def make_recipe_copy(dest: Path) -> Path:
    """A recipe dir whose files link to the real ones; outputs stay in ``dest``."""
    dest.mkdir(parents=True)
    for name in RECIPE_FILES:
        (dest / name).symlink_to(RECIPE / name)
    return dest


def make_corpus(dest: Path) -> Path:
    from tools.mini_ravdess import write_mini_ravdess

    write_mini_ravdess(dest)
    shutil.copy(dest / "Actor_23" / "03-01-03-01-01-01-23.wav", dest / BAD_NAME)
    shutil.copy(dest / "Actor_01" / "03-01-03-01-01-01-01.wav", dest / SONG)
    (dest / CORRUPT).write_bytes(b"RIFF" + np.random.default_rng(0).bytes(3000))
    return dest


def run(recipe: Path, env: dict, *args: str, script: str = "./run.sh") -> subprocess.CompletedProcess:
    return subprocess.run([script, *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="module")
def recipe_run(project_root, venv_env, tmp_path_factory):
    base = tmp_path_factory.mktemp("ravdess")
    corpus = make_corpus(base / "corpus")
    recipe = make_recipe_copy(base / "cls1")
    env = dict(venv_env, ESPNET_EXT_ROOT=str(project_root), RAVDESS=str(corpus))
    start = time.time()
    result = run(
        recipe,
        env,
        "--cls_config",
        "conf/tuning/train_cls_w2v2_tiny.yaml",
        "--ngpu",
        "0",  # (run.sh says --ngpu 1)
        "--nj",
        "1",
        "--inference_nj",
        "1",
        "--test_sets",
        "test",
        "--cls_args",
        "--max_epoch 2",
        "--local_data_opts",
        "--expected_files 193",
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return recipe, env, result, time.time() - start, corpus


def results_row(results: str, dataset: str):
    match = re.search(rf"^\|{dataset}\|(\d+)\|([\d.]+)\|([\d.]+)\|(\d+)\|$", results, re.M)
    assert match, results
    return int(match.group(1)), float(match.group(2)), float(match.group(3)), int(match.group(4))


@pytest.mark.slow
def test_data_dirs_and_listed_bad_files(recipe_run):
    recipe, _, _, _, corpus = recipe_run
    sizes = {name: len((recipe / "data" / name / "text").read_text().splitlines()) for name in ("train", "dev", "test")}
    assert sizes == {"train": 161, "dev": 16, "test": 16}  # 160 + the corrupt file
    skipped = dict(line.split("\t") for line in (recipe / "data/skipped.txt").read_text().splitlines())
    assert set(skipped) == {str(corpus / BAD_NAME), str(corpus / SONG)}
    assert "does not follow" in skipped[str(corpus / BAD_NAME)] and "song" in skipped[str(corpus / SONG)]
    excluded = (recipe / "dump/raw/org/train/excluded.txt").read_text()
    assert excluded.startswith("Actor_05-03-01-03-01-02-01-05\t") and str(corpus / CORRUPT) in excluded
    assert len((recipe / "dump/raw/train/wav.scp").read_text().splitlines()) == 160
    assert (recipe / "data/token_list/labels.txt").read_text().split() == EMOTIONS + ["<unk>"]


@pytest.mark.slow
def test_results_above_chance_with_confusion_matrix(recipe_run):
    recipe, _, result, _, _ = recipe_run
    exp = recipe / "exp" / "cls_train_cls_w2v2_tiny"
    results = (exp / "RESULTS.md").read_text(encoding="utf-8")
    snt, acc, macro_f1, missing = results_row(results, "test")
    assert (snt, missing) == (16, 0)
    assert acc > 2 * 100 / 8 and macro_f1 > 2 * 100 / 8, results  # twice chance, at least
    predictions = (exp / "inference_valid.acc.ave/test/text").read_text().splitlines()
    assert len(predictions) == 16 and all(line.split()[1] in EMOTIONS for line in predictions)
    png = exp / "inference_valid.acc.ave/test/scoring/confusion.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(str(png)).shape[:2] >= (300, 300)
    table = results.split("### test: confusion matrix")[1].split("### test: per class")[0]
    rows = [line for line in table.splitlines() if line.startswith("|") and line.split("|")[1] in EMOTIONS]
    counts = np.array([[int(x) for x in row.strip("|").split("|")[1:]] for row in rows])
    assert counts.shape == (8, 8) and counts.sum() == 16 and np.trace(counts) == round(acc * 16 / 100)
    assert "Successfully finished" in result.stderr


@pytest.mark.slow
def test_rerun_skips_finished_steps(recipe_run):
    recipe, env, _, first_time, _ = recipe_run
    exp = recipe / "exp" / "cls_train_cls_w2v2_tiny"
    watched = [exp / "valid.acc.ave.pth", exp / "train.log", exp / "inference_valid.acc.ave/test/text"]
    watched.append(exp / "packed_model.zip")
    mtimes = [p.stat().st_mtime for p in watched]
    start = time.time()
    again = run(
        recipe,
        env,
        "--cls_config",
        "conf/tuning/train_cls_w2v2_tiny.yaml",
        "--test_sets",
        "test",
        "--cls_args",
        "--max_epoch 2",
        "--ngpu",
        "0",
        "--stage",
        "2",
        "--stop_stage",
        "9",
    )
    assert again.returncode == 0, again.stderr[-3000:]
    # format, filter, stats, train, inference, scoring, packing
    assert again.stderr.count("already done") == 3 + 2 + 1 + 1 + 1 + 1 + 1, again.stderr
    assert [p.stat().st_mtime for p in watched] == mtimes
    assert time.time() - start < first_time / 2


@pytest.mark.slow
def test_strict_and_missing_corpus(recipe_run, tmp_path):
    _, env, _, _, corpus = recipe_run
    recipe = make_recipe_copy(tmp_path / "cls1")
    strict = run(recipe, env, "--strict", "true", script="local/data.sh")
    assert strict.returncode == 1 and str(corpus / BAD_NAME) in strict.stderr
    assert "do not follow the RAVDESS layout" in strict.stderr
    missing = run(recipe, dict(env, RAVDESS=str(tmp_path / "nowhere")), script="local/data.sh")
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "--download true" in missing.stderr
    unset = run(recipe, dict(env, RAVDESS=""), script="local/data.sh")
    assert unset.returncode == 2 and "set RAVDESS in db.sh" in unset.stderr
    count = run(recipe, env, script="local/data.sh")  # the default expects the full corpus
    assert count.returncode == 1 and "193 files in data/{train,dev,test}, expected 1440" in count.stderr


# ------------------------------------------------------------------------ config dry runs


def test_there_are_configs():
    assert {p.name for p in CONFIGS} >= {
        "train_cls_w2v2_tiny.yaml",
        "train_cls_w2v2_base_frozen.yaml",
        "train_cls_w2v2_base_finetune.yaml",
    }
    assert (RECIPE / "conf/train_cls.yaml").resolve().parent == RECIPE / "conf/tuning"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "egs2")))
def test_config_builds_and_steps(config, tiny_checkpoint, tmp_path):
    """The config builds with CLSTask; one step gives a finite loss; a frozen backbone gets no
    gradient while the head does, an unfrozen one gets one."""
    from espnet_ext.bin.cls_train import CLSTask

    conf = yaml.safe_load(config.read_text(encoding="utf-8"))
    if "path" in conf.get("frontend_conf", {}):
        conf["frontend_conf"]["path"] = str(tiny_checkpoint)
    patched = tmp_path / "config.yaml"
    patched.write_text(yaml.safe_dump(conf), encoding="utf-8")
    args = CLSTask.get_parser().parse_args(["--config", str(patched), "--token_list", "x"])
    args.token_list = EMOTIONS + ["<unk>"]
    model = CLSTask.build_model(args)
    model.train()
    torch.manual_seed(0)
    loss, stats, _ = model(
        torch.randn(2, 16000) * 0.1, torch.tensor([16000, 12000]), torch.tensor([[2], [5]]), torch.tensor([1, 1])
    )
    assert torch.isfinite(loss) and "acc" in stats
    loss.backward()
    head = model.decoder.linear_out.weight.grad
    grads = [p.grad for p in model.frontend.model.parameters()]
    assert head is not None and head.abs().sum() > 0
    if conf["frontend_conf"].get("freeze_finetune_updates", 0) > 0:
        assert all(g is None for g in grads), "a frozen backbone must get no gradient"
    else:
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
    if conf["frontend_conf"].get("weighted_sum"):
        assert model.frontend.layer_weights.grad is not None


# ------------------------------------------------------------------------ a packed model elsewhere

LOAD_ELSEWHERE = """
import json, sys
import espnet_ext
import soundfile
from espnet_model_zoo.downloader import ModelDownloader
from espnet2.bin.cls_inference import Classification
zip_path, wavs = sys.argv[1], json.loads(open(sys.argv[2]).read())
classify = Classification(**ModelDownloader("cache").unpack_local_file(zip_path), device="cpu")
for utt, wav in wavs:
    _, scores, label = classify(soundfile.read(wav)[0])
    print("PRED", utt, label, *scores.tolist())
"""


@pytest.mark.slow
def test_packed_model_fine_tuned_from_a_checkpoint_classifies_elsewhere(
    recipe_run, tiny_checkpoint, tmp_path, portable_packed_config
):
    """Fine-tuned from a pre-training checkpoint (frontend_conf.path) and packed by stage 9: with the
    checkpoint moved away and the experiment dir too, a fresh process in another directory loads
    the zip and predicts what stage 7 predicted, utterance for utterance."""
    recipe, env, _, _, _ = recipe_run
    checkpoint = tmp_path / "ssl" / "100updates.pth"
    checkpoint.parent.mkdir()
    shutil.copy(tiny_checkpoint, checkpoint)
    result = run(
        recipe,
        env,
        "--cls_config",
        "conf/tuning/train_cls_w2v2_tiny.yaml",
        "--test_sets",
        "test",
        "--stage",
        "6",
        "--stop_stage",
        "9",
        "--ngpu",
        "0",
        "--nj",
        "1",
        "--inference_nj",
        "1",
        "--cls_tag",
        "pretrained",
        "--cls_args",
        f"--max_epoch 1 --frontend_conf preset=null --frontend_conf path={checkpoint}",
    )
    assert result.returncode == 0, result.stderr[-5000:]
    (exp,) = (recipe / "exp").glob("cls_pretrained*")
    assert yaml.safe_load((exp / "config.yaml").read_text())["frontend_conf"]["path"] == str(checkpoint)
    (stage7,) = exp.glob("inference*/test/text")
    assert f"Stage 9: pack exp/{exp.name}/valid.acc.ave.pth into exp/{exp.name}/packed_model.zip" in result.stderr
    portable_packed_config(exp)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(exp / "packed_model.zip", elsewhere / "model.zip")
    wavs = [line.split(maxsplit=1) for line in (recipe / "dump/raw/test/wav.scp").read_text().splitlines()]
    (elsewhere / "wavs.json").write_text(json.dumps([(utt, str(recipe / wav)) for utt, wav in wavs]))
    checkpoint.rename(tmp_path / "moved.pth")
    exp.rename(exp.with_name(exp.name + ".away"))
    try:
        loaded = subprocess.run(
            ["python", "-c", LOAD_ELSEWHERE, "model.zip", "wavs.json"],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        exp.with_name(exp.name + ".away").rename(exp)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    rows = [line.split()[1:] for line in loaded.stdout.splitlines() if line.startswith("PRED ")]
    predicted = {row[0]: row[1] for row in rows}
    expected = dict(line.split(maxsplit=1) for line in stage7.read_text().splitlines())
    print(
        f"packed model elsewhere: {sum(predicted[u] == expected[u] for u in expected)} of {len(expected)} "
        "predictions equal stage 7's"
    )
    assert predicted == expected and len(expected) == 16
    # the class probabilities too (stage 7's --output_all_probabilities): the same network, not a lucky label
    scores = {
        utt: [float(x) for x in line.split()]
        for utt, line in (line.split(maxsplit=1) for line in (stage7.parent / "score").read_text().splitlines())
    }
    packed = {row[0]: [float(x) for x in row[2:]] for row in rows}
    assert packed.keys() == scores.keys() and len(scores[rows[0][0]]) == 8
    assert max(abs(a - b) for utt in scores for a, b in zip(packed[utt], scores[utt])) < 1e-5
