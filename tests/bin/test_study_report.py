"""python -m espnet_ext.bin.study_report (egs2/synth/study.sh's report): the arms table (the last
checkpoint per seed against random initialisation, mean ± sd, ratio), the curve against updates
and the plot, from a manifest of scored experiments."""

from __future__ import annotations

import subprocess
import sys

import pytest

from espnet_ext.report import study

SETS = ("test_seen", "test_other")


@pytest.fixture
def manifest(tmp_path, fake_exp):
    """Two seeds; 10 min: random, checkpoints 100 and 200; 1 h: random and 200 only."""
    rows = ["arm\tsubset\tseed\tupdates\texp"]
    wrong = {  # (subset, arm/updates, seed) -> wrong words of 10 on (test_seen, test_other)
        ("10min", 0, 0): (8, 9),
        ("10min", 0, 1): (6, 9),
        ("10min", 100, 0): (6, 8),
        ("10min", 100, 1): (6, 8),
        ("10min", 200, 0): (4, 7),
        ("10min", 200, 1): (2, 7),
        ("1h", 0, 0): (5, 6),
        ("1h", 0, 1): (5, 6),
        ("1h", 200, 0): (4, 5),
        ("1h", 200, 1): (4, 5),
    }
    for (subset, updates, seed), (seen, other) in wrong.items():
        name = f"exp/asr_{subset}_{updates}_{seed}"
        fake_exp(tmp_path, name, {"test_seen": seen, "test_other": other})
        rows.append(f"{'random' if updates == 0 else 'pretrained'}\t{subset}\t{seed}\t{updates}\t{name}")
    path = tmp_path / "study_manifest.tsv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_arms_and_curve(manifest):
    runs = study.read_manifest(manifest)
    assert len(runs) == 10 and runs[0].exp == manifest.parent / "exp/asr_10min_0_0"
    arms = study.arm_runs(runs, "10min")
    assert [r.updates for r in arms["pretrained"]] == [200, 200] and [r.seed for r in arms["random"]] == [0, 1]
    assert study.curve(runs, "10min", "test_seen", "cer") == [(0, 70.0, 2), (100, 60.0, 2), (200, 30.0, 2)]
    assert study.curve_subsets(runs) == ["10min"]
    lines = study.markdown(runs, SETS, note="measured").splitlines()
    assert lines[2] == "measured"
    assert "|10min|test_seen|70.0 ± 14.1 (80.0, 60.0)|30.0 ± 14.1 (40.0, 20.0) [200 updates]|0.43|" in lines
    assert "|1h|test_other|60.0 ± 0.0 (60.0, 60.0)|50.0 ± 0.0 (50.0, 50.0) [200 updates]|0.83|" in lines
    curve = lines[lines.index("|updates|test_seen|test_other|seeds|") :]
    assert curve[2:5] == ["|0|70.0|90.0|2|", "|100|60.0|80.0|2|", "|200|30.0|70.0|2|"]


def test_cli_writes_table_and_plot(manifest, tmp_path):
    out = tmp_path / "RESULTS_study"
    cmd = [
        sys.executable,
        "-m",
        "espnet_ext.bin.study_report",
        "--manifest",
        str(manifest),
        "--test_sets",
        *SETS,
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (
        proc.stdout in out.with_suffix(".md").read_text()
        and "![RESULTS_study](RESULTS_study.png)" in out.with_suffix(".md").read_text()
    )
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = subprocess.run(cmd[:-3] + ["test_unseen", "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 1 and "expected one decode_*/test_unseen/score_cer/result.txt, found 0" in proc.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("arm\tsubset\n", "expected the header"),
        ("arm\tsubset\tseed\tupdates\texp\nbest\t10min\t0\t0\texp/x\n", ":2: expected 5 fields, arm one of"),
        ("arm\tsubset\tseed\tupdates\texp\nrandom\t10min\tzero\t0\texp/x\n", ":2: seed and updates must be integers"),
        ("arm\tsubset\tseed\tupdates\texp\n", "no runs"),
    ],
)
def test_bad_manifest_names_the_file(tmp_path, text, message):
    path = tmp_path / "m.tsv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        study.read_manifest(path)


def test_decode_glob_picks_one_decode_dir(manifest, fake_exp):
    """A second decode of every run (e.g. the valid-loss-best average): the default glob then finds
    two and says so; --decode_glob picks one."""
    runs = study.read_manifest(manifest)
    for r in runs:  # every run 1 wrong word of 10 on both sets with the other model
        fake_exp(r.exp.parent, r.exp.name, {"test_seen": 1, "test_other": 1}, "decode_ctc_greedy_valid.loss.ave_5best")
    with pytest.raises(ValueError, match="found 2"):
        study.markdown(runs, SETS)
    text = study.markdown(runs, SETS, decode_glob="decode_*_valid.loss.ave_5best")
    assert "|10min|test_seen|10.0 ± 0.0 (10.0, 10.0)|10.0 ± 0.0 (10.0, 10.0) [200 updates]|1.00|" in text
    assert study.curve(runs, "10min", "test_seen", "cer", "decode_*last5.ave")[0] == (0, 70.0, 2)
