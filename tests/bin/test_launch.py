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


def test_slurm_backend_runs_each_job_through_srun(tmp_path, monkeypatch):
    """No slurm here: a fake srun records its options and runs the command it is given."""
    fake = tmp_path / "bin" / "srun"
    fake.parent.mkdir()
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f"echo \"$@\" >> {tmp_path}/srun_calls\n"
        "while [ $# -gt 0 ] && [ \"$1\" != bash ]; do shift; done\n"
        "exec \"$@\"\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{__import__('os').environ['PATH']}")
    rc = main(["--backend", "slurm", "--gpu", "2", "--num_nodes", "3", "--mem", "8G", "JOB=1:2",
               str(tmp_path / "log.JOB"), f"echo ran JOB > {tmp_path}/out.JOB"])
    assert rc == 0
    assert (tmp_path / "out.1").read_text() == "ran 1\n" and (tmp_path / "out.2").read_text() == "ran 2\n"
    calls = (tmp_path / "srun_calls").read_text().splitlines()
    assert len(calls) == 2
    for call in calls:
        assert "--nodes 3 --ntasks-per-node 1" in call and "--gres=gpu:2" in call and "--mem 8G" in call
