import io
import subprocess
import sys

from espnet_ext.bin.launch import ProgressEcho, job_indices, main, substitute
from espnet_ext.core.progress import PREFIX

# A job that prints a progress line (and another line) per "epoch", 0.6 s apart: the launcher
# polls the log every 0.5 s, so it sees the lines while the job runs, not only at its end.
EPOCHS = (
    f'for i in 1 2 3; do echo "{PREFIX}epoch $i/3: train loss $i"; echo "other $i"; '
    "if [ $i -lt 3 ]; then sleep 0.6; fi; done"
)


def test_job_array_runs_each_index(tmp_path):
    rc = main(["--backend", "local", "JOB=1:3", str(tmp_path / "log.JOB"), f"echo job JOB > {tmp_path}/out.JOB"])
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


def test_local_backend_refuses_several_nodes(tmp_path, capsys):
    assert main(["--num_nodes", "2", str(tmp_path / "train.log"), "true"]) == 2
    assert "--num_nodes 2: expected --backend slurm" in capsys.readouterr().err
    assert not (tmp_path / "train.log").exists()


def test_substitution_only_whole_word():
    var, indices, log, cmd = job_indices(["JOB=2:4", "x.JOB.log", "run", "JOBS=JOB"])
    assert (var, indices, log) == ("JOB", [2, 3, 4], "x.JOB.log")
    assert substitute("JOBS JOB", var, 3) == "JOBS 3"


def test_cli_usage_error():
    result = subprocess.run(
        [sys.executable, "-m", "espnet_ext.bin.launch", "only-a-log"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "expected LOGFILE and a COMMAND" in result.stderr


def fake_srun(tmp_path, monkeypatch):
    """No slurm here: a fake srun records its options and runs the command it is given."""
    fake = tmp_path / "bin" / "srun"
    fake.parent.mkdir()
    fake.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$@" >> {tmp_path}/srun_calls\n'
        'while [ $# -gt 0 ] && [ "$1" != bash ]; do shift; done\n'
        'exec "$@"\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{__import__('os').environ['PATH']}")


def test_slurm_backend_runs_each_job_through_srun(tmp_path, monkeypatch):
    fake_srun(tmp_path, monkeypatch)
    rc = main(
        [
            "--backend",
            "slurm",
            "--gpu",
            "2",
            "--num_nodes",
            "3",
            "--mem",
            "8G",
            "JOB=1:2",
            str(tmp_path / "log.JOB"),
            f"echo ran JOB > {tmp_path}/out.JOB",
        ]
    )
    assert rc == 0
    assert (tmp_path / "out.1").read_text() == "ran 1\n" and (tmp_path / "out.2").read_text() == "ran 2\n"
    calls = (tmp_path / "srun_calls").read_text().splitlines()
    assert len(calls) == 2
    for call in calls:
        assert "--nodes 3 --ntasks-per-node 1" in call and "--gres=gpu:2" in call and "--mem 8G" in call


def echoed(err: str):
    """The progress messages among stderr's lines (``<date> (<log name>) <message>``)."""
    return [line.split(") ", 1)[1] for line in err.splitlines() if "(train.log) " in line]


def test_single_job_echoes_each_progress_line_once(tmp_path, capsys):
    rc = main([str(tmp_path / "train.log"), EPOCHS])
    assert rc == 0
    err = capsys.readouterr().err
    assert echoed(err) == [f"epoch {i}/3: train loss {i}" for i in (1, 2, 3)], err
    assert "other" not in err and PREFIX not in err
    log = (tmp_path / "train.log").read_text()
    assert [line for line in log.splitlines() if line.startswith(PREFIX)] == [
        f"{PREFIX}epoch {i}/3: train loss {i}" for i in (1, 2, 3)
    ]
    assert "other 3" in log


def test_failed_job_keeps_its_last_progress_line_and_shows_the_tail_once(tmp_path, capsys):
    rc = main([str(tmp_path / "train.log"), f"{EPOCHS}; echo 'Traceback: boom'; exit 3"])
    assert rc == 1
    err = capsys.readouterr().err
    assert echoed(err) == [f"epoch {i}/3: train loss {i}" for i in (1, 2, 3)], err
    assert err.count("train loss 3") == 1 and "Traceback: boom" in err and "other 3" in err
    assert err.index("epoch 3/3") < err.index("1 of 1 jobs failed") < err.index("Traceback: boom")


def test_job_arrays_echo_nothing(tmp_path, capsys):
    assert main(["JOB=1:2", str(tmp_path / "train.JOB.log"), EPOCHS.replace("sleep 0.6", ":")]) == 0
    assert capsys.readouterr().err == ""
    assert PREFIX in (tmp_path / "train.1.log").read_text()


def test_slurm_single_job_echoes_progress(tmp_path, monkeypatch, capsys):
    fake_srun(tmp_path, monkeypatch)
    assert main(["--backend", "slurm", "--gpu", "1", str(tmp_path / "train.log"), EPOCHS]) == 0
    assert echoed(capsys.readouterr().err) == [f"epoch {i}/3: train loss {i}" for i in (1, 2, 3)]
    assert "--gres=gpu:1" in (tmp_path / "srun_calls").read_text()


def test_progress_echo_shows_complete_lines_as_they_arrive(tmp_path):
    log, out = tmp_path / "train.log", io.StringIO()
    echo = ProgressEcho(log, out)
    with open(log, "wb") as f:
        f.write(f"# header\n{PREFIX}epoch 1/2: a\nother\n{PREFIX}epoch 2/".encode())
        f.flush()
        echo.poll()
        assert [line.split(") ", 1)[1] for line in out.getvalue().splitlines()] == ["epoch 1/2: a"]
        f.write(b"2: b\r\n")
        f.flush()
        echo.poll()
        echo.poll()
        f.write(f"{PREFIX}epoch 3/2: no newline".encode())
        f.flush()
    echo.poll(final=True)
    assert [line.split(") ", 1)[1] for line in out.getvalue().splitlines()] == [
        "epoch 1/2: a",
        "epoch 2/2: b",
        "epoch 3/2: no newline",
    ]
