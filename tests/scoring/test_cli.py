"""Tests of the scoring command line, ``python -m espnet_ext.bin.score``."""

import subprocess
import sys

import pytest

from espnet_ext.scoring.result_txt import read_summary


def run_cli(*args, cwd):
    cmd = [sys.executable, "-m", "espnet_ext.bin.score", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("backend", ["no", "yes"])
def test_cli_scores_and_collects(tmp_path, write, request, backend):
    if backend == "yes":
        request.getfixturevalue("sclite")  # skips without sclite
    ref = write(tmp_path / "ref", "spk1-u1 甚至 出现\nspk1-u2 a b <noise> c\nspk2-u3 x\n")
    hyp = write(tmp_path / "hyp", "spk1-u1 甚至 出\nspk1-u2 a c\n")
    nlsyms = write(tmp_path / "nlsyms", "<noise>\n")
    out = tmp_path / "exp" / "asr_x" / "decode_a" / "test" / "score_wer"
    proc = run_cli(
        "--ref",
        ref,
        "--hyp",
        hyp,
        "--unit",
        "word",
        "--out_dir",
        out,
        "--sclite",
        backend,
        "--nlsyms",
        nlsyms,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "spk2-u3" in proc.stderr  # the missing hypothesis is named
    assert proc.stdout.splitlines()[-1].split("|")[3].split()[0] == "50.0"  # Sum/Avg: 3 of 6 words correct
    assert read_summary(out / "result.txt").words == 6
    assert (out / "hyp.trn").exists() == (backend == "yes")
    proc = run_cli("collect", tmp_path / "exp" / "asr_x", "--out", "-", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "|test|3|6|50.0|16.7|33.3|0.0|50.0|100.0|?|" in proc.stdout


def test_cli_folds_phones_and_lists_left_out(tmp_path, write, fold_map):
    """PER on folded phones against the decoded set; the set's other utterances counted as left out."""
    source = write(tmp_path / "data_text", "s-1 h# ao ax\ns-2 aa\ns-3 ah aa\n")
    ref = write(tmp_path / "dump_text", "s-1 h# ao ax\ns-3 ah aa\n")
    hyp = write(tmp_path / "hyp", "s-1 sil aa ah\ns-3 ah ao\n")  # all correct once folded
    removed = write(tmp_path / "removed.txt", "s-2\ttoo short\n")
    exp = tmp_path / "exp" / "asr_x"
    out = exp / "decode_a" / "test" / "score_per"
    args = [
        "--ref",
        ref,
        "--hyp",
        hyp,
        "--unit",
        "phn",
        "--out_dir",
        out,
        "--sclite",
        "no",
        "--source_ref",
        source,
        "--left_out_reasons",
        removed,
    ]
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert tuple(read_summary(out / "result.txt")) == (2, 5, 20.0, 80.0, 0.0, 0.0, 80.0, 100.0)
    assert "1 of 3 utterances" in proc.stdout and (out / "left_out.txt").read_text() == "s-2\ttoo short\n"
    proc = run_cli(*args, "--fold_map", fold_map, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert read_summary(out / "result.txt")[:3] == (2, 5, 100.0)
    results = run_cli("collect", exp, "--out", "-", cwd=tmp_path).stdout
    assert "|test|2|5|100.0|0.0|0.0|0.0|0.0|0.0|1|" in results
    assert "listed in test: `asr_x/decode_a/test/score_per/left_out.txt`" in results
    proc = run_cli(*args[:-4], cwd=tmp_path)  # without --source_ref: no stale list stays behind
    assert proc.returncode == 0 and not (out / "left_out.txt").exists()
    proc = run_cli(*args[:-4], "--source_ref", ref, "--ref", source, cwd=tmp_path)
    assert proc.returncode == 1 and "against --source_ref" in proc.stderr and "not in the source set" in proc.stderr
    proc = run_cli("--ref", ref, "--hyp", hyp, "--unit", "char", "--out_dir", out, "--fold_map", fold_map, cwd=tmp_path)
    assert proc.returncode == 1 and "expected --unit phn or word" in proc.stderr


def test_cli_errors(tmp_path, write):
    ref = write(tmp_path / "ref", "u1 a\n")
    bad = tmp_path / "bad_hyp"
    bad.write_bytes(b"u1 \xff\n")
    proc = run_cli("--ref", ref, "--hyp", bad, "--unit", "char", "--out_dir", tmp_path / "o", cwd=tmp_path)
    assert proc.returncode == 1 and "bad_hyp:1" in proc.stderr and "UTF-8" in proc.stderr
    extra = write(tmp_path / "hyp", "u1 a\nu9 b\n")
    proc = run_cli("--ref", ref, "--hyp", extra, "--unit", "char", "--out_dir", tmp_path / "o", cwd=tmp_path)
    assert proc.returncode == 1 and "u9" in proc.stderr
    proc = run_cli("--hyp", extra, cwd=tmp_path)
    assert proc.returncode == 2 and "--ref" in proc.stderr


@pytest.mark.usefixtures("sclite")
def test_cli_fails_when_sclite_disagrees(tmp_path, write):
    # "{ b / c }" is an alternation to sclite, four plain tokens to us
    ref = write(tmp_path / "ref", "s-1 a { b / c } d\n")
    hyp = write(tmp_path / "hyp", "s-1 a b d\n")
    out = tmp_path / "score_wer"
    args = ["--ref", ref, "--hyp", hyp, "--unit", "word", "--out_dir", out, "--sclite", "yes"]
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 1
    assert "espnet_ext: Counts(" in proc.stderr and "sclite:     Counts(" in proc.stderr
    assert not (out / "result.txt").exists()


def test_cli_imports_neither_torch_nor_espnet():
    code = (
        "import sys, espnet_ext.bin.score; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'espnet2')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
