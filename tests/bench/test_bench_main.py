"""python -m benchmarks: --help lists the benchmarks and exits 0; a wrong name exits 2."""

import subprocess
import sys
from pathlib import Path

from benchmarks.__main__ import BENCHMARKS

ROOT = Path(__file__).resolve().parents[2]


def bench(*args):
    """``python -m benchmarks ARGS`` from the checkout's root (benchmarks is not installed)."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


def test_help_lists_every_benchmark_and_exits_0():
    result = bench("--help")
    assert result.returncode == 0, result.stderr[-2000:]
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ") and line[2] != " "]
    assert listed == list(BENCHMARKS) == ["finetune", "extractor", "pretrain", "decode", "dataprep", "concat", "gpu"]
    assert "huggingface frontend" in result.stdout and "``" not in result.stdout


def test_unknown_or_missing_benchmark_is_a_usage_error():
    for args, found in ((("nope",), "unknown benchmark 'nope'"), ((), "no benchmark named")):
        result = bench(*args)
        assert result.returncode == 2 and f"error: {found}; expected one of finetune," in result.stderr
        assert result.stdout == ""
