"""Scoring units and tokenisation: texts to token sequences per unit, speakers of utterances.

- ``char`` (CER): every character is a token; the whitespace between two words becomes one
  ``<space>`` token (runs collapse to one, none at either end), as in ESPnet's CER.
- ``word`` (WER), ``phn`` (PER): whitespace-separated tokens.
- ``bpe`` (TER, token error rate): the pieces of the recipe's sentencepiece model, reference and
  hypothesis texts both encoded with it, as ESPnet's asr.sh stage 13 scores ``ter``
  (``tokenize_text --token_type bpe`` of the hypothesis text, not the decoder's ``token`` file).

Non-linguistic symbols and ``remove_tokens`` are removed: for ``char`` wherever they occur,
before the split into characters (``<space>`` drops the word boundaries); for ``word`` and
``phn`` where they are whole tokens, as ESPnet's word tokenizer does. For ``bpe`` only
``remove_tokens`` are removed (whole pieces): ESPnet's ``ter`` keeps the non-linguistic
symbols, which its BPE model holds as pieces of their own.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from espnet_ext.scoring.textio import preview

UNITS = ("char", "word", "phn", "bpe")
METRICS = {"char": "CER", "word": "WER", "phn": "PER", "bpe": "TER"}
SPACE = "<space>"

#: A BPE encoder: text -> its pieces (:func:`bpe_encoder`).
Encoder = Callable[[str], list[str]]


class TokenPair(NamedTuple):
    """A tokenized reference and hypothesis of one utterance."""

    utt_id: str
    speaker: str
    ref: tuple[str, ...]
    hyp: tuple[str, ...]


def check_unit(unit: str) -> None:
    """ValueError unless ``unit`` is one of :data:`UNITS`."""
    if unit not in UNITS:
        raise ValueError(f"unit: expected one of {', '.join(UNITS)}, found {unit!r}")


def bpe_encoder(bpemodel: os.PathLike | str) -> Encoder:
    """The pieces of a text by the sentencepiece model ``bpemodel`` (what ESPnet's
    ``tokenize_text --token_type bpe`` gives).

    Raises:
        ValueError: ``bpemodel`` is not a file.
    """
    from espnet_ext.data.filter import make_tokenizer

    return make_tokenizer("bpe", bpemodel)


def tokenize(
    text: str,
    unit: str,
    nlsyms: Iterable[str] = (),
    remove_tokens: Iterable[str] = (),
    *,
    bpe: Encoder | None = None,
) -> list[str]:
    """Split ``text`` into scoring tokens of ``unit`` (see the module docstring); ``bpe``: the
    encoder for unit ``bpe`` (:func:`bpe_encoder`).

    >>> tokenize("ab  c", "char")
    ['a', 'b', '<space>', 'c']
    >>> tokenize("你好<noise>世界", "char", nlsyms=["<noise>"])
    ['你', '好', '世', '界']
    """
    check_unit(unit)
    if unit == "bpe":
        if bpe is None:
            raise ValueError("unit bpe: expected the BPE model to tokenize with (--bpemodel)")
        removed = set(remove_tokens)
        return [t for t in bpe(text) if t not in removed]
    drop = {*nlsyms, *remove_tokens}
    if unit != "char":
        return [t for t in text.split() if t not in drop]
    substrings = sorted((s for s in drop if s and s != SPACE), key=len, reverse=True)
    if substrings:
        text = re.sub("|".join(map(re.escape, substrings)), "", text)
    keep_space = SPACE not in drop
    tokens: list[str] = []
    for word in text.split():
        if tokens and keep_space:
            tokens.append(SPACE)
        tokens.extend(word)
    return tokens


def speaker_of(utt_id: str) -> str:
    """The speaker of an utterance id as sclite's ``-i rm`` reads it: the part before the
    first ``-`` or ``_`` (the whole id when there is none)."""
    prefix = re.split(r"[-_]", utt_id, maxsplit=1)[0]
    return prefix or utt_id


def prepare(
    refs: Mapping[str, str],
    hyps: Mapping[str, str],
    unit: str,
    *,
    nlsyms: Iterable[str] = (),
    remove_tokens: Iterable[str] = (),
    utt2spk: Mapping[str, str] | None = None,
    bpe: Encoder | None = None,
) -> tuple[list[TokenPair], tuple[str, ...]]:
    """Tokenize reference and hypothesis texts, in reference order (``bpe``: the encoder for
    unit ``bpe``).

    Returns the pairs and the ids of references without hypothesis (given an empty
    hypothesis, listed in a warning). A hypothesis without reference raises ValueError.
    Speakers come from ``utt2spk`` or else from :func:`speaker_of`."""
    check_unit(unit)
    extra = [u for u in hyps if u not in refs]
    if extra:
        raise ValueError(f"{len(extra)} hypotheses have no reference: {preview(extra)}")
    missing = tuple(u for u in refs if u not in hyps)
    if missing:
        warnings.warn(
            f"{len(missing)} reference utterances have no hypothesis and count as deletions: {preview(missing)}",
            stacklevel=3,
        )
    if utt2spk is not None:
        no_spk = [u for u in refs if u not in utt2spk]
        if no_spk:
            raise ValueError(f"utt2spk: no speaker for {len(no_spk)} utterances: {preview(no_spk)}")
    nlsyms, remove_tokens = tuple(nlsyms), tuple(remove_tokens)
    pairs = [
        TokenPair(
            utt,
            utt2spk[utt] if utt2spk is not None else speaker_of(utt),
            tuple(tokenize(text, unit, nlsyms, remove_tokens, bpe=bpe)),
            tuple(tokenize(hyps.get(utt, ""), unit, nlsyms, remove_tokens, bpe=bpe)),
        )
        for utt, text in refs.items()
    ]
    return pairs, missing
