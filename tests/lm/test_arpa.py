"""The ARPA format (espnet_ext.lm.arpa) and backoff queries (espnet_ext.lm.query)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from espnet_ext.lm.arpa import format_log10, read_arpa, write_arpa
from espnet_ext.lm.ngram import estimate
from espnet_ext.lm.query import MISSING_UNK_LOG10, BackoffModel

SENTENCES = ["a b c a b", "b c c a", "a a b c", "c b a", "a b"]

# A hand-written trigram ARPA file (not normalized): backoff arithmetic only.
SMALL = """
\\data\\
ngram 1=5
ngram 2=3
ngram 3=1

\\1-grams:
-1.0\t<unk>\t0
-99\t<s>\t-0.5
-0.5\t</s>
-0.4\ta\t-0.25
-0.6\tb\t-0.1

\\2-grams:
-0.2\t<s> a\t-0.3
-0.7\ta b\t0
-0.3\tb </s>

\\3-grams:
-0.05\t<s> a b

\\end\\
"""


def test_round_trip(tmp_path):
    model = estimate([s.split() for s in SENTENCES], 3)
    path = model.write(tmp_path / "lm.arpa")
    arpa = read_arpa(path)
    assert arpa.order == 3 and arpa.words == model.words
    assert [len(g) for g in arpa.ngrams] == model.counts()
    for k, grams in enumerate(arpa.ngrams, 1):
        for ids, (log10p, log10bow) in grams.items():
            if ids != (model.words.index("<s>"),):
                assert log10p == pytest.approx(math.log10(model.probs[k - 1][ids]), abs=1e-6)
            gamma = model.gammas[k].get(ids, 1.0) if k < 3 else None
            assert log10bow == (None if gamma is None else pytest.approx(math.log10(gamma), abs=1e-6))
    again = write_arpa(tmp_path / "again.arpa.gz", arpa.words, arpa.entries())
    assert read_arpa(again) == arpa
    write_arpa(tmp_path / "again.arpa", arpa.words, arpa.entries())
    assert (tmp_path / "again.arpa").read_text() == path.read_text()


def test_format_log10():
    assert [format_log10(x) for x in (0.0, -0.0, -99.0, -0.30102999566, -1.2e-7)] == [
        "0",
        "0",
        "-99",
        "-0.30103",
        "-1.2e-07",
    ]
    with pytest.raises(ValueError, match="finite"):
        format_log10(-math.inf)


def test_backoff_queries_by_hand(tmp_path):
    path = tmp_path / "small.arpa"
    path.write_text(SMALL)
    lm = BackoffModel(path)
    s, a, b, eos, unk = (lm.index[w] for w in ("<s>", "a", "b", "</s>", "<unk>"))
    assert lm.order == 3
    assert lm.log10p(b, (s, a)) == pytest.approx(-0.05)  # listed trigram
    assert lm.log10p(eos, (s, a)) == pytest.approx(-0.3 + -0.25 + -0.5)  # bow(<s> a) + bow(a) + p(</s>)
    assert lm.log10p(b, (b, a)) == pytest.approx(-0.7)  # "b a" unlisted: no backoff, then "a b"
    assert lm.log10p(a, (a, b)) == pytest.approx(0 + -0.1 + -0.4)  # bow(a b) = 0, bow(b) = -0.1
    assert lm.log10p(eos, (a, b)) == pytest.approx(-0.3)
    assert lm.log10p(a, (unk,)) == pytest.approx(-0.4)
    assert lm.sentence_log10p(["a", "b"]) == pytest.approx(-0.2 + -0.05 + -0.3)
    assert lm.sentence_log10p(["zzz"], eos=False) == pytest.approx(-0.5 + -1.0)  # unknown word: <unk>
    # state: the part of the context that matters
    assert lm.state((b, s, a)) == (s, a)  # cut to order - 1 words
    assert lm.state((b, a)) == (a,)  # "b a" unlisted
    assert lm.state((a, eos)) == ()  # "a </s>" unlisted, </s> has no backoff and no extension
    assert lm.state((unk,)) == ()
    for context in [(), (s,), (s, a), (a, b), (b, a), (eos, b), (a, s), (s, a, b)]:
        vector = lm.log10_vector(context)
        assert vector == pytest.approx([lm.log10p(w, context) for w in range(len(lm.words))]), context


def test_vector_equals_word_by_word_on_an_estimated_model(tmp_path):
    model = estimate([s.split() for s in SENTENCES], 4)
    lm = BackoffModel(model.write(tmp_path / "lm.arpa"))
    rng = np.random.default_rng(0)
    for _ in range(50):
        context = tuple(int(i) for i in rng.integers(0, len(lm.words), size=rng.integers(0, 5)))
        vector = lm.log10_vector(context)
        expected = [lm.log10p(w, context) for w in range(len(lm.words))]
        assert vector == pytest.approx(expected, abs=1e-9), context
        assert lm.log10_vector(lm.state(context)) == pytest.approx(vector, abs=1e-12)


def test_a_file_without_unk(tmp_path):
    path = tmp_path / "no_unk.arpa"
    path.write_text(SMALL.replace("ngram 1=5", "ngram 1=4").replace("-1.0\t<unk>\t0\n", ""))
    lm = BackoffModel(path)
    assert lm.words[lm.unk] == "<unk>" and lm.log10p(lm.ids(["zzz"])[0]) == MISSING_UNK_LOG10


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("ngram 2=3", "ngram 2=4"), r"small.arpa:19: 3 2-grams, the header says 4"),
        (lambda t: t.replace("\\end\\\n", ""), "ends without"),
        (lambda t: t.replace("-0.7\ta b\t0", "-0.7\ta b c d"), r"small.arpa:16: expected 'log10p w1 .. w2"),
        (lambda t: t.replace("-0.7\ta b\t0", "x\ta b\t0"), "expected numbers"),
        (lambda t: t.replace("-0.3\tb </s>", "-0.3\tb zz"), "a word without a unigram"),
        (lambda t: t.replace("\\data\\", "data"), r"no \\data\\ line"),
        (lambda t: t.replace("\\3-grams:", "\\4-grams:"), r"expected \\3-grams:"),
    ],
)
def test_malformed_files_name_the_file(tmp_path, edit, message):
    path = tmp_path / "small.arpa"
    path.write_text(edit(SMALL))
    with pytest.raises(ValueError, match=message):
        BackoffModel(path)


def test_a_kenlm_binary_is_not_read_as_arpa(tmp_path):
    path = tmp_path / "3gram.bin"
    path.write_bytes(b"mmap lm http://kheafield.com/code format version 5\n\0\0\xff\xfe\x80" * 4)
    with pytest.raises(ValueError, match="3gram.bin: .*not an ARPA text file"):
        read_arpa(path)
