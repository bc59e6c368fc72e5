"""Tests of espnet_ext.scoring.scorer: hand-computed counts."""

import pytest

from espnet_ext.scoring.counts import Counts
from espnet_ext.scoring.scorer import score


def counts_of(ref, hyp, unit="word", **kw):
    """(C, S, D, I) of one utterance."""
    result = score({"s-1": ref}, {"s-1": hyp}, unit, **kw)
    return tuple(result.total[2:6])


@pytest.mark.parametrize(
    "ref, hyp, expected",
    [
        ("a b c", "a b c", (3, 0, 0, 0)),
        ("a b c", "a x c", (2, 1, 0, 0)),  # substitution
        ("a b c", "a b x c", (3, 0, 0, 1)),  # insertion
        ("a b c", "a c", (2, 0, 1, 0)),  # deletion
        ("a b c", "", (0, 0, 3, 0)),  # empty hypothesis
        ("", "a b", (0, 0, 0, 2)),  # empty reference
        ("", "", (0, 0, 0, 0)),
        ("a a b", "b c c", (0, 3, 0, 0)),  # tie: 3 S (cost 12) = 2 D + 2 I; sclite takes S
        ("b a a b", "c c c b a", (1, 3, 0, 1)),  # ties where preferring I before D matters
        ("c c c a b", "a b b a", (2, 0, 3, 2)),
        ("Hello WORLD", "hello world", (2, 0, 0, 0)),  # ASCII case folded like sclite
    ],
)
def test_word_counts(ref, hyp, expected):
    assert counts_of(ref, hyp) == expected


def test_case_sensitive_and_non_ascii_case():
    assert counts_of("Hello", "hello", case_sensitive=True) == (0, 1, 0, 0)
    assert counts_of("Äb", "äb") == (0, 1, 0, 0)  # sclite folds ASCII letters only


def test_cer_and_wer_of_the_same_text():
    ref, hyp = "the cat sat", "the cap sat"
    assert counts_of(ref, hyp, "word") == (2, 1, 0, 0)
    assert counts_of(ref, hyp, "char") == (10, 1, 0, 0)  # 9 letters + 2 <space>
    # a missing word boundary is one deleted <space>
    assert counts_of("ab cd", "abcd", "char") == (4, 0, 1, 0)


def test_mandarin_cer():
    ref, hyp = "甚至出现交易几乎停滞的情况", "甚至出现交易几乎停止情况"  # 滞 -> 止, 的 deleted
    result = score({"BAC009-1": ref}, {"BAC009-1": hyp}, "char")
    assert result.total == Counts(1, 13, 11, 1, 1, 0, 1)
    assert result.metric == "CER"
    assert result.total.percentages().errors == 15.4


def test_utterance_ops():
    utt = score({"s-1": "a b c d"}, {"s-1": "a x c"}, "word").utterances[0]
    assert utt.ops == "CSCD"


def test_missing_hypotheses_are_deletions_with_a_warning():
    refs = {"s-1": "a b", "s-2": "c d e"}
    with pytest.warns(UserWarning, match="s-2") as caught:
        result = score(refs, {"s-1": "a b"}, "word")
    assert caught[0].filename == __file__  # the warning points at the caller
    assert result.missing == ("s-2",)
    assert result.total == Counts(2, 5, 2, 0, 3, 0, 1)


def test_hypotheses_without_reference_are_named():
    with pytest.raises(ValueError, match="extra-1"):
        score({"s-1": "a"}, {"s-1": "a", "extra-1": "b"}, "word")


def test_speakers_from_prefix_or_utt2spk():
    refs = {"spk1-a": "x", "spk1_b": "x", "spk2-c": "x y"}
    hyps = {"spk1-a": "x", "spk1_b": "z", "spk2-c": ""}
    result = score(refs, hyps, "word")
    assert [s for s, _ in result.speakers()] == ["spk1", "spk2"]
    assert dict(result.speakers())["spk2"] == Counts(1, 2, 0, 0, 2, 0, 1)
    result = score(refs, hyps, "word", utt2spk={"spk1-a": "A", "spk1_b": "B", "spk2-c": "A"})
    assert dict(result.speakers())["A"] == Counts(2, 3, 1, 0, 2, 0, 1)
    with pytest.raises(ValueError, match="spk2-c"):
        score(refs, hyps, "word", utt2spk={"spk1-a": "A", "spk1_b": "B"})
