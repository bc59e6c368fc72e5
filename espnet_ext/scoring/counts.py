"""Error counts (sentences, words, C/S/D/I, sentence errors) and percentages rounded like
sclite: ``floor(count / total * 1000 + 0.5) / 10``, half up."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple


class Counts(NamedTuple):
    """Error counts of a set of utterances (one utterance: ``sentences == 1``)."""

    sentences: int = 0
    words: int = 0  # reference tokens
    correct: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    sentence_errors: int = 0

    @property
    def errors(self) -> int:
        """Substitutions + deletions + insertions."""
        return self.substitutions + self.deletions + self.insertions

    def plus(self, other: Counts) -> Counts:
        """The field-wise sum (``+`` would concatenate the tuples)."""
        return Counts(*(a + b for a, b in zip(self, other)))

    def percentages(self) -> Percentages:
        """Percentages as sclite prints them (rounded half up to 0.1; 0.0 with no words)."""
        word_fields = (self.correct, self.substitutions, self.deletions, self.insertions, self.errors)
        return Percentages(
            *(sclite_percent(x, self.words) for x in word_fields),
            sclite_percent(self.sentence_errors, self.sentences),
        )


class Percentages(NamedTuple):
    """Percentages of the reference tokens (``sentence_errors``: of the sentences)."""

    correct: float
    substitutions: float
    deletions: float
    insertions: float
    errors: float
    sentence_errors: float


def sclite_percent(count: float, total: float) -> float:
    """``count / total`` in percent, rounded half up to one decimal like sclite; 0.0 if
    ``total`` is 0. Format the result with ``"%.1f"``."""
    if total == 0:
        return 0.0
    return math.floor(count / total * 100 * 10 + 0.5) / 10


def sum_counts(counts: Iterable[Counts]) -> Counts:
    """The field-wise sum of counts."""
    total = Counts()
    for c in counts:
        total = total.plus(c)
    return total
