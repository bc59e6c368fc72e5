"""The scorer: reference and hypothesis texts to per-utterance alignments and counts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from espnet_ext.scoring.alignment import align_many
from espnet_ext.scoring.counts import Counts, sum_counts
from espnet_ext.scoring.tokens import METRICS, Encoder, prepare


class UttScore(NamedTuple):
    """One utterance: its tokens, its alignment and its counts.

    ``ops`` has one letter per alignment column, in order: ``C`` correct, ``S`` substitution,
    ``D`` deletion (a reference token with no hypothesis token), ``I`` insertion.
    """

    utt_id: str
    speaker: str
    ref: tuple[str, ...]
    hyp: tuple[str, ...]
    ops: str
    counts: Counts


class Score(NamedTuple):
    """The result of :func:`score`: totals, utterances (in reference order), and the ids
    of reference utterances that had no hypothesis (scored as all deletions)."""

    unit: str
    total: Counts
    utterances: tuple[UttScore, ...]
    missing: tuple[str, ...] = ()
    case_sensitive: bool = False

    @property
    def metric(self) -> str:
        """``CER``, ``WER``, ``PER`` or ``TER``."""
        return METRICS[self.unit]

    def speakers(self) -> list[tuple[str, Counts]]:
        """Per-speaker counts, speakers in order of first appearance."""
        by_speaker: dict[str, Counts] = {}
        for utt in self.utterances:
            by_speaker[utt.speaker] = by_speaker.get(utt.speaker, Counts()).plus(utt.counts)
        return list(by_speaker.items())


def _utt_counts(n_ref: int, ops: str) -> Counts:
    """Counts of one utterance from its operations."""
    correct = ops.count("C")
    return Counts(1, n_ref, correct, ops.count("S"), ops.count("D"), ops.count("I"), int(correct != len(ops)))


def score(
    refs: Mapping[str, str],
    hyps: Mapping[str, str],
    unit: str,
    *,
    nlsyms: Iterable[str] = (),
    remove_tokens: Iterable[str] = (),
    utt2spk: Mapping[str, str] | None = None,
    case_sensitive: bool = False,
    bpe: Encoder | None = None,
) -> Score:
    """Score hypothesis texts against reference texts (both ``{uttid: text}``).

    ``unit``: ``char`` (CER), ``word`` (WER), ``phn`` (PER) or ``bpe`` (TER, the pieces of
    the encoder ``bpe``: :func:`~espnet_ext.scoring.tokens.bpe_encoder`). A reference without
    hypothesis counts as all deletions and is named in a warning (and in ``Score.missing``);
    a hypothesis without reference raises ValueError. Speakers come from ``utt2spk`` or,
    without it, from the id's prefix (:func:`~espnet_ext.scoring.tokens.speaker_of`)."""
    pairs, missing = prepare(refs, hyps, unit, nlsyms=nlsyms, remove_tokens=remove_tokens, utt2spk=utt2spk, bpe=bpe)
    all_ops = align_many([p.ref for p in pairs], [p.hyp for p in pairs], case_sensitive)
    utterances = tuple(
        UttScore(p.utt_id, p.speaker, p.ref, p.hyp, ops, _utt_counts(len(p.ref), ops)) for p, ops in zip(pairs, all_ops)
    )
    total = sum_counts(u.counts for u in utterances)
    return Score(unit, total, utterances, missing, case_sensitive)
