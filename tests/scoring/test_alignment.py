"""Tests of espnet_ext.scoring.alignment: sclite's tie-breaking, batching, speed."""

import random
import time

import pytest

from espnet_ext.scoring.alignment import align, align_many, aligned_pairs


def test_ties_follow_sclite():
    assert align(["a"], ["b", "c"]) == "IS"  # sclite: REF "* A", HYP "B C"
    assert align(list("aab"), list("bcc")) == "SSS"  # 3 S (cost 12) = 2 D + 2 I; sclite takes S
    assert align(["A"], ["a"]) == "C" and align(["A"], ["a"], case_sensitive=True) == "S"


def test_batched_equals_one_by_one():
    rnd = random.Random(1)
    refs = [[rnd.choice("abc") for _ in range(rnd.randint(0, 9))] for _ in range(200)]
    hyps = [[rnd.choice("abc") for _ in range(rnd.randint(0, 9))] for _ in range(200)]
    assert align_many(refs, hyps) == [align(r, h) for r, h in zip(refs, hyps)]
    with pytest.raises(ValueError, match="as many hypotheses"):
        align_many(refs, hyps[1:])


def test_aligned_pairs():
    assert aligned_pairs(["a", "b"], ["x"], "SD") == [("a", "x", "S"), ("b", None, "D")]


def test_ten_thousand_utterances_in_seconds():
    rnd = random.Random(0)
    vocab = [chr(0x4E00 + k) for k in range(2000)]
    refs = [[rnd.choice(vocab) for _ in range(100)] for _ in range(10_000)]
    hyps = [[t if rnd.random() > 0.1 else rnd.choice(vocab) for t in r[rnd.randint(0, 3) :]] for r in refs]
    start = time.perf_counter()
    ops = align_many(refs, hyps)
    elapsed = time.perf_counter() - start
    assert all(len(o) >= 100 for o in ops)
    assert elapsed < 15, f"aligning 10k x 100 tokens took {elapsed:.1f} s (about 1 s expected)"
