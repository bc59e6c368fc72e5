"""Shared fixtures. Tests run from the project root with the project's venv."""

import os
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
