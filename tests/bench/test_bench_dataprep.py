"""``python -m benchmarks dataprep`` at tiny sizes: the tree has LibriSpeech's layout,
every utterance comes through both steps, and the printed figures agree with each other."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from benchmarks import dataprep

ROW = re.compile(
    r"^\s+(\d+) (stage 1 prepare|stage 3 format)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+"
    r"(-?\d+\.\d+)\s+(\d+)\s+(\d+)$",
    re.MULTILINE,
)
SUMMARY = re.compile(
    r"^  (stage 1 prepare|stage 3 format): N (\d+) vs (\d+): per-file time ratio (\d+\.\d+) .*"
    r"peak memory ratio (\d+\.\d+) .*, (-?\d+) bytes of peak memory per extra utterance$",
    re.MULTILINE,
)
SIZES = (20, 60)


def test_tree_has_librispeech_layout_chapters_and_transcripts(tmp_path):
    sources = dataprep.source_utterances(3)
    root = dataprep.build_tree(tmp_path, 120, sources) / "LibriSpeech" / dataprep.PART
    chapters = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*"))
    assert chapters == ["100/100000", "100/100001", "101/101000"]  # 50 utterances a chapter, 2 a reader
    flacs = sorted(root.rglob("*.flac"))
    assert len(flacs) == 120
    first = root / "100" / "100000" / "100-100000-0000.flac"
    assert first.read_bytes() == sources[0][0].read_bytes()
    assert (root / "100" / "100000" / "100-100000-0003.flac").read_bytes() == sources[0][0].read_bytes()
    lines = (root / "101" / "101000" / "101-101000.trans.txt").read_text("utf-8").splitlines()
    assert len(lines) == 20 and lines[0] == f"101-101000-0000 {sources[100 % 3][1]}"
    assert lines[0].split(maxsplit=1)[1].isupper()


@pytest.fixture(scope="module")
def run_output(tmp_path_factory):
    """One benchmark run over two tiny sizes, its output and workdir (kept)."""
    import contextlib
    import io

    workdir = tmp_path_factory.mktemp("dataprep")
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        status = dataprep.main(
            ["--sizes", *map(str, SIZES), "--workdir", str(workdir), "--keep", "--source_files", "4"]
        )
    return status, sink.getvalue(), workdir


def test_every_utterance_comes_through_and_figures_agree(run_output):
    status, out, workdir = run_output
    assert status == 0, out
    rows = [(int(n), step, *map(float, rest[:5]), int(rest[5]), int(rest[6])) for n, step, *rest in ROW.findall(out)]
    assert [(r[0], r[1]) for r in rows] == [(n, s) for n in SIZES for s in ("stage 1 prepare", "stage 3 format")], out
    for n, _step, seconds, per_s, ms, peak_mb, added_mb, written, excluded in rows:
        assert seconds > 0 and (written, excluded) == (n, 0)
        assert per_s * ms / 1000 == pytest.approx(1.0, rel=0.01 + 0.0005 / ms)  # ms/file is printed to 0.001
        assert seconds == pytest.approx(n * ms / 1000, abs=0.001)  # seconds are rounded to ms
        assert 0 < peak_mb and -0.1 <= added_mb <= peak_mb
    dump = workdir / str(SIZES[-1]) / "dump"
    assert len(list((dump / "data").glob("*.flac"))) == SIZES[-1]
    assert (dump / "excluded.txt").read_text() == ""


def test_summary_ratios_are_those_of_the_rows(run_output, check_ratio):
    _, out, _ = run_output
    rows = {(int(n), step): (float(ms), float(peak)) for n, step, _, _, ms, peak, *_ in ROW.findall(out)}
    found = SUMMARY.findall(out)
    assert [s[0] for s in found] == ["stage 1 prepare", "stage 3 format"], out
    for step, large, small, time_ratio, memory_ratio, _ in found:
        (ms_l, peak_l), (ms_s, peak_s) = rows[int(large), step], rows[int(small), step]
        check_ratio(float(time_ratio), ms_l, ms_s, half_unit=0.0005, ratio_half_unit=0.005)  # ms/file to 0.001
        check_ratio(float(memory_ratio), peak_l, peak_s, half_unit=0.05, ratio_half_unit=0.005)  # MB to 0.1


def test_children_peak_memory_is_their_own_not_the_parents(tmp_path):
    """A child forked from a big parent: its peak excludes the parent's pages (not ru_maxrss)."""
    import torch  # noqa: F401  (a parent of hundreds of MB, as under python -m benchmarks)

    parent_kb = dataprep.peak_rss_kb()
    tree = dataprep.build_tree(tmp_path / "corpus", 10, dataprep.source_utterances(2))
    result = dataprep.run_step("stage1", tree, tmp_path / "data", tmp_path, 1, "flac")
    assert result.count == 10 and result.excluded == 0
    assert 0 < result.imports_kb <= result.peak_kb < parent_kb / 2


def test_a_failing_step_names_its_log(tmp_path):
    with pytest.raises(RuntimeError, match=r"stage 1 prepare failed with exit status 1; .*stage1.log ends:"):
        dataprep.run_step("stage1", tmp_path / "no_corpus", tmp_path / "data", tmp_path, 1, "flac")
    assert "no such directory" in (tmp_path / "stage1.log").read_text()


def test_bad_options_are_refused():
    for argv in (["--sizes", "0"], ["--nj", "0"]):
        with pytest.raises(SystemExit):
            dataprep.parse_args(argv)
    assert dataprep.parse_args(["--sizes", "40", "10", "40"]).sizes == [10, 40]
    assert os.path.isdir(Path(dataprep.MINI_EN) / "wav")
