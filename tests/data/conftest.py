"""Fixtures of the data-dir tests: small Kaldi data dirs written from strings, and the data-dir
command line (``python -m espnet_ext.bin.datadir``)."""

import subprocess
import sys
from pathlib import Path

import pytest


def _write_files(path: Path, files: dict) -> Path:
    """Write ``files`` (name -> str or bytes) into ``path`` (created if needed); return ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        (path / name).write_bytes(data)
    return path


def _make_data_dir(path: Path, utts, text=True) -> Path:
    """A valid data dir; ``utts`` is a list of (uttid, speaker)."""
    utts = sorted(utts, key=lambda u: u[0].encode())
    files = {
        "wav.scp": "".join(f"{u} /audio/{u}.wav\n" for u, _ in utts),
        "utt2spk": "".join(f"{u} {s}\n" for u, s in utts),
    }
    if text:
        files["text"] = "".join(f"{u} words of {u}\n" for u, _ in utts)
    spk2utt = {}
    for u, s in utts:
        spk2utt.setdefault(s, []).append(u)
    files["spk2utt"] = "".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items()))
    return _write_files(path, files)


def _datadir_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "espnet_ext.bin.datadir", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture
def write_files():
    """``write_files(path, {name: content})``: files from strings or bytes."""
    return _write_files


@pytest.fixture
def make_data_dir():
    """``make_data_dir(path, [(uttid, speaker), ...], text=True)``: a valid data dir."""
    return _make_data_dir


@pytest.fixture
def datadir_cli():
    """``datadir_cli(command, *args)``: ``python -m espnet_ext.bin.datadir``, output captured."""
    return _datadir_cli
