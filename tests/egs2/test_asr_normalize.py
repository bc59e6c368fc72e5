"""The stage driver's feature normalization (--feats_normalize) and its checks before training.

asr.sh runs in a recipe directory whose cmd.sh launches a fake job launcher that records its
arguments (no data, no training): what stages 10 and 11 would run, or the error they stop with.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "egs2" / "mini" / "asr1"
GLOBAL_MVN = "conf/tuning/train_asr_w2v2_mini_ctc.yaml"  # normalize: global_mvn
NO_NORMALIZE = "conf/tuning/train_asr_w2v2_tiny_ctc.yaml"  # normalize: null
SHAPES = "exp/asr_stats_train_char_16000"  # shapes of every experiment
MVN = f"{SHAPES}_global_mvn"  # feature statistics: named by the frontend's inputs (another gets _<fingerprint>)


@pytest.fixture
def recipe(tmp_path):
    recipe = tmp_path / "asr1"
    recipe.mkdir()
    for name in ("asr.sh", "path.sh", "conf"):
        (recipe / name).symlink_to(MINI / name)
    fake = recipe / "fake_launch.sh"
    # training "succeeds"; collecting statistics "fails" (it would leave files for the aggregation)
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> launched.txt\n[[ "$*" != *--collect_stats* ]]\n')
    fake.chmod(0o755)
    (recipe / "cmd.sh").write_text(f"export train_cmd={fake} cuda_cmd={fake} decode_cmd={fake}\n")
    return recipe


def asr(run_recipe, recipe: Path, stage: int, config: str, *args: str, check: bool = True):
    return run_recipe(
        recipe,
        "--stage",
        str(stage),
        "--stop_stage",
        str(stage),
        "--train_set",
        "train",
        "--valid_set",
        "dev",
        "--test_sets",
        "test",
        "--asr_config",
        config,
        *args,
        script="./asr.sh",
        check=check,
    )


def stats_files(directory: Path, feats: bool = False) -> None:
    for name in ("train", "valid"):
        (directory / name).mkdir(parents=True)
        for shape in ("speech_shape", "text_shape.char"):
            (directory / name / shape).write_text("u1 16000\n")
    if feats:
        (directory / "train" / "feats_stats.npz").write_bytes(b"")


def stage_10_records_its_inputs(run_recipe, recipe: Path, config: str, *args: str) -> None:
    """Run stage 10 (the fake launcher makes its collection fail, after the statistics directory
    has recorded its inputs, as a real stage 10 does before collecting), then forget its launch."""
    for name in ("train", "dev"):
        (recipe / "dump/raw" / name).mkdir(parents=True, exist_ok=True)
        (recipe / "dump/raw" / name / "wav.scp").write_text("u1 a.wav\n")
    asr(run_recipe, recipe, 10, config, "--nj", "1", *args, check=False)
    (recipe / "launched.txt").unlink()


def launched(recipe: Path) -> list:
    path = recipe / "launched.txt"
    return [shlex.split(line) for line in path.read_text().splitlines()] if path.is_file() else []


def option(argv: list, name: str) -> list:
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == name]


def test_stage_11_without_stage_10_says_which_stage_to_run(recipe, run_recipe):
    result = asr(run_recipe, recipe, 11, GLOBAL_MVN, "--asr_tag", "new", check=False)
    assert result.returncode != 0 and not launched(recipe)
    assert (
        f"{MVN}/train/feats_stats.npz not found (normalize: global_mvn): run stage 10 for this experiment (--stage 10)"
    ) in result.stderr
    stage_10_records_its_inputs(run_recipe, recipe, GLOBAL_MVN, "--asr_tag", "new")
    stats_files(recipe / MVN)  # the shapes, not the feature statistics
    result = asr(run_recipe, recipe, 11, GLOBAL_MVN, "--asr_tag", "new", check=False)
    assert result.returncode != 0 and f"{MVN}/train/feats_stats.npz not found" in result.stderr
    result = asr(run_recipe, recipe, 11, NO_NORMALIZE, check=False)
    assert result.returncode != 0 and not launched(recipe)
    assert f"{SHAPES}/train/speech_shape not found: run stage 10 first (--stage 10)" in result.stderr


@pytest.mark.parametrize(
    "config, feats_normalize, expected",
    [
        (GLOBAL_MVN, "config", ["global_mvn", f"stats_file={MVN}/train/feats_stats.npz"]),
        (GLOBAL_MVN, "none", ["none"]),
        (GLOBAL_MVN, "utterance_mvn", ["utterance_mvn"]),
        (NO_NORMALIZE, "config", ["none"]),
        (NO_NORMALIZE, "global_mvn", ["global_mvn", f"stats_file={MVN}/train/feats_stats.npz"]),
    ],
)
def test_the_option_decides_what_training_normalizes_with(recipe, run_recipe, config, feats_normalize, expected):
    if expected[0] == "global_mvn":
        stage_10_records_its_inputs(
            run_recipe, recipe, config, "--asr_tag", "tag", "--feats_normalize", feats_normalize
        )
    stats_files(recipe / (MVN if expected[0] == "global_mvn" else SHAPES), feats=True)
    result = asr(run_recipe, recipe, 11, config, "--asr_tag", "tag", "--feats_normalize", feats_normalize)
    (train,) = launched(recipe)
    assert option(train, "--normalize") == expected[:1] and option(train, "--normalize_conf") == expected[1:]
    overridden = feats_normalize not in ("config", "none" if config == NO_NORMALIZE else "global_mvn")
    assert (f"--feats_normalize {feats_normalize} overrides {config}'s normalize" in result.stderr) == overridden

    # what ESPnet makes of these options after the config's: the option wins
    from espnet_ext.espnet.tasks import ASRTask

    args = ASRTask.get_parser().parse_args(["--config", str(recipe / config), *train[train.index("--config") + 2 :]])
    assert args.normalize == (None if expected[0] == "none" else expected[0])


@pytest.mark.parametrize(
    "config, feats_normalize, feats_stats, stats_dir",
    [
        (GLOBAL_MVN, "config", "true", MVN),
        (GLOBAL_MVN, "none", "false", SHAPES),
        (NO_NORMALIZE, "global_mvn", "true", MVN),
    ],
)
def test_stage_10_collects_feature_statistics_as_the_option_says(
    recipe, run_recipe, config, feats_normalize, feats_stats, stats_dir
):
    for name in ("train", "dev"):
        (recipe / "dump/raw" / name).mkdir(parents=True)
        (recipe / "dump/raw" / name / "wav.scp").write_text("u1 a.wav\n")
    result = run_recipe(
        recipe,
        "--stage",
        "10",
        "--stop_stage",
        "10",
        "--train_set",
        "train",
        "--valid_set",
        "dev",
        "--test_sets",
        "test",
        "--asr_config",
        config,
        "--asr_tag",
        "tag",
        "--feats_normalize",
        feats_normalize,
        "--nj",
        "1",
        script="./asr.sh",
        check=False,
    )
    assert "collecting statistics failed" in result.stderr  # the fake launcher's exit code
    (collect,) = launched(recipe)
    assert option(collect, "--collect_feats_stats") == [feats_stats]
    assert option(collect, "--output_dir") == [f"{stats_dir}/logdir/stats.JOB"]


def test_an_option_against_a_config_with_normalize_conf_is_refused(recipe, run_recipe):
    (recipe / "mvn.yaml").write_text((MINI / GLOBAL_MVN).read_text() + "normalize_conf:\n    norm_vars: false\n")
    result = asr(run_recipe, recipe, 11, "mvn.yaml", "--feats_normalize", "utterance_mvn", check=False)
    assert result.returncode != 0 and not launched(recipe)
    assert (
        "--feats_normalize utterance_mvn disagrees with mvn.yaml (normalize: global_mvn, with its "
        "normalize_conf): set normalize and normalize_conf in the config instead"
    ) in result.stderr
    result = asr(run_recipe, recipe, 11, "mvn.yaml", "--feats_normalize", "bogus", check=False)
    assert "--feats_normalize must be config, global_mvn, utterance_mvn or none, got 'bogus'" in result.stderr


def test_stage_10_collects_again_when_global_mvn_finds_shapes_only(recipe, run_recipe):
    """A stats dir finished without feature statistics (e.g. --asr_stats_dir shared with a
    normalize: null experiment) is collected again for global_mvn, not skipped: its marker records
    the shapes' inputs only, and feature statistics have the frontend's too."""
    for name in ("train", "dev"):
        (recipe / "dump/raw" / name).mkdir(parents=True)
        (recipe / "dump/raw" / name / "wav.scp").write_text("u1 a.wav\n")
    stats_files(recipe / "shared")
    result = asr(run_recipe, recipe, 10, NO_NORMALIZE, "--asr_stats_dir", "shared", "--nj", "1", check=False)
    (collect,) = launched(recipe)
    assert option(collect, "--collect_feats_stats") == ["false"]
    (recipe / "shared/.done.next").rename(recipe / "shared/.done")  # as if it had finished (mark_done)
    result = asr(run_recipe, recipe, 10, GLOBAL_MVN, "--asr_stats_dir", "shared", "--nj", "1", check=False)
    assert "shared: inputs changed (asr_args added; frontend added): running again" in result.stderr
    assert option(launched(recipe)[-1], "--collect_feats_stats") == ["true"]
    # shapes are all a normalize: null experiment needs: the marker (its inputs) is still there
    result = asr(run_recipe, recipe, 10, NO_NORMALIZE, "--asr_stats_dir", "shared", "--nj", "1", check=False)
    assert "already done: shared" in result.stderr and len(launched(recipe)) == 2
