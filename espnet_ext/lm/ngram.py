"""Interpolated modified Kneser-Ney n-gram estimation, written as an ARPA file.

The estimate is the one of Chen & Goodman, "An Empirical Study of Smoothing Techniques for Language
Modeling" (1998), section 3, in the form KenLM's ``lmplz`` computes (Heafield et al., "Scalable
Modified Kneser-Ney Language Model Estimation", ACL 2013):

- **Input**: one sentence per line, tokens separated by whitespace; ``<s>`` and ``</s>`` are added
  around each line (a line that holds them itself is an error, as in ``lmplz``). Empty lines are
  skipped (``lmplz`` would count each as a sentence ``<s> </s>``).
- **Adjusted counts** ``a``: the highest order N uses the raw counts; an n-gram of a lower order uses
  its number of distinct left extensions (the continuation count), except those that start with
  ``<s>`` (nothing can precede them), which keep their raw counts.
- **Discounts** per order k: from the count-of-counts ``t_j`` (the number of k-grams whose adjusted
  count is j; for unigrams all but ``<s>``), ``Y = t1 / (t1 + 2 t2)`` and
  ``D_j = j - (j + 1) Y t_{j+1} / t_j`` for j = 1, 2, 3 (``D3`` serves every count of 3 or more).
  When a ``t_j`` (j = 1..4) is 0 or a ``D_j`` falls outside ``(0, j)`` -- tiny corpora, or a
  character model's unigrams -- the order takes ``lmplz --discount_fallback``'s values
  ``D = (0.5, 1, 1.5)`` (what ESPnet's asr.sh stage 9 passes); this is logged as a warning.
- **Probabilities**, for context ``h`` and word ``w``::

      p(w | h) = (a(h w) - D(a(h w))) / sum_v a(h v)  +  gamma(h) p(w | h')
      gamma(h) = (D1 n1(h) + D2 n2(h) + D3 n3+(h)) / sum_v a(h v)

  with ``h'`` the context without its first word and ``n_j(h)`` the number of words whose adjusted
  count after ``h`` is j (3 or more for ``n3+``). The unigrams interpolate with the uniform
  distribution over the vocabulary (``lmplz``'s default ``--interpolate_unigrams``):
  ``p(w) = (a(w) - D(a(w))) / sum_v a(v) + gamma() / |V|``, where V holds every word of the text,
  ``</s>``, ``<unk>`` and the tokens of ``--vocab``, but not ``<s>`` (never predicted).
- **Unknown words**: ``<unk>`` gets the uniform share ``gamma() / |V|`` (plus its discounted count
  when the text holds ``<unk>`` tokens); so does every ``--vocab`` token absent from the text. A
  decoder that maps words outside the ARPA vocabulary to ``<unk>`` gives them that same value.
  ESPnet's special tokens (``<blank>``, ``<sos/eos>``) in ``--vocab`` are not words and are left out.
- **ARPA**: every seen n-gram is written with ``log10 p(w | h)``; an n-gram of a lower order carries
  ``log10 gamma`` of itself as a context (0 when nothing follows it). ``<s>`` is written with
  log10 probability -99. No pruning.

Counts are dicts of tuples of word ids (plain Python): fine for corpora of some hundred thousand
sentences; progress is logged every :data:`PROGRESS_EVERY` sentences.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from espnet_ext.lm.arpa import BOS, BOS_LOG10, EOS, UNK, write_arpa

logger = logging.getLogger(__name__)

#: ``lmplz --discount_fallback``'s discounts D1, D2, D3+
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
#: ESPnet token-list entries that are no words of a language model (left out of ``--vocab``)
NOT_WORDS = frozenset({"<blank>", "<sos/eos>", "<sos>", "<eos>", BOS, EOS})
PROGRESS_EVERY = 100_000


def read_sentences(paths: Sequence[str | os.PathLike]) -> Iterator[list[str]]:
    """The token lists of the non-empty lines of ``paths`` (``-``: standard input)."""
    for path in paths:
        f = sys.stdin if str(path) == "-" else open(path, encoding="utf-8")
        try:
            for number, line in enumerate(f, 1):
                tokens = line.split()
                if BOS in tokens or EOS in tokens:
                    raise ValueError(
                        f"{path}:{number}: {BOS} or {EOS} in the text; expected the tokens alone (they are added)"
                    )
                if tokens:
                    yield tokens
        finally:
            if f is not sys.stdin:
                f.close()


def read_vocab(path: str | os.PathLike) -> list[str]:
    """The words of a token list (one token per line, as ESPnet's ``tokens.txt``; a line's first
    field), without ESPnet's special tokens (:data:`NOT_WORDS`)."""
    words = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] not in NOT_WORDS:
                words.append(fields[0])
    return words


def discounts(count_of_counts: dict[int, int]) -> tuple[tuple[float, float, float], bool]:
    """Modified Kneser-Ney's (D1, D2, D3+) from the count-of-counts {j: t_j}, and whether they fell
    back to :data:`FALLBACK_DISCOUNTS` (a t_j of j = 1..4 is 0, or a D_j outside (0, j))."""
    t = [count_of_counts.get(j, 0) for j in range(5)]
    if min(t[1:5]) == 0:
        return FALLBACK_DISCOUNTS, True
    y = t[1] / (t[1] + 2 * t[2])
    d = tuple(j - (j + 1) * y * t[j + 1] / t[j] for j in (1, 2, 3))
    if not all(0 < d[j - 1] < j for j in (1, 2, 3)):
        return FALLBACK_DISCOUNTS, True
    return d, False


@dataclass
class Model:
    """An estimated model: ``words`` (id -> word; ``<unk>``, ``<s>``, ``</s>`` first), and per order
    k (index k - 1) the interpolated probabilities of its seen k-grams and the interpolation weights
    ``gamma`` of the (k-1)-gram contexts that have extensions."""

    words: list[str]
    probs: list[dict[tuple[int, ...], float]]
    gammas: list[dict[tuple[int, ...], float]]
    discounts: list[tuple[float, float, float]]
    fallback: list[int] = field(default_factory=list)  # orders whose discounts fell back
    sentences: int = 0
    tokens: int = 0

    @property
    def order(self) -> int:
        return len(self.probs)

    def counts(self) -> list[int]:
        """The number of n-grams written per order."""
        return [len(p) for p in self.probs]

    def sections(self) -> list[_Section]:
        """Per order, its ARPA entries (log10), sorted by word ids."""
        return [_Section(self, k) for k in range(1, self.order + 1)]

    def write(self, path: str | os.PathLike) -> Path:
        return write_arpa(path, self.words, self.sections())


class _Section:
    """The k-gram entries of a :class:`Model`, made as they are written."""

    def __init__(self, model: Model, k: int):
        self.model, self.k = model, k

    def __len__(self) -> int:
        return len(self.model.probs[self.k - 1])

    def __iter__(self):
        probs = self.model.probs[self.k - 1]
        gammas = self.model.gammas[self.k] if self.k < self.model.order else None
        bos = (self.model.words.index(BOS),)
        for ids in sorted(probs):
            log10p = BOS_LOG10 if ids == bos else math.log10(probs[ids])
            if gammas is None:
                yield ids, log10p, None
            else:
                gamma = gammas.get(ids)
                yield ids, log10p, (0.0 if gamma is None else math.log10(gamma))


class _Counter:
    """Raw counts of the highest order, and of the lower-order n-grams that start with ``<s>``."""

    def __init__(self, order: int):
        if order < 1:
            raise ValueError(f"the order of an n-gram model is 1 or more, not {order}")
        self.order = order
        self.words = [UNK, BOS, EOS]
        self.index = {w: i for i, w in enumerate(self.words)}
        self.top: Counter = Counter()
        self.starts = [Counter() for _ in range(order)]  # [k]: k-grams that start with <s>, k < order
        self.sentences = self.tokens = 0

    def word_id(self, word: str) -> int:
        i = self.index.get(word)
        if i is None:
            i = self.index[word] = len(self.words)
            self.words.append(word)
        return i

    def add(self, tokens: Sequence[str]) -> None:
        ids = [1, *map(self.word_id, tokens), 2]
        n = self.order
        self.top.update(zip(*(ids[i:] for i in range(n))))
        for k in range(1, min(n - 1, len(ids)) + 1):
            self.starts[k][tuple(ids[:k])] += 1
        self.sentences += 1
        self.tokens += len(tokens)


def adjusted_counts(counter: _Counter) -> list[dict[tuple[int, ...], int]]:
    """Per order k (index k - 1), the adjusted count of every seen k-gram (see the module doc)."""
    n = counter.order
    adjusted: list[dict] = [{} for _ in range(n)]
    adjusted[n - 1] = dict(counter.top)
    for k in range(n - 1, 0, -1):
        continuation = Counter(g[1:] for g in adjusted[k])
        continuation.update(counter.starts[k])  # k-grams that start with <s> are never a suffix
        adjusted[k - 1] = dict(continuation)
    return adjusted


def estimate(sentences: Iterable[Sequence[str]], order: int, vocab: Iterable[str] = ()) -> Model:
    """The interpolated modified Kneser-Ney model of ``sentences`` (token lists, without ``<s>``/
    ``</s>``) of the given order; ``vocab``: words that also belong to the vocabulary (see the
    module doc)."""
    counter = _Counter(order)
    start = time.monotonic()
    for sentence in sentences:
        counter.add(sentence)
        if counter.sentences % PROGRESS_EVERY == 0:
            logger.info(
                "counted %d sentences, %d tokens (%.0f s)", counter.sentences, counter.tokens, time.monotonic() - start
            )
    if counter.sentences == 0:
        raise ValueError("no sentences: the text is empty")
    for word in vocab:
        if word not in NOT_WORDS:
            counter.word_id(word)
    logger.info("counted %d sentences, %d tokens, %d words", counter.sentences, counter.tokens, len(counter.words))
    adjusted = adjusted_counts(counter)
    bos = (counter.index[BOS],)
    model = Model(counter.words, [], [{} for _ in range(order)], [], sentences=counter.sentences, tokens=counter.tokens)
    for k in range(1, order + 1):
        counts = adjusted[k - 1]
        if k == 1:
            counts = {g: c for g, c in counts.items() if g != bos}
        count_of_counts = Counter(c for c in counts.values() if c <= 4)
        d, fell_back = discounts(count_of_counts)
        if fell_back:
            model.fallback.append(k)
            logger.warning(
                "order %d: count-of-counts t1..t4 = %s give no modified Kneser-Ney discounts in range; "
                "falling back to D1, D2, D3+ = %s (lmplz --discount_fallback)",
                k,
                [count_of_counts.get(j, 0) for j in range(1, 5)],
                FALLBACK_DISCOUNTS,
            )
        model.discounts.append(d)
        model.probs.append(_interpolate(counts, d, model, k))
        logger.info("order %d: %d n-grams, discounts %s", k, len(model.probs[-1]), ", ".join(f"{x:.4f}" for x in d))
    return model


def _interpolate(counts: dict[tuple[int, ...], int], d, model: Model, k: int) -> dict[tuple[int, ...], float]:
    """The order-k probabilities of ``counts`` (adjusted), interpolated with order k - 1 (the
    uniform distribution for k = 1); records each context's gamma in ``model.gammas[k - 1]``."""
    discount = (0.0, d[0], d[1], d[2])
    totals: dict[tuple[int, ...], list[float]] = {}  # context -> [sum of counts, sum of discounts]
    for g, c in counts.items():
        t = totals.get(g[:-1])
        if t is None:
            t = totals[g[:-1]] = [0.0, 0.0]
        t[0] += c
        t[1] += discount[c if c < 3 else 3]
    gammas = model.gammas[k - 1]
    for h, t in totals.items():
        gammas[h] = t[1] / t[0]
        t[0], t[1] = 1.0 / t[0], gammas[h]  # now [1 / sum of counts, gamma]
    probs: dict[tuple[int, ...], float] = {}
    if k == 1:
        vocabulary = len(model.words) - 1  # all but <s>
        inverse, gamma = totals[()]
        for i in range(len(model.words)):
            if model.words[i] == BOS:
                probs[(i,)] = 0.0  # written as -99
                continue
            c = counts.get((i,), 0)
            probs[(i,)] = (c - discount[c if c < 3 else 3]) * inverse + gamma / vocabulary
        return probs
    lower = model.probs[k - 2]
    for g, c in counts.items():
        inverse, gamma = totals[g[:-1]]
        probs[g] = (c - discount[c if c < 3 else 3]) * inverse + gamma * lower[g[1:]]
    return probs


@dataclass
class Summary:
    """What :func:`train` read and wrote."""

    sentences: int
    tokens: int
    ngrams: list[int]
    seconds: float
    out: Path

    def line(self) -> str:
        counts = " ".join(f"{k}={n}" for k, n in enumerate(self.ngrams, 1))
        return f"{self.sentences} sentences, {self.tokens} tokens, n-grams {counts}, {self.seconds:.1f} s -> {self.out}"


def train(
    texts: Sequence[str | os.PathLike], order: int, out: str | os.PathLike, vocab: str | os.PathLike | None = None
) -> Summary:
    """Estimate an order-``order`` model of the text files ``texts`` and write it to ``out`` (ARPA);
    ``vocab``: a token list whose words all belong to the vocabulary (:func:`read_vocab`)."""
    start = time.monotonic()
    words = read_vocab(vocab) if vocab else []
    model = estimate(read_sentences(texts), order, words)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    model.write(out)
    return Summary(model.sentences, model.tokens, model.counts(), time.monotonic() - start, Path(out))
