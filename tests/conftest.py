"""Shared fixtures. Tests run from the project root with the project's venv."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def venv_env():
    """Environment for subprocesses: the venv's python first on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env


@pytest.fixture
def ssl_train(venv_env):
    """``ssl_train(config, exp, train, valid, *options)``: what ssl1 stage 11 runs
    (``python -m espnet_ext.bin.ssl_train`` on CPU, a log line per iteration) on the data dirs
    ``train`` and ``valid`` (``wav.scp`` and ``speech_shape`` each, :func:`write_wav_dir`); the
    finished process (stdout and stderr captured)."""

    def run(config, exp, train, valid, *options):
        command = [
            sys.executable,
            "-m",
            "espnet_ext.bin.ssl_train",
            "--config",
            str(config),
            "--output_dir",
            str(exp),
            "--use_preprocessor",
            "true",
            "--ngpu",
            "0",
            "--log_interval",
            "1",
            *options,
            "--train_data_path_and_name_and_type",
            f"{train}/wav.scp,speech,sound",
            "--train_shape_file",
            f"{train}/speech_shape",
            "--valid_data_path_and_name_and_type",
            f"{valid}/wav.scp,speech,sound",
            "--valid_shape_file",
            f"{valid}/speech_shape",
        ]
        return subprocess.run(command, capture_output=True, text=True, env=venv_env, timeout=600)

    return run


def write_wav_dir(directory: Path, files) -> list:
    """A data dir of ``files`` (``wav.scp``, ``speech_shape`` in samples); their lengths."""
    import soundfile as sf

    directory.mkdir(parents=True)
    lengths = [sf.info(str(f)).frames for f in files]
    with open(directory / "wav.scp", "w") as scp, open(directory / "speech_shape", "w") as shape:
        for f, n in zip(files, lengths):
            scp.write(f"{f.stem} {f}\n")
            shape.write(f"{f.stem} {n}\n")
    return lengths


@pytest.fixture(scope="session")
def wav_dir():
    """:func:`write_wav_dir`, for tests."""
    return write_wav_dir


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny-model tests: a second thread costs more than it
    saves on such small tensors (and oversubscribes a busy 2-core machine). Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --------------------------------------------------------------------------- lines for the end of the run
# A test adds ("summary", line) to its user_properties (see tests/egs2/test_fault_injection.py's
# ``report``); they are listed at the end of the run, also from pytest-xdist's workers (whose
# output is not shown otherwise: user_properties travel with the test reports).
_SUMMARY_LINES: list = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        _SUMMARY_LINES.extend((report.nodeid, value) for name, value in report.user_properties if name == "summary")


def pytest_terminal_summary(terminalreporter):
    if _SUMMARY_LINES:
        terminalreporter.section("lines the tests asked to show")
        for nodeid, line in _SUMMARY_LINES:
            terminalreporter.write_line(f"{nodeid.split('::')[-1]}: {line}")
