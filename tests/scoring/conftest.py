"""Fixtures of the scoring tests: a file writer, sclite (skips where it is not installed),
a TIMIT-style folding map."""

from pathlib import Path

import pytest

from espnet_ext.scoring.sclite import SCLITE_FALLBACK, sclite_available

MAP_60_48_39 = """# 60 48 39
aa\taa\taa
ao\tao\taa
ax-h\tax\tah
ax\tax\tah
ah\tah\tah
bcl\tvcl\tsil
h#\tsil\tsil
q
"""


@pytest.fixture
def write():
    """``write(path, text)``: write UTF-8 text, return the path."""

    def write(path: Path, text: str) -> Path:
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def sclite():
    """Skip, with the reason, where sclite (Debian package sctk) is not installed."""
    if not sclite_available():
        pytest.skip(f"sclite not found on PATH or at {SCLITE_FALLBACK} (Debian package sctk)")


@pytest.fixture
def fold_map(tmp_path) -> Path:
    """A file with a few rows of TIMIT's ``phones.60-48-39.map`` (``q`` alone: deleted)."""
    path = tmp_path / "map"
    path.write_text(MAP_60_48_39, encoding="utf-8")
    return path
