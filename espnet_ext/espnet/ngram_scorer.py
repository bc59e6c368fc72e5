"""ESPnet's n-gram scorers for decoding (``--ngram_file``, ``--ngram_weight``, ``--ngram_scorer``),
on this project's ARPA reader (:mod:`espnet_ext.lm.query`) instead of the ``kenlm`` module.

ESPnet's ``espnet/nets/scorers/ngram.py`` (``NgramFullScorer``, ``NgramPartScorer``) queries KenLM;
these classes take the same constructor arguments ``(ngram_file, token_list)`` and return what
those return:

- **log10, not natural log**: ESPnet returns KenLM's ``BaseScore`` (log10 p) as is, and the beam
  search adds ``ngram_weight`` x that to natural-log scores (CTC, attention); so do these classes.
  A weight W on this scale is a weight W / ln 10 = 0.434 W on natural-log probabilities.
- **context**: the first step scores the tokens after ``<s>``; each later step extends the state by
  the hypothesis's last token, so a hypothesis ``<sos> t1 .. tn`` gets
  ``sum_i log10 p(t_i | <s> t1 .. t_{i-1})`` (cut to the model's order).
- **tokens to words**: token ``i`` of ``token_list`` is the ARPA word of the same spelling;
  ``<eos>`` and ``<sos/eos>`` (ESPnet2's end-of-sentence token) are ``</s>``; any token that is not
  an ARPA word (``<blank>``, unseen characters) is ``<unk>``. ESPnet's classes map only ``<eos>``,
  so with ESPnet2's token lists they score the end of a sentence as ``<unk>``; here it is
  ``p(</s> | context)``, what the model estimates for it. This is the one deliberate difference.
- ``NgramFullScorer`` scores the whole token list (ESPnet's ``BatchScorerInterface``, with a batched
  ``batch_score``); ``NgramPartScorer`` scores the tokens asked for (``score_partial``), and also
  has ``batch_score_partial`` (ESPnet's batched beam search, which ESPnet's class lacks).

Speed: the state of a hypothesis is its context cut to the part the next word depends on
(:meth:`~espnet_ext.lm.query.BackoffModel.state`), and the score vector over the token list is
computed once per state (vectorized backoff) and kept in an LRU cache of at most
:data:`CACHE_BYTES`; hypotheses of a beam and later utterances that share a state share the vector.

:func:`install` makes ESPnet's own inference code (``espnet2.bin.asr_inference`` and the other
``espnet2.bin`` tools, which import the classes from ``espnet.nets.scorers.ngram`` when they build
the beam search) take these classes; ``espnet_ext.bin.asr_inference`` calls it (with its
``--ngram_scorer``, an option ESPnet's command line lacks).
"""

from __future__ import annotations

import sys
import types
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from espnet.nets.scorer_interface import BatchPartialScorerInterface, BatchScorerInterface

from espnet_ext.lm.arpa import EOS
from espnet_ext.lm.query import BackoffModel

#: the module ESPnet's inference tools import the n-gram scorers from
ESPNET_MODULE = "espnet.nets.scorers.ngram"
#: token-list entries that stand for the end of a sentence (``</s>``)
EOS_TOKENS = ("<eos>", "<sos/eos>")
#: the most memory the cached score vectors take (float32 over the token list)
CACHE_BYTES = 256 * 2**20


class NgramBase:
    """What both scorers share: the model, the token -> word map, the per-state score cache."""

    def __init__(self, ngram_model, token_list):
        self.lm = BackoffModel(ngram_model)
        self.token_list = list(token_list)
        words = [EOS if t in EOS_TOKENS else t for t in self.token_list]
        self.token_words = np.asarray(self.lm.ids(words), dtype=np.int64)  # token id -> ARPA word id
        self.max_cached = max(1024, CACHE_BYTES // (4 * max(1, len(self.token_list))))
        self._cache: OrderedDict[tuple[int, ...], torch.Tensor] = OrderedDict()
        self.cache_hits = self.cache_misses = 0

    def init_state(self, x) -> tuple[int, ...]:
        """The empty context (``<s>`` comes with the first step, as in ESPnet)."""
        return ()

    def select_state(self, state: Any, i: int, new_id: int = None) -> Any:
        """A batched beam search's list of states: the i-th; a single state: itself."""
        return state[i] if isinstance(state, list) else state

    def next_state(self, last_token: int | None, state: tuple[int, ...] | None) -> tuple[int, ...]:
        """The state after the hypothesis's last token (None: the hypothesis is ``<sos>`` alone,
        which is ``<s>``)."""
        if last_token is None:
            return self.lm.state((self.lm.bos,))
        return self.lm.state((*(state or ()), int(self.token_words[last_token])))

    def vector(self, state: tuple[int, ...]) -> torch.Tensor:
        """log10 p(token | state) for every token of the token list (float32, CPU; cached)."""
        cached = self._cache.get(state)
        if cached is not None:
            self._cache.move_to_end(state)
            self.cache_hits += 1
            return cached
        self.cache_misses += 1
        scores = torch.from_numpy(self.lm.log10_vector(state)[self.token_words].astype(np.float32))
        self._cache[state] = scores
        if len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)
        return scores

    def score(self, y: torch.Tensor, state, x: torch.Tensor):
        """Scores of every token after ``y`` (``(n_vocab,)``, log10) and the new state."""
        new = self.next_state(int(y[-1]) if y.shape[0] > 1 else None, state)
        return self.vector(new).to(device=y.device, dtype=x.dtype), new

    def batch_score(self, ys: torch.Tensor, states: list, xs: torch.Tensor):
        """:meth:`score` of each row of ``ys``: ``(n_batch, n_vocab)`` and the list of new states."""
        lasts = ys[:, -1].tolist() if ys.shape[1] > 1 else [None] * ys.shape[0]
        new = [self.next_state(last, state) for last, state in zip(lasts, states)]
        scores = torch.stack([self.vector(s) for s in new])
        return scores.to(device=ys.device, dtype=xs.dtype), new


class NgramFullScorer(NgramBase, BatchScorerInterface):
    """ESPnet's full n-gram scorer (every token of the token list at each step)."""


class NgramPartScorer(NgramBase, BatchPartialScorerInterface):
    """ESPnet's partial n-gram scorer (the tokens the beam search's pre-beam keeps)."""

    def score_partial(self, y: torch.Tensor, next_token: torch.Tensor, state, x: torch.Tensor):
        """Scores of the tokens ``next_token`` after ``y`` (``(len(next_token),)``) and the new state."""
        scores, new = self.score(y, state, x)
        return scores[next_token], new

    def batch_score_partial(self, ys: torch.Tensor, next_tokens: torch.Tensor | None, states: list, xs: torch.Tensor):
        """Full-size ``(n_batch, n_vocab)`` scores, zero outside ``next_tokens`` (``(n_batch, k)``;
        None: every token), as ESPnet's batched beam search expects of partial scorers."""
        scores, new = self.batch_score(ys, states, xs)
        if next_tokens is not None:
            keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, next_tokens.to(scores.device), True)
            scores = scores.masked_fill(~keep, 0.0)
        return scores, new


SCORER_KINDS = ("full", "part")


def install(kind: str = "full") -> None:
    """Make ``from espnet.nets.scorers.ngram import NgramFullScorer, NgramPartScorer`` (in ESPnet's
    inference tools) give this module's classes; ESPnet's module (which needs ``kenlm``) is then
    never imported. A later call replaces an earlier one.

    ``kind="part"`` also puts :class:`NgramPartScorer` under the name ``NgramFullScorer``: ESPnet's
    ``asr_inference`` command line has no ``--ngram_scorer`` (its ``Speech2Text`` takes
    ``ngram_scorer``, its ``main`` never passes it, so it always builds the "full" one), and this is
    how ``espnet_ext.bin.asr_inference --ngram_scorer part`` reaches it."""
    import espnet.nets.scorers as package

    if kind not in SCORER_KINDS:
        raise ValueError(f"--ngram_scorer: expected one of {', '.join(SCORER_KINDS)}, not {kind!r}")
    module = types.ModuleType(ESPNET_MODULE, f"ESPnet's n-gram scorers as {__name__} ({kind}) provides them.")
    module.NgramFullScorer = NgramPartScorer if kind == "part" else NgramFullScorer
    module.NgramPartScorer = NgramPartScorer
    sys.modules[ESPNET_MODULE] = module
    package.ngram = module
