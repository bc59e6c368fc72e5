"""egs2/synth/study.sh, the whole chain at a tiny size: the corpus generated, pre-training
with checkpoints, CTC fine-tuning from random initialisation and from each checkpoint on the two
labeled subsets, decoding, scoring, and RESULTS_study.{md,png}. It checks that the chain works,
not the study's figures (a model trained for 10 updates learns nothing): those are in
egs2/synth/README.md, from the full-size command."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not all(shutil.which(c) for c in ("espeak-ng", "flite", "sox")) or not Path("/usr/share/games/fortunes").is_dir(),
    reason="espeak-ng, flite, sox and Debian's fortunes are installed by `make install` (as root)",
)

TINY = "--n_unlabeled 12 --n_train 24 --n_dev 3 --n_test 3 --subset_seconds 8,30"


def test_study_runs_the_whole_chain(project_root, venv_env, tmp_path):
    src = project_root / "egs2" / "synth"
    synth = tmp_path / "synth"
    for kind, driver in (("asr1", "asr.sh"), ("ssl1", "ssl.sh")):
        (synth / kind).mkdir(parents=True)
        for name in (driver, "path.sh", "cmd.sh", "db.sh", "run.sh", "conf", "local"):
            (synth / kind / name).symlink_to((src / kind / name).resolve())
    (synth / "study.sh").symlink_to(src / "study.sh")
    env = dict(venv_env, ESPNET_EXT_ROOT=str(project_root), SYNTH=str(tmp_path / "corpus"))
    result = subprocess.run(
        [
            "./study.sh",
            "--local_data_opts",
            TINY,
            "--test_sets",
            "test_seen test_other",
            "--ssl_args",
            "--max_epoch 2 --save_every_updates 1",  # 2 updates an epoch: checkpoints 1-4
            "--curve_every",
            "2",  # fine-tuned from 2 and 4
            "--asr_args",
            "--max_epoch 5 --num_iters_per_epoch 2",
        ],  # 10 updates (run.sh averages the last 5 epochs)
        cwd=synth,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode == 0, result.stderr[-4000:]

    with open(synth / "study_manifest.tsv", newline="") as f:
        runs = list(csv.DictReader(f, delimiter="\t"))
    got = sorted((r["arm"], r["subset"], r["updates"]) for r in runs)
    assert got == [
        ("pretrained", "train_10min", "2"),
        ("pretrained", "train_10min", "4"),
        ("pretrained", "train_1h", "4"),
        ("random", "train_10min", "0"),
        ("random", "train_1h", "0"),
    ]
    for r in runs:
        for test_set in ("test_seen", "test_other"):
            assert list((synth / r["exp"]).glob(f"decode_*/{test_set}/score_cer/result.txt")), r["exp"]
        assert not list((synth / r["exp"]).glob("decode_*/test_unseen"))  # --test_sets reaches asr1
    # the pre-trained runs start from the checkpoints (the training log names the file)
    log = (synth / "asr1/exp/asr_study_2updates_train_10min_seed0.log").read_text()
    assert "ssl_study_seed0/checkpoints/2updates.pth" in log

    report = (synth / "RESULTS_study.md").read_text()
    rows = [line.split("|")[1:3] for line in report.splitlines() if line.startswith("|train_")]
    assert rows == [
        ["train_10min", "test_seen"],
        ["train_10min", "test_other"],
        ["train_1h", "test_seen"],
        ["train_1h", "test_other"],
    ]
    curve = [
        line
        for line in report[report.index("|updates|test_seen|test_other|seeds|") :].splitlines()
        if line.startswith("|")
    ]
    assert [line.split("|")[1] for line in curve[2:]] == ["0", "2", "4"]
    assert "s wall in this invocation" in report and (synth / "RESULTS_study.png").stat().st_size > 10_000
