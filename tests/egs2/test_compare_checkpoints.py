"""compare_checkpoints.sh: the driver with a stand-in run.sh (fast), then on the mini recipe with three
checkpoints of a short real pre-training (slow).

The stand-in run.sh records its calls and writes score files whose error rates follow from the
checkpoint's update count: option passing, parallel jobs, failures, skipping and the table are
checked in seconds. The mini-recipe run fine-tunes for 4 batches from each checkpoint, so the
error rates are poor; what is checked is that every number in the table is the experiment's
own score, the order, the best row, the plot, and that a second run skips everything.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from espnet_ext import scoring
from espnet_ext.wav2vec2.importers import FORMAT

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "egs2" / "mini" / "asr1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

FAKE_RUN_SH = r"""#!/usr/bin/env bash
# Stand-in for a recipe's run.sh: records its call; stages 11-13 name the experiment as run.sh does
# (<config>_<ssl tag>_<N>updates, or <config>_<token type> without --pretrained), write it to
# --asr_exp_file, and write score files, once: a second call says "already done".
set -euo pipefail
echo "$*" >> calls.txt
stop=""; pretrained=""; config=""; expdir=exp; exp_file=""
while [ $# -gt 0 ]; do
    case "$1" in --stop_stage) stop=$2 ;; --pretrained) pretrained=$2 ;; --asr_config) config=$2 ;;
        --expdir) expdir=$2 ;; --asr_exp_file) exp_file=$2 ;; esac
    shift 2
done
if [ "${stop}" -le 5 ]; then mkdir -p data/token_list/char; touch data/token_list/char/.done; exit 0; fi
[ "${stop}" -eq 10 ] && exit 0
case "${pretrained}" in *ssl_bad*) echo "training diverged" >&2; exit 1 ;; esac
tag=$(basename "${config}" .yaml)_char; updates=0
if [ -n "${pretrained}" ]; then
    ssl=$(basename "$(dirname "$(dirname "${pretrained}")")")
    updates=$(basename "${pretrained}" updates.pth)
    tag=$(basename "${config}" .yaml)_${ssl#ssl_}_${updates}updates
fi
echo "${expdir}/asr_${tag}" > "${exp_file}"
if [ -f "${expdir}/asr_${tag}/.trained" ]; then echo "already done: ${expdir}/asr_${tag} (same inputs)" >&2; exit 0; fi
mkdir -p running; mkdir "running/${tag}"; ls running | wc -l >> concurrency.txt; sleep 2; rmdir "running/${tag}"
for dset in dev test; do
    err=$((100 - updates + ${#dset}))   # dev: 103 - N, test: 104 - N
    mkdir -p "${expdir}/asr_${tag}/decode_fake/${dset}/score_cer"
    printf '| Sum/Avg|    1     100 | 0.0 0.0 0.0 0.0 %s.0 100.0 |\n' "${err}" \
        > "${expdir}/asr_${tag}/decode_fake/${dset}/score_cer/result.txt"
done
touch "${expdir}/asr_${tag}/.trained"
"""


def own_checkpoint(path: Path) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "version": 1, "config": {}, "model": {}}, path)
    return path


def driver(recipe: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["./compare_checkpoints.sh", *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=1800
    )


def table_rows(markdown: str):
    lines = [line[1:-1].split("|") for line in markdown.splitlines() if line.startswith("|")]
    return lines[0], lines[2:]


# --------------------------------------------------------------------------- stand-in run.sh
@pytest.fixture(scope="module")
def fake_recipe(project_root, venv_env, tmp_path_factory):
    recipe = tmp_path_factory.mktemp("fake") / "asr1"
    recipe.mkdir()
    for name in ("path.sh", "compare_checkpoints.sh"):
        (recipe / name).symlink_to((MINI / name).resolve())
    (recipe / "run.sh").write_text(FAKE_RUN_SH)
    (recipe / "run.sh").chmod(0o755)
    (recipe / "conf").mkdir()
    (recipe / "conf/ft.yaml").write_text("frontend: wav2vec2\n")
    for n in (20, 5, 10):
        own_checkpoint(recipe / "exp/ssl_a/checkpoints" / f"{n}updates.pth")
    own_checkpoint(recipe / "exp/ssl_bad/checkpoints/7updates.pth")
    env = dict(venv_env, ESPNET_EXT_ROOT=str(project_root))
    common = ("--asr_config", "conf/ft.yaml", "--asr_args", "--max_epoch 1", "--inference_nj", "1")
    first = driver(
        recipe,
        env,
        "--checkpoints",
        "exp/ssl_a/checkpoints/*updates.pth exp/ssl_bad/checkpoints/*.pth",
        "--nj_ckpt",
        "2",
        *common,
    )
    return recipe, env, common, first


def test_driver_passes_options_and_runs_two_at_a_time(fake_recipe):
    recipe, _, _, first = fake_recipe
    calls = (recipe / "calls.txt").read_text().splitlines()
    assert calls[0].startswith("--inference_nj 1 --expdir exp --feats_normalize config --stage 1 --stop_stage 5")
    assert sum("--stage 10 --stop_stage 10" in c for c in calls) == 1  # shapes once, shared
    finetunes = [c for c in calls if "--stage 11 --stop_stage 13" in c]
    assert len(finetunes) == 4
    for n in (5, 10, 20):
        path = recipe / "exp/ssl_a/checkpoints" / f"{n}updates.pth"
        (call,) = [c for c in finetunes if f"--pretrained {path} " in c]
        assert "--asr_args --max_epoch 1 " in call and "--frontend_conf" not in call and "--asr_tag" not in call
        assert "--asr_config conf/ft.yaml" in call and "--inference_nj 1" in call
        assert f"--asr_exp_file exp/compare_ft/exps/ft_ssl_a_{n}updates.path" in call
        # the row's link to the experiment run.sh named
        link = recipe / f"exp/compare_ft/exps/asr_ft_ssl_a_{n}updates"
        assert link.resolve() == recipe / f"exp/asr_ft_a_{n}updates"
    concurrency = [int(x) for x in (recipe / "concurrency.txt").read_text().split()]
    assert max(concurrency) == 2  # --nj_ckpt 2: two at a time, never more
    assert "4 fine-tuning(s), 2 at a time" in first.stderr


def test_a_failure_is_listed_and_the_others_tabulated(fake_recipe):
    recipe, _, _, first = fake_recipe
    assert first.returncode == 1
    assert "1 of 4 checkpoint(s) not finished: ssl_bad_7updates" in first.stderr
    assert "training diverged" in first.stderr  # the end of its log is shown
    assert (recipe / "exp/compare_ft/log/ft_ssl_bad_7updates.log").is_file()
    header, rows = table_rows((recipe / "RESULTS_checkpoints.md").read_text())
    assert header == ["checkpoint", "updates", "dev CER", "test CER", "note"]
    assert [r[:4] for r in rows] == [
        ["ssl_a_5updates", "5", "98.0", "99.0"],
        ["ssl_bad_7updates", "7", "-", "-"],
        ["ssl_a_10updates", "10", "93.0", "94.0"],
        ["**ssl_a_20updates**", "20", "83.0", "84.0"],
    ]
    # the stand-in's result.txt has no alignments: the rows cannot be tested against the best
    assert [r[4] for r in rows] == ["not compared", "not finished", "not compared", "**best**"]
    assert (recipe / "RESULTS_checkpoints.png").read_bytes()[:8] == PNG_SIGNATURE


def test_second_run_skips_finished_checkpoints(fake_recipe):
    recipe, env, common, _ = fake_recipe
    results = [recipe / "RESULTS_checkpoints.md", recipe / "RESULTS_checkpoints.png"]
    mtimes = [p.stat().st_mtime for p in results]
    n_calls = len((recipe / "calls.txt").read_text().splitlines())
    again = driver(recipe, env, "--checkpoints", "exp/ssl_a/checkpoints/*updates.pth", *common)
    assert again.returncode == 0, again.stderr
    # run.sh is asked again and finds each experiment done (same inputs)
    assert again.stderr.count("fine-tuned before in exp/asr_ft_a_") == 3, again.stderr
    calls = (recipe / "calls.txt").read_text().splitlines()[n_calls:]
    assert len(calls) == 5 and "--stop_stage 5" in calls[0] and "--stop_stage 10" in calls[1]
    assert [p.stat().st_mtime for p in results] != mtimes  # the failed row is gone: rewritten ...
    mtimes = [p.stat().st_mtime for p in results]
    third = driver(recipe, env, "--checkpoints", "exp/ssl_a/checkpoints/*updates.pth", "--skip_data", "true", *common)
    assert third.returncode == 0, third.stderr
    assert [p.stat().st_mtime for p in results] == mtimes  # ... but not again when nothing changed
    assert "unchanged: RESULTS_checkpoints.md" in third.stderr


def test_driver_rejects_bad_options(fake_recipe, tmp_path):
    recipe, env, common, _ = fake_recipe
    bad = driver(recipe, env, "--checkpoints", "exp/ssl_a/checkpoints/5updates.pth", "--stage", "11", *common)
    assert bad.returncode == 1 and "--stage is set by this script" in bad.stderr
    none = driver(recipe, env, "--checkpoints", "exp/nothing/*.pth", *common)
    assert none.returncode == 1 and "'exp/nothing/*.pth': expected at least one match" in none.stderr
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("path.sh", "compare_checkpoints.sh", "run.sh", "conf"):
        (fresh / name).symlink_to(recipe / name)
    skipped = driver(
        fresh, env, "--checkpoints", str(recipe / "exp/ssl_a/checkpoints/5updates.pth"), "--skip_data", "true", *common
    )
    assert skipped.returncode == 1 and "stages 1-5 are not done" in skipped.stderr


def test_global_mvn_gives_each_checkpoint_its_statistics(fake_recipe):
    recipe, env, _, _ = fake_recipe
    (recipe / "conf/mvn.yaml").write_text("frontend: wav2vec2\nnormalize: global_mvn\n")
    n_calls = len((recipe / "calls.txt").read_text().splitlines())
    run = driver(
        recipe,
        env,
        "--checkpoints",
        "exp/ssl_a/checkpoints/5updates.pth exp/ssl_a/checkpoints/10updates.pth",
        "--asr_config",
        "conf/mvn.yaml",
        "--expdir",
        "exp_mvn",
        "--results",
        "RESULTS_mvn",
        "--skip_data",
        "true",
    )
    assert run.returncode == 0, run.stderr
    calls = (recipe / "calls.txt").read_text().splitlines()[n_calls:]
    assert len(calls) == 2 and not any("--stop_stage 10 " in c for c in calls)  # no shared stage 10
    for call in calls:  # statistics with each experiment (run.sh names their directory by their inputs)
        assert "--stage 10 --stop_stage 13 " in call and "--asr_stats_dir" not in call
        assert "--feats_normalize config" in call
    assert (recipe / "exp_mvn/asr_mvn_a_10updates/.done_compare").is_file()
    assert (recipe / "RESULTS_mvn.md").is_file() and (recipe / "RESULTS_mvn.png").is_file()


def test_random_init_adds_a_row_fine_tuned_from_the_configs_preset(fake_recipe):
    recipe, env, _, _ = fake_recipe
    args = (
        "--checkpoints",
        "exp/ssl_a/checkpoints/5updates.pth",
        "--random_init",
        "true",
        "--skip_data",
        "true",
        "--asr_args",
        "--max_epoch 1",
        "--results",
        "RESULTS_random",
    )
    refused = driver(recipe, env, *args, "--asr_config", "conf/ft.yaml")
    assert refused.returncode == 1
    assert "--random_init true needs frontend_conf.preset in conf/ft.yaml" in refused.stderr
    (recipe / "conf/ftp.yaml").write_text("frontend: wav2vec2\nfrontend_conf:\n    preset: tiny\n")
    n_calls = len((recipe / "calls.txt").read_text().splitlines())
    run = driver(recipe, env, *args, "--asr_config", "conf/ftp.yaml")
    assert run.returncode == 0, run.stderr
    finetunes = [c for c in (recipe / "calls.txt").read_text().splitlines()[n_calls:] if "--stop_stage 13" in c]
    assert len(finetunes) == 2 and sum("--pretrained" not in c for c in finetunes) == 1
    # the random-init row is the experiment run.sh trains without --pretrained (the config's preset)
    assert (recipe / "exp/compare_ftp/exps/asr_ftp_random_init").resolve() == recipe / "exp/asr_ftp_char"
    _, rows = table_rows((recipe / "RESULTS_random.md").read_text())
    assert [r[1] for r in rows] == ["0", "5"]
    assert [float(x) for x in rows[0][2:4]] == [103.0, 104.0]  # the stand-in's scores for 0 updates


# --------------------------------------------------------------------------- the mini recipe
def pretrain(recipe: Path, env: dict) -> Path:
    """A short real pre-training on the recipe's dumped training audio: 6 batches of ~12 s, a
    checkpoint every 2 updates (2, 4 and 6 updates), a log line every 2 batches."""
    import soundfile

    shapes = recipe / "exp/ssl_shapes"
    for dset in ("train", "dev"):
        lines = []
        for line in (recipe / f"dump/raw/{dset}/wav.scp").read_text().splitlines():
            key, path = line.split(maxsplit=1)
            lines.append(f"{key} {soundfile.info(str(recipe / path)).frames}")
        (shapes / dset).mkdir(parents=True)
        (shapes / dset / "speech_shape").write_text("\n".join(lines) + "\n")
    exp = recipe / "exp/ssl_tiny"
    exp.mkdir(parents=True)
    cmd = [
        sys.executable,
        "-m",
        "espnet_ext.bin.ssl_train",
        "--use_preprocessor",
        "true",
        "--train_data_path_and_name_and_type",
        "dump/raw/train/wav.scp,speech,sound",
        "--train_shape_file",
        str(shapes / "train/speech_shape"),
        "--valid_data_path_and_name_and_type",
        "dump/raw/dev/wav.scp,speech,sound",
        "--valid_shape_file",
        str(shapes / "dev/speech_shape"),
        "--fold_length",
        "80000",
        "--ngpu",
        "0",
        "--output_dir",
        str(exp),
        "--config",
        str(ROOT / "egs2/mini/ssl1/conf/tuning/train_ssl_w2v2_tiny.yaml"),
        "--max_epoch",
        "1",
        "--num_iters_per_epoch",
        "6",
        "--batch_bins",
        "200000",
        "--save_every_updates",
        "2",
        "--log_interval",
        "2",
    ]
    with open(exp / "train.log", "w") as log:
        subprocess.run(cmd, cwd=recipe, env=env, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=900)
    return exp


@pytest.fixture(scope="module")
def mini_run(project_root, venv_env, tmp_path_factory):
    recipe = tmp_path_factory.mktemp("mini") / "asr1"
    recipe.mkdir()
    for name in ("asr.sh", "path.sh", "cmd.sh", "db.sh", "run.sh", "conf", "local", "compare_checkpoints.sh"):
        (recipe / name).symlink_to((MINI / name).resolve())
    env = dict(venv_env, ESPNET_EXT_ROOT=str(project_root))
    subprocess.run(
        ["./run.sh", "--stage", "1", "--stop_stage", "5"],
        cwd=recipe,
        env=env,
        check=True,
        capture_output=True,
        timeout=900,
    )
    ssl_exp = pretrain(recipe, env)
    args = (
        "--checkpoints",
        "exp/ssl_tiny/checkpoints/*updates.pth",
        "--asr_config",
        "conf/tuning/train_asr_w2v2_tiny_ctc.yaml",
        "--asr_args",
        "--max_epoch 1 --num_iters_per_epoch 4",
        "--average",
        "last:1",
        "--inference_nj",
        "1",
        "--nj_ckpt",
        "2",
    )
    first = driver(recipe, env, *args)
    assert first.returncode == 0, first.stderr[-5000:]
    return recipe, env, args, first, ssl_exp


@pytest.mark.slow
def test_table_has_three_rows_of_the_experiments_scores(mini_run):
    recipe, _, _, first, _ = mini_run
    header, rows = table_rows((recipe / "RESULTS_checkpoints.md").read_text())
    assert header == ["checkpoint", "updates", "dev CER", "test CER", "dev WER", "test WER", "note"]
    assert [r[1] for r in rows] == ["2", "4", "6"]  # ordered by pre-training updates
    means = []
    for row, n in zip(rows, (2, 4, 6)):
        exp = recipe / f"exp/asr_train_asr_w2v2_tiny_ctc_tiny_{n}updates"
        (decode,) = exp.glob("decode_*")
        expected = [
            scoring.read_summary(decode / s / f"score_{m}/result.txt").errors
            for m in ("cer", "wer")
            for s in ("dev", "test")
        ]
        assert [float(x) for x in row[2:6]] == expected
        means.append(sum(expected[:2]) / 2)
        conf = yaml.safe_load((exp / "config.yaml").read_text())
        assert conf["frontend_conf"]["path"] == str(recipe / f"exp/ssl_tiny/checkpoints/{n}updates.pth")
        assert conf["frontend_conf"]["preset"] is None and conf["max_epoch"] == 1
    best = means.index(min(means))
    assert rows[best][6] == "**best**"
    # the others tested against the best on the same utterances (MAPSSWE, pooled over the test sets)
    for i, row in enumerate(rows):
        if i != best:
            assert re.fullmatch(
                r"(\*\*)?(not significantly worse|significantly worse|differs) "
                r"\(p[=<][0-9.]+(, sign test)?, \d+ segments?\)(\*\*)?",
                row[6],
            ), row
    assert "Successfully finished" in first.stderr


@pytest.mark.slow
def test_plot_is_a_valid_png(mini_run):
    import matplotlib.image

    recipe = mini_run[0]
    png = recipe / "RESULTS_checkpoints.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(png)
    assert image.shape[:2] == (500, 800) and image.std() > 0


@pytest.mark.slow
def test_second_run_skips_all_three(mini_run):
    recipe, env, args, _, _ = mini_run
    watched = [recipe / "RESULTS_checkpoints.md", recipe / "RESULTS_checkpoints.png"]
    for exp in recipe.glob("exp/asr_train_asr_w2v2_tiny_ctc_tiny_*"):
        watched += [exp / "last1.ave.pth", exp / "RESULTS.md", *exp.glob("decode_*/*/score_*/result.txt")]
    assert len(watched) == 2 + 3 * (2 + 4)
    mtimes = [p.stat().st_mtime for p in watched]
    again = driver(recipe, env, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    for n in (2, 4, 6):
        assert (
            f"ssl_tiny_{n}updates: fine-tuned before in exp/asr_train_asr_w2v2_tiny_ctc_tiny_{n}updates" in again.stderr
        )
    assert [p.stat().st_mtime for p in watched] == mtimes


@pytest.mark.slow
def test_ssl_report_of_the_short_pretraining(mini_run, venv_env):
    _, env, _, _, ssl_exp = mini_run
    result = subprocess.run(
        [sys.executable, "-m", "espnet_ext.bin.ssl_report", str(ssl_exp)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    text = (ssl_exp / "report.md").read_text()
    assert "checkpoints: 2updates.pth, 4updates.pth, 6updates.pth" in text
    log_lines = int(re.search(r"(\d+) log-interval lines", text).group(1))
    assert log_lines == 3  # batches 1-2, 3-4, 5-6
    assert re.search(r"\|L_m \(contrastive\) \(`loss_m`\)\|valid\|[0-9.]+\|[0-9.]+\|", text)
    assert (ssl_exp / "report.png").read_bytes()[:8] == PNG_SIGNATURE
    assert os.path.getsize(ssl_exp / "report.png") > 20000
