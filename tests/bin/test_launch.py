import subprocess
import sys

from espnet_ext.bin.launch import job_indices, main, substitute


def test_job_array_runs_each_index(tmp_path):
    rc = main(["--backend", "local", "JOB=1:3", str(tmp_path / "log.JOB"),
               f"echo job JOB > {tmp_path}/out.JOB"])
    assert rc == 0
    for i in (1, 2, 3):
        assert (tmp_path / f"out.{i}").read_text() == f"job {i}\n"
        log = (tmp_path / f"log.{i}").read_text()
        assert log.startswith(f"# echo job {i}") and "# Ended (code 0)" in log


def test_failure_is_reported_with_its_log(tmp_path, capsys):
    rc = main(["JOB=1:2", str(tmp_path / "log.JOB"), "test JOB -eq 1"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "1 of 2 jobs failed" in err and str(tmp_path / "log.2") in err
    assert "# Ended (code 1)" in (tmp_path / "log.2").read_text()


def test_words_are_quoted_and_single_job(tmp_path):
    rc = main([str(tmp_path / "one.log"), sys.executable, "-c", "print('a b')"])
    assert rc == 0
    assert "a b" in (tmp_path / "one.log").read_text()


def test_substitution_only_whole_word():
    var, indices, log, cmd = job_indices(["JOB=2:4", "x.JOB.log", "run", "JOBS=JOB"])
    assert (var, indices, log) == ("JOB", [2, 3, 4], "x.JOB.log")
    assert substitute("JOBS JOB", var, 3) == "JOBS 3"


def test_cli_usage_error():
    result = subprocess.run([sys.executable, "-m", "espnet_ext.bin.launch", "only-a-log"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "expected LOGFILE and a COMMAND" in result.stderr
