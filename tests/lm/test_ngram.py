"""Interpolated modified Kneser-Ney estimation (espnet_ext.lm.ngram): a bigram model worked out by
hand, normalization of every context of bigger models, the discount fallback, the vocabulary."""

from __future__ import annotations

import logging
import math
from fractions import Fraction as F
from pathlib import Path

import pytest

from espnet_ext.lm.arpa import read_arpa
from espnet_ext.lm.ngram import FALLBACK_DISCOUNTS, discounts, estimate, read_vocab, train
from espnet_ext.lm.query import BackoffModel

ROOT = Path(__file__).resolve().parents[2]

# Three sentences; with <s> and </s> the bigram counts are
#   <s> a: 2   a a: 4   a </s>: 1   a b: 3   b b: 2   b </s>: 2   <s> b: 1   b a: 2
HAND_CORPUS = "a a a a a\na b b b\nb a b a b\n"


def hand_bigram_model() -> dict:
    """The bigram model of HAND_CORPUS, worked out by hand (exact fractions).

    Bigrams (highest order: raw counts): count-of-counts t1 = 2 (a </s>, <s> b), t2 = 4 (<s> a,
    b b, b </s>, b a), t3 = 1 (a b), t4 = 1 (a a). Y = 2 / (2 + 2*4) = 1/5;
    D1 = 1 - 2 Y t2/t1 = 1 - 2/5*4/2 = 1/5; D2 = 2 - 3 Y t3/t2 = 2 - 3/5/4 = 37/20;
    D3+ = 3 - 4 Y t4/t3 = 3 - 4/5 = 11/5 (all within (0, j)).

    Unigrams (continuation counts: distinct left neighbours): a {<s>, a, b} = 3, b {<s>, a, b} = 3,
    </s> {a, b} = 2; count-of-counts t1 = 0 -> lmplz's fallback D = 1/2, 1, 3/2. The vocabulary V
    is {a, b, </s>, <unk>} (|V| = 4). Sum of counts 8; gamma() = (1 * 1 + 3/2 * 2) / 8 = 1/2.
    """
    d1, d2, d3 = F(1, 5), F(37, 20), F(11, 5)
    u = {
        "a": (3 - F(3, 2)) / 8 + F(1, 2) / 4,  # 5/16
        "b": (3 - F(3, 2)) / 8 + F(1, 2) / 4,  # 5/16
        "</s>": (2 - 1) / F(8) + F(1, 2) / 4,  # 1/4
        "<unk>": F(1, 2) / 4,  # 1/8
    }
    # context <s>: a 2, b 1 (sum 3): gamma = (D1 * 1 + D2 * 1) / 3
    g_bos = (d1 + d2) / 3
    # context a: a 4, </s> 1, b 3 (sum 8): gamma = (D1 * 1 + D3 * 2) / 8
    g_a = (d1 + 2 * d3) / 8
    # context b: b 2, </s> 2, a 2 (sum 6): gamma = D2 * 3 / 6
    g_b = d2 * 3 / 6
    bigrams = {
        ("<s>", "a"): (2 - d2) / 3 + g_bos * u["a"],
        ("<s>", "b"): (1 - d1) / 3 + g_bos * u["b"],
        ("a", "a"): (4 - d3) / 8 + g_a * u["a"],
        ("a", "</s>"): (1 - d1) / 8 + g_a * u["</s>"],
        ("a", "b"): (3 - d3) / 8 + g_a * u["b"],
        ("b", "b"): (2 - d2) / 6 + g_b * u["b"],
        ("b", "</s>"): (2 - d2) / 6 + g_b * u["</s>"],
        ("b", "a"): (2 - d2) / 6 + g_b * u["a"],
    }
    backoffs = {"<s>": g_bos, "a": g_a, "b": g_b, "</s>": F(1), "<unk>": F(1)}
    return {"unigrams": u, "bigrams": bigrams, "backoffs": backoffs}


def arpa_by_words(path):
    """{n-gram words: (log10 p, log10 bow or None)} of an ARPA file."""
    arpa = read_arpa(path)
    return {tuple(arpa.words[i] for i in ids): value for grams in arpa.ngrams for ids, value in grams.items()}, arpa


def test_hand_computed_bigram_model_is_the_file_written(tmp_path):
    text = tmp_path / "train.tokens"
    text.write_text(HAND_CORPUS)
    summary = train([text], 2, tmp_path / "2gram.arpa")
    assert (summary.sentences, summary.tokens, summary.ngrams) == (3, 14, [5, 8])
    found, arpa = arpa_by_words(tmp_path / "2gram.arpa")
    expected = hand_bigram_model()
    assert arpa.words == ["<unk>", "<s>", "</s>", "a", "b"]
    assert sum(expected["unigrams"].values()) == 1
    for word, p in expected["unigrams"].items():
        log10p, log10bow = found[(word,)]
        assert log10p == pytest.approx(math.log10(p), abs=1e-6), word
        assert log10bow == pytest.approx(math.log10(expected["backoffs"][word]), abs=1e-6), word
    assert found[("<s>",)] == pytest.approx((-99, math.log10(expected["backoffs"]["<s>"])), abs=1e-6)
    for bigram, p in expected["bigrams"].items():
        assert found[bigram] == (pytest.approx(math.log10(p), abs=1e-6), None), bigram
    assert len(found) == 5 + 8
    # every context sums to one over V (exactly, in fractions)
    u = expected["unigrams"]
    for h, gamma in expected["backoffs"].items():
        seen = {w: p for (c, w), p in expected["bigrams"].items() if c == h}
        assert sum(seen.values()) + gamma * sum(p for w, p in u.items() if w not in seen) == 1, h


def test_discounts_from_count_of_counts_and_their_fallback():
    assert discounts({1: 2, 2: 4, 3: 1, 4: 1}) == (pytest.approx((0.2, 1.85, 2.2)), False)
    assert discounts({1: 0, 2: 1, 3: 2}) == (FALLBACK_DISCOUNTS, True)  # t1 = 0
    assert discounts({1: 5, 2: 1, 3: 1, 4: 1}) == (FALLBACK_DISCOUNTS, True)  # D1 < 0 would follow
    d, fell_back = discounts({1: 100, 2: 40, 3: 20, 4: 10})
    y = 100 / 180
    assert not fell_back and d == pytest.approx((1 - 2 * y * 0.4, 2 - 3 * y * 0.5, 3 - 4 * y * 0.5))


def test_fallback_is_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="espnet_ext.lm.ngram"):
        model = estimate([s.split() for s in HAND_CORPUS.splitlines()], 2)
    assert model.fallback == [1]
    assert "order 1: count-of-counts t1..t4 = [0, 1, 2, 0]" in caplog.text
    assert model.discounts[1] == pytest.approx((0.2, 1.85, 2.2))


def mini_text(tmp_path) -> Path:
    """The mini corpus's English transcripts as character tokens (``<space>`` between words)."""
    lines = (ROOT / "egs2/mini/corpus/en/text").read_text().splitlines()
    chars = [" ".join("<space>" if c == " " else c for c in line.split(maxsplit=1)[1]) for line in lines]
    path = tmp_path / "train.tokens"
    path.write_text("\n".join(chars) + "\n")
    return path


@pytest.mark.parametrize("order", [3, 4, 6])
def test_every_context_sums_to_one(tmp_path, order):
    """Over the vocabulary and </s> (not <s>), queried with backoff from the written ARPA: every
    listed context, every context cut from the text, and unseen ones."""
    text = mini_text(tmp_path)
    summary = train([text], order, tmp_path / "lm.arpa")
    assert len(summary.ngrams) == order and all(n > 0 for n in summary.ngrams)
    lm = BackoffModel(tmp_path / "lm.arpa")
    contexts = set(lm.extensions) | set(lm.backoff) | {()}
    for line in text.read_text().splitlines()[:20]:
        ids = [lm.bos, *lm.ids(line.split())]
        contexts |= {tuple(ids[max(0, i - order + 1) : i]) for i in range(1, len(ids) + 1)}
    contexts |= {(lm.unk,), lm.ids(["z", "q"]), (lm.bos, lm.unk, lm.eos)}
    for context in contexts:
        assert lm.probability_mass(context) == pytest.approx(1.0, abs=1e-6), [lm.words[i] for i in context]


def test_vocab_tokens_absent_from_the_text_get_the_unk_share(tmp_path):
    text = tmp_path / "train.tokens"
    text.write_text(HAND_CORPUS)
    vocab = tmp_path / "tokens.txt"
    vocab.write_text("<blank>\n<unk>\na\nb\nc\nd\n<sos/eos>\n")
    assert read_vocab(vocab) == ["<unk>", "a", "b", "c", "d"]
    train([text], 2, tmp_path / "lm.arpa", vocab=vocab)
    found, arpa = arpa_by_words(tmp_path / "lm.arpa")
    assert arpa.words == ["<unk>", "<s>", "</s>", "a", "b", "c", "d"]
    # |V| = 6 now: the uniform share gamma() / |V| = 1/2 / 6 = 1/12 for <unk>, c and d
    for word in ("<unk>", "c", "d"):
        assert found[(word,)][0] == pytest.approx(math.log10(1 / 12), abs=1e-6)
    assert found[("a",)][0] == pytest.approx(math.log10(3 / 16 + 1 / 12), abs=1e-6)
    lm = BackoffModel(tmp_path / "lm.arpa")
    for context in [(), (lm.bos,), (lm.index["a"],), (lm.index["c"],)]:
        assert lm.probability_mass(context) == pytest.approx(1.0, abs=1e-6)


def test_bad_input_names_the_file_and_line(tmp_path):
    text = tmp_path / "train.tokens"
    text.write_text("a b\n<s> a b </s>\n")
    with pytest.raises(ValueError, match=r"train.tokens:2: <s> or </s> in the text"):
        train([text], 3, tmp_path / "lm.arpa")
    text.write_text("\n\n")
    with pytest.raises(ValueError, match="no sentences"):
        train([text], 3, tmp_path / "lm.arpa")
    assert not (tmp_path / "lm.arpa").exists()


def test_empty_lines_are_skipped_and_short_sentences_counted(tmp_path):
    """A sentence shorter than the order still gives its n-grams (those that start with <s> by raw count)."""
    text = tmp_path / "train.tokens"
    text.write_text("a\n\nb a\n")
    summary = train([text], 4, tmp_path / "lm.arpa")
    assert summary.sentences == 2 and summary.tokens == 3
    found, _ = arpa_by_words(tmp_path / "lm.arpa")
    assert ("<s>", "a", "</s>") in found and ("<s>", "b", "a", "</s>") in found
    assert ("b", "a", "</s>") in found and ("a", "</s>") in found
    lm = BackoffModel(tmp_path / "lm.arpa")
    for context in [(), (lm.bos,), (lm.bos, lm.index["b"]), (lm.index["b"], lm.index["a"])]:
        assert lm.probability_mass(context) == pytest.approx(1.0, abs=1e-6)
