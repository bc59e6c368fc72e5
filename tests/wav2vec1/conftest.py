"""Shared fixtures of the wav2vec 1.0 tests."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread):
    """Tiny models: one intra-op thread (tests/conftest.py's ``one_thread``) for every module here."""
