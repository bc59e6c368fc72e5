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
    assert (
        rows[0]
        == "|test set|random: CER % mean ± sd (per seed)|pre-trained: CER % mean ± sd (per seed)|pre-trained / random|"
    )
    assert rows[2] == "|dev|70.0 ± 10.0 (60.0, 80.0, 70.0)|40.0 ± 10.0 (30.0, 40.0, 50.0)|0.57|"
    assert rows[3] == "|test|70.0 ± 10.0 (60.0, 80.0, 70.0)|20.0 ± 0.0 (20.0, 20.0, 20.0)|0.29|"


def test_cli_and_missing_result(tmp_path, fake_exp):
    a = fake_exp(tmp_path, "a", {"dev": 1})
    b = fake_exp(tmp_path, "b", {"dev": 2})
    out = tmp_path / "table.md"
    cmd = [
        sys.executable,
        "-m",
        "espnet_ext.bin.seed_table",
        "--arm",
        "x",
        str(a),
        "--arm",
        "y",
        str(b),
        "--test_sets",
        "dev",
        "--out",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "|dev|10.0 ± 0.0 (10.0)|20.0 ± 0.0 (20.0)|2.00|" in out.read_text() == proc.stdout
    proc = subprocess.run(cmd[:-2] + ["--test_sets", "test"], capture_output=True, text=True)
    assert proc.returncode == 1 and f"{a}: expected one decode_*/test/score_cer/result.txt, found 0" in proc.stderr


def write_utterances(exp, test_set, wrong):
    """A score dir of ``test_set``: utterance k of 10 words with its first ``wrong[k]`` words wrong."""
    from espnet_ext import scoring

    words = "abcdefghij"
    refs = {f"s-u{k}": " ".join(words) for k in range(len(wrong))}
    hyps = {f"s-u{k}": " ".join("z" * n + words[n:]) for k, n in enumerate(wrong)}
    scoring.write_result_txt(
        scoring.score(refs, hyps, "word"), exp / "decode_ctc_greedy" / test_set / "score_cer" / "result.txt"
    )
    return exp


def test_per_seed_tests_under_the_table(tmp_path):
    """Seed 1: y's segments differ from x's by 0, -1, 0, -1 (x - y: mean -1/2, sd sqrt(1/3),
    Z = -sqrt 3, p = 0.083); seed 2: x 2 words wrong in each of 8 utterances, y none: 8 segments
    of +2, no variance, the sign test's p = 2 / 2 ** 8."""
    x = [
        write_utterances(tmp_path / "x1", "dev", [1, 0, 1, 0, 0, 0, 0, 0]),
        write_utterances(tmp_path / "x2", "dev", [2] * 8),
    ]
    y = [
        write_utterances(tmp_path / "y1", "dev", [1, 1, 1, 0, 0, 1, 0, 0]),
        write_utterances(tmp_path / "y2", "dev", [0] * 8),
    ]
    lines = seeds.table({"x": x, "y": y}, ["dev"], "cer").splitlines()
    assert lines[2].startswith("|dev|11.2 ± 12.4 (2.5, 20.0)|2.5 ± 3.5 (5.0, 0.0)|")  # the table as before
    assert (
        lines[lines.index("|test set|arm|seed 1|seed 2|") + 2]
        == "|dev|y vs x|+2.5, p=0.083|-20.0, p=0.008 sign test *|"
    )
    assert "Three seeds are too few" in "\n".join(lines)
    uneven = seeds.table({"x": x, "y": y[:1]}, ["dev"], "cer")
    assert "Per seed: not tested (the arms have 2, 1 seeds" in uneven
