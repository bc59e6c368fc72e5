"""Tests of espnet_ext.scoring.tokens: units, tokenisation, speakers."""

import pytest

from espnet_ext.scoring.tokens import speaker_of, tokenize


@pytest.mark.parametrize(
    "text, unit, expected",
    [
        ("ab c", "char", ["a", "b", "<space>", "c"]),
        ("  ab   c  ", "char", ["a", "b", "<space>", "c"]),  # runs collapse, no edge spaces
        ("你好 世界", "char", ["你", "好", "<space>", "世", "界"]),
        ("", "char", []),
        ("the  cat sat", "word", ["the", "cat", "sat"]),
        ("sil ah b sil", "phn", ["sil", "ah", "b", "sil"]),
    ],
)
def test_tokenize(text, unit, expected):
    assert tokenize(text, unit) == expected


def test_tokenize_removes_nlsyms_and_tokens():
    assert tokenize("你好<noise>世界", "char", nlsyms=["<noise>"]) == ["你", "好", "世", "界"]
    # a removed symbol between words leaves one <space>
    assert tokenize("a <noise> b", "char", nlsyms=["<noise>"]) == ["a", "<space>", "b"]
    assert tokenize("a b", "char", remove_tokens=["<space>"]) == ["a", "b"]
    assert tokenize("a <noise> b <unk>", "word", ["<noise>"], ["<unk>"]) == ["a", "b"]
    # word units remove whole tokens only
    assert tokenize("a<noise>", "word", ["<noise>"]) == ["a<noise>"]


def test_bad_unit_is_named():
    with pytest.raises(ValueError, match="'chars'"):
        tokenize("a", "chars")


@pytest.mark.parametrize(
    "utt_id, speaker", [("spk1-u1", "spk1"), ("spk1_u1-x", "spk1"), ("solo", "solo"), ("-x", "-x")]
)
def test_speaker_is_the_prefix_like_sclite(utt_id, speaker):
    assert speaker_of(utt_id) == speaker
