"""python -m espnet_ext.bin.seed_table: mean ± sd over seeds per arm, from result.txt files."""

from __future__ import annotations

import statistics
import subprocess
import sys

from espnet_ext.report import seeds


def test_table_means_and_ratio(tmp_path, fake_exp):
    random = [fake_exp(tmp_path, f"r{i}", {"dev": w, "test": w}) for i, w in enumerate((6, 8, 7))]
    pre = [fake_exp(tmp_path, f"p{i}", {"dev": w, "test": 2}) for i, w in enumerate((3, 4, 5))]
    stats = seeds.arm_stats(random, "dev", "cer")
    assert stats.values == [60.0, 80.0, 70.0] and stats.mean == 70.0
    assert abs(stats.sd - statistics.stdev([60, 80, 70])) < 1e-9
    text = seeds.table({"random": random, "pre-trained": pre}, ["dev", "test"], "cer")
    rows = text.splitlines()
    assert rows[0] == "|test set|random: CER % mean ± sd (per seed)|pre-trained: CER % mean ± sd (per seed)|pre-trained / random|"
    assert rows[2] == "|dev|70.0 ± 10.0 (60.0, 80.0, 70.0)|40.0 ± 10.0 (30.0, 40.0, 50.0)|0.57|"
    assert rows[3] == "|test|70.0 ± 10.0 (60.0, 80.0, 70.0)|20.0 ± 0.0 (20.0, 20.0, 20.0)|0.29|"


def test_cli_and_missing_result(tmp_path, fake_exp):
    a = fake_exp(tmp_path, "a", {"dev": 1})
    b = fake_exp(tmp_path, "b", {"dev": 2})
    out = tmp_path / "table.md"
    cmd = [sys.executable, "-m", "espnet_ext.bin.seed_table", "--arm", "x", str(a), "--arm", "y", str(b),
           "--test_sets", "dev", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "|dev|10.0 ± 0.0 (10.0)|20.0 ± 0.0 (20.0)|2.00|" in out.read_text() == proc.stdout
    proc = subprocess.run(cmd[:-2] + ["--test_sets", "test"], capture_output=True, text=True)
    assert proc.returncode == 1 and f"{a}: expected one decode_*/test/score_cer/result.txt, found 0" in proc.stderr
