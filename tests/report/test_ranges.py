"""check_range: an experiment's error rates against the ranges seen before (make demo's last lines)."""

import subprocess
import sys
from pathlib import Path

import pytest

from espnet_ext.report.ranges import parse_range, range_lines


def fake_exp(root: Path, rates: dict) -> Path:
    exp = root / "exp/asr_x"
    for test_set, err in rates.items():
        d = exp / "decode_ctc_greedy_last5.ave" / test_set / "score_cer"
        d.mkdir(parents=True)
        (d / "result.txt").write_text(f"| Sum/Avg|   32    900 | 80.0 15.0 5.0 {err - 20:.1f} {err:.1f} 90.0 |\n")
    return exp


def test_lines_say_inside_or_outside(tmp_path):
    exp = fake_exp(tmp_path, {"dev": 22.6, "test": 40.0})
    lines, inside = range_lines(exp, {"dev": (22.0, 38.0), "test": (10.0, 34.0)})
    assert lines == [
        "dev CER 22.6 % is inside the range seen before, 22-38 %",
        "test CER 40.0 % is OUTSIDE the range seen before, 10-34 %",
    ]
    assert not inside
    assert range_lines(exp, {"dev": (22.6, 22.6)})[1]  # the ends are inside


@pytest.mark.parametrize(
    "text, message",
    [
        ("dev", "expected SET=LOW:HIGH"),
        ("dev=1", "expected SET=LOW:HIGH"),
        ("dev=a:2", "expected SET=LOW:HIGH"),
        ("dev=5:2", "is above the high end"),
    ],
)
def test_bad_ranges_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_range(text)


def test_cli(tmp_path):
    exp = fake_exp(tmp_path, {"dev": 30.0, "test": 50.0})

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "espnet_ext.bin.check_range", str(exp), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    ok = run("--range", "dev=22:38", "--seen", "3 seeds")
    assert ok.returncode == 0 and ok.stdout == "dev CER 30.0 % is inside the range seen before, 22-38 % (3 seeds)\n"
    out = run("--range", "test=10:34")
    assert out.returncode == 0 and "OUTSIDE" in out.stdout and f"{exp}/RESULTS.md" in out.stdout
    missing = run("--range", "eval=1:2")
    assert missing.returncode == 1 and "expected one decode_*/eval/score_cer/result.txt, found 0" in missing.stderr
