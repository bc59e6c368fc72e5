"""espnet_ext.report.lm_grid and bin/lm_grid: tune_lm_weight.sh's table and choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from espnet_ext.bin.lm_grid import main
from espnet_ext.report.lm_grid import GridPoint, best_point, grid_table, parse_point


def scored(root: Path, name: str, error: float, metric: str = "cer") -> Path:
    """A decode dir whose dev set scored ``error`` % (the Sum/Avg row of a result.txt)."""
    score = root / name / "dev" / f"score_{metric}"
    score.mkdir(parents=True)
    row = f"| Sum/Avg |   32   565 | 80.0  10.0  10.0  {error:.1f}  {error:.1f}  50.0 |"
    (score / "result.txt").write_text(f"| SPKR | # Snt # Wrd | Corr Sub Del Ins Err S.Err |\n{row}\n")
    return root / name


def test_best_point_is_the_lowest_error_then_the_lightest_fusion():
    points = [
        GridPoint(0.0, 0.0, Path("a"), 30.0),
        GridPoint(1.0, 0.0, Path("b"), 25.0),
        GridPoint(0.5, 1.0, Path("c"), 25.0),
        GridPoint(0.5, 0.5, Path("d"), 25.0),
    ]
    assert best_point(points).decode_dir == Path("d")
    table = grid_table(points, "dev", "cer")
    assert "| **0.5** | **0.5** | **25.0** | d |" in table and "| 0 | 0 | 30.0 | a |" in table
    assert table.rstrip().endswith("best: lm_weight 0.5, penalty 0.5 (dev CER 25.0 %)")
    with pytest.raises(ValueError, match="an empty grid"):
        best_point([])


def test_parse_point():
    assert parse_point("0.5:-1:exp/asr_x/decode_a:b") == (0.5, -1.0, Path("exp/asr_x/decode_a:b"))
    with pytest.raises(ValueError, match="expected LM_WEIGHT:PENALTY:DECODE_DIR, got 'x:exp'"):
        parse_point("x:exp")


def test_command_line_writes_the_table_and_the_choice(tmp_path, capsys):
    a, b = scored(tmp_path, "decode_a", 30.0), scored(tmp_path, "decode_b", 20.0)
    out, best = tmp_path / "table.md", tmp_path / "best"
    assert main(["--dev_set", "dev", "--out", str(out), "--best", str(best), f"0:0:{a}", f"0.50:0.5:{b}"]) == 0
    printed = capsys.readouterr().out
    assert printed == out.read_text() and "| lm_weight | penalty | dev CER (%) | decoding |" in printed
    assert best.read_text() == "0.50 0.5\n"  # as given: the same --inference_args, the same decoding
    # the metric: the first scored of cer, wer, per; a missing score names the file
    c = scored(tmp_path, "decode_c", 10.0, metric="wer")
    assert main(["--dev_set", "dev", f"0:0:{c}"]) == 0 and "dev WER (%)" in capsys.readouterr().out
    assert main(["--dev_set", "dev", "--metric", "wer", f"0:0:{a}"]) == 1
    assert f"{a}/dev/score_wer/result.txt: no such file" in capsys.readouterr().err
