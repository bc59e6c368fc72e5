"""An ARPA model queried with backoff: one word, a sentence, or every word of the vocabulary at once.

Backoff (the ARPA semantics, as KenLM and SRILM query)::

    log10 p(w | h) = log10 p*(h w)                    if the n-gram h w is listed
                   = log10 bow(h) + log10 p(w | h')   otherwise (h' = h without its first word)

with ``bow(h) = 1`` (log10 0) for a context ``h`` that is not listed. A context longer than the
order minus one is cut to its last words. Words outside the ARPA vocabulary are ``<unk>``; a file
without ``<unk>`` gives them log10 probability -100 (KenLM's substitute).

:meth:`BackoffModel.log10_vector` gives every word's log10 probability after a context in one pass:
start from the unigram vector, then for each suffix of the context from the shortest up, add the
suffix's backoff weight and overwrite the words listed after it. :meth:`BackoffModel.state` cuts a
context to its longest suffix that still matters (listed with extensions or a backoff weight): two
contexts with the same state have the same distribution, so a scorer can cache per state.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from espnet_ext.lm.arpa import BOS, EOS, UNK, iter_arpa, word_ids

#: log10 probability of a word outside a vocabulary without ``<unk>`` (KenLM's substitute)
MISSING_UNK_LOG10 = -100.0


class BackoffModel:
    """An ARPA file in memory for queries: ``words`` (id -> word, the unigram section's order),
    ``unigram`` (log10 probabilities, a numpy vector), ``extensions`` (context ids -> {word id:
    log10 p}), ``backoff`` (context ids -> log10 weight, the non-zero ones)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.words: list[str] = []
        self.index: dict[str, int] = {}
        unigram: list[float] = []
        self.extensions: dict[tuple[int, ...], dict[int, float]] = {}
        self.backoff: dict[tuple[int, ...], float] = {}
        self.order = 0
        for words, log10p, log10bow in iter_arpa(self.path):
            k = len(words)
            self.order = max(self.order, k)
            if k == 1:
                self.index[words[0]] = len(self.words)
                self.words.append(words[0])
                unigram.append(log10p)
                ids = (self.index[words[0]],)
            else:
                ids = word_ids(words, self.index, self.path)
                ext = self.extensions.get(ids[:-1])
                if ext is None:
                    ext = self.extensions[ids[:-1]] = {}
                ext[ids[-1]] = log10p
            if log10bow:
                self.backoff[ids] = log10bow
        if UNK not in self.index:  # a virtual <unk> that nothing follows
            self.index[UNK] = len(self.words)
            self.words.append(UNK)
            unigram.append(MISSING_UNK_LOG10)
        self.unk = self.index[UNK]
        self.bos, self.eos = self.index.get(BOS), self.index.get(EOS)
        if self.bos is None or self.eos is None:
            raise ValueError(f"{self.path}: expected {BOS} and {EOS} among the unigrams")
        self.unigram = np.asarray(unigram, dtype=np.float64)

    def ids(self, words: Iterable[str]) -> tuple[int, ...]:
        """Word ids, ``<unk>`` for words outside the vocabulary."""
        return tuple(self.index.get(w, self.unk) for w in words)

    def cut(self, context: Sequence[int]) -> tuple[int, ...]:
        """The last order - 1 ids of ``context`` (the words an n-gram can condition on)."""
        return tuple(context[max(0, len(context) - self.order + 1) :]) if self.order > 1 else ()

    def state(self, context: Sequence[int]) -> tuple[int, ...]:
        """The longest suffix of ``context`` (ids, at most order - 1 of them) that is listed with
        extensions or a backoff weight: the part of the context the next word's distribution
        depends on."""
        context = self.cut(context)
        for start in range(len(context)):
            suffix = context[start:]
            if suffix in self.extensions or suffix in self.backoff:
                return suffix
        return ()

    def log10p(self, word: int, context: Sequence[int] = ()) -> float:
        """log10 p(word | context), both as ids, with backoff."""
        context = self.cut(context)
        total = 0.0
        for start in range(len(context) + 1):
            suffix = context[start:]
            ext = self.extensions.get(suffix) if suffix else None
            if ext is not None and word in ext:
                return total + ext[word]
            if suffix:
                total += self.backoff.get(suffix, 0.0)
        return total + float(self.unigram[word])

    def sentence_log10p(self, words: Sequence[str], eos: bool = True) -> float:
        """log10 of a sentence's probability after ``<s>`` (with ``</s>`` at its end when ``eos``)."""
        history = [self.bos]
        total = 0.0
        for w in (*self.ids(words), *((self.eos,) if eos else ())):
            total += self.log10p(w, history)
            history.append(w)
        return total

    def log10_vector(self, context: Sequence[int]) -> np.ndarray:
        """log10 p(w | context) for every word id w (a new float64 vector)."""
        context = self.state(context)
        vector = self.unigram.copy()
        for start in range(len(context) - 1, -1, -1):  # the shortest suffix first
            suffix = context[start:]
            bow = self.backoff.get(suffix)
            if bow:
                vector += bow
            ext = self.extensions.get(suffix)
            if ext:
                vector[np.fromiter(ext.keys(), np.int64, len(ext))] = np.fromiter(ext.values(), np.float64, len(ext))
        return vector

    def probability_mass(self, context: Sequence[int]) -> float:
        """The sum of p(w | context) over the vocabulary but ``<s>`` (1 for a normalized model)."""
        vector = self.log10_vector(context)
        mask = np.ones(len(vector), dtype=bool)
        mask[self.bos] = False
        return float(np.sum(np.power(10.0, vector[mask])))
