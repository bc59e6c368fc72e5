"""Fixtures of the command-line tests."""

from __future__ import annotations

import pytest

from espnet_ext import scoring


def write_scored_exp(exp, errors_by_set, decode="decode_ctc_greedy_last5.ave"):
    """An experiment dir whose decode of each set has the given number of wrong words of 10
    (stage 13's result.txt, so the error rate is 10 x that number, %)."""
    for dset, wrong in errors_by_set.items():
        refs = {"s-1": " ".join("abcdefghij")}
        hyps = {"s-1": " ".join("z" * wrong + "abcdefghij"[wrong:])}
        scoring.write_result_txt(scoring.score(refs, hyps, "word"), exp / decode / dset / "score_cer" / "result.txt")
    return exp


@pytest.fixture
def fake_exp():
    """fake_exp(root, name, {set: wrong words of 10}[, decode dir name]) -> root/name, scored."""
    return lambda root, name, errors_by_set, *decode: write_scored_exp(root / name, errors_by_set, *decode)
