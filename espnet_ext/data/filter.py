"""Stage 4: remove utterances that are too short, too long, untranscribed or CTC-infeasible.

Reads a dumped data dir (stage 3, :mod:`espnet_ext.data.format`: ``utt2num_samples`` is
required; a dir without ``text``, untranscribed audio for pre-training, gets the duration
checks only) and writes ``DST`` as a full data dir of the kept utterances plus
``DST/removed.txt`` (``uttid<TAB>reason``). An utterance is removed, for the first reason
that applies, when:

- its duration ``num_samples / fs`` is below ``min_dur`` or above ``max_dur`` (bounds kept);
- its transcript is empty;
- CTC cannot align it: the model's CTC layer sees fewer frames than
  ``labels + repeats``, where ``repeats`` counts adjacent identical labels (CTC must emit
  a blank between them). Frames come from :mod:`espnet_ext.data.frames`; labels from the
  token type:

  ``char``  characters, each word boundary one ``<space>`` token (ESPnet's char tokenizer
            with ``<space>``; runs of whitespace count once); a non-linguistic symbol
            from ``nlsyms`` (e.g. ``<noise>``) is one token
  ``word``  whitespace-separated words;  ``phn``  whitespace-separated phones
  ``bpe``   the sentencepiece pieces of ``bpemodel``

Neither torch nor ESPnet is imported (sentencepiece only for ``bpe``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from espnet_ext.core.atomic import write_text
from espnet_ext.data import datadir, kaldi_files

logger = logging.getLogger(__name__)

TOKEN_TYPES = ("char", "bpe", "word", "phn")
SPACE = "<space>"

Tokenizer = Callable[[str], list[str]]


def char_tokens(text: str, nlsyms: Sequence[str] = ()) -> list[str]:
    """Characters of ``text``; words joined by one ``<space>``; ``nlsyms`` kept whole."""
    symbols = sorted(nlsyms, key=len, reverse=True)
    tokens: list[str] = []
    for i, word in enumerate(text.split()):
        if i:
            tokens.append(SPACE)
        pos = 0
        while pos < len(word):
            match = next((s for s in symbols if word.startswith(s, pos)), None)
            tokens.append(match or word[pos])
            pos += len(match) if match else 1
    return tokens


def make_tokenizer(token_type: str, bpemodel: os.PathLike | None = None, nlsyms: Sequence[str] = ()) -> Tokenizer:
    """A function from transcript to label sequence for ``token_type``.

    Raises:
        ValueError: an unknown token type, or ``bpe`` without a readable ``bpemodel``.
    """
    if token_type == "char":
        return lambda text: char_tokens(text, nlsyms)
    if token_type in ("word", "phn"):
        return lambda text: text.split()
    if token_type != "bpe":
        raise ValueError(f"token_type {token_type!r}: expected one of {', '.join(TOKEN_TYPES)}")
    if bpemodel is None or not Path(bpemodel).is_file():
        raise ValueError(f"bpemodel {bpemodel}: not a file; expected the sentencepiece model for token_type bpe")
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor()
    processor.load(str(bpemodel))
    return lambda text: processor.encode_as_pieces(text)


def ctc_requirement(tokens: Sequence[str]) -> tuple[int, int]:
    """``(labels, repeats)``: CTC needs at least ``labels + repeats`` frames."""
    repeats = sum(1 for a, b in zip(tokens, tokens[1:]) if a == b)
    return len(tokens), repeats


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def removal_reason(
    num_samples: int,
    text: str | None,
    fs: int,
    min_dur: float,
    max_dur: float,
    tokenizer: Tokenizer,
    frames_fn: Callable[[int], int] | None,
) -> str:
    """Why an utterance is removed, or ``""`` to keep it (see the module docstring).
    ``text`` None (untranscribed audio, e.g. for pre-training): duration checks only."""
    duration = num_samples / fs
    if num_samples < math.ceil(min_dur * fs - 1e-6):
        return f"too short: {_seconds(duration)} s < min_dur {min_dur:g} s"
    if num_samples > max_dur * fs + 1e-6:
        return f"too long: {_seconds(duration)} s > max_dur {max_dur:g} s"
    if text is None:
        return ""
    if not text.strip():
        return "empty transcript"
    if frames_fn is None:
        return ""
    labels, repeats = ctc_requirement(tokenizer(text))
    frames = frames_fn(num_samples)
    if frames < labels + repeats:
        return f"CTC-infeasible: {frames} frames < {labels} labels + {repeats} repeats"
    return ""


def read_nlsyms(path: os.PathLike | None) -> list[str]:
    """Non-linguistic symbols, one per line (blank lines ignored)."""
    return kaldi_files.read_id_list(path) if path else []


def _reason_summary(removed: dict[str, str]) -> dict[str, int]:
    """Count removals per kind of reason (the text before the first ':' or the whole reason)."""
    counts: dict[str, int] = {}
    for reason in removed.values():
        kind = reason.split(":")[0]
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def filter_data(
    src: os.PathLike,
    dst: os.PathLike,
    fs: int = 16000,
    min_dur: float = 0.1,
    max_dur: float = 20.0,
    tokenizer: Tokenizer | None = None,
    frames_fn: Callable[[int], int] | None = None,
) -> dict[str, str]:
    """Write the kept utterances of ``src`` to ``dst`` and ``dst/removed.txt``.

    ``frames_fn`` (``num_samples -> CTC frames``, e.g. from
    :func:`espnet_ext.data.frames.frames_from_config`) enables the CTC check; without it the
    check is skipped (and a warning says so). ``tokenizer`` defaults to ``char``.

    Returns:
        The removed utterances: uttid -> reason.

    Raises:
        ValueError: an invalid ``src``, bad bounds, or nothing left.
    """
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise ValueError(f"{dst}: same as the source; expected a different output directory")
    if not 0 <= min_dur <= max_dur or fs <= 0:
        raise ValueError(f"min_dur={min_dur}, max_dur={max_dur}, fs={fs}: expected 0 <= min_dur <= max_dur, fs > 0")
    transcribed = (src / "text").is_file()  # untranscribed dirs (pre-training): duration only
    datadir.validate_data_dir(src, require_text=transcribed)
    data = datadir.load_data_dir(src)
    if "utt2num_samples" not in data.utt_maps:
        raise ValueError(f"{src}/utt2num_samples: missing; expected a dump dir written by stage 3 (format_wav_scp)")
    if frames_fn is None and transcribed:
        logger.warning("CTC feasibility not checked: no ASR config given")
    tokenizer = tokenizer or make_tokenizer("char")
    num_samples, text = data.utt_maps["utt2num_samples"], data.utt_maps.get("text", {})
    removed: dict[str, str] = {}
    for utt in data.utts:
        reason = removal_reason(
            int(num_samples[utt]), text.get(utt) if transcribed else None, fs, min_dur, max_dur, tokenizer, frames_fn
        )
        if reason:
            removed[utt] = reason
    dst.mkdir(parents=True, exist_ok=True)
    removed_path = dst / "removed.txt"
    write_text(removed_path, "".join(f"{u}\t{removed[u]}\n" for u in kaldi_files.sorted_keys(removed)))
    for kind, count in sorted(_reason_summary(removed).items()):
        logger.info("removed %d utterance(s): %s", count, kind)
    keep = [u for u in data.utts if u not in removed]
    if not keep:
        raise ValueError(
            f"{src}: all {len(removed)} utterance(s) removed (see {removed_path}); "
            "expected some to be left (check --min_dur/--max_dur/--fs and the ASR config)"
        )
    datadir.write_data_dir(data.subset(keep), dst)
    logger.info(
        "%s: kept %d of %d utterance(s), removed %d (listed in %s)",
        dst,
        len(keep),
        len(data.utts),
        len(removed),
        removed_path,
    )
    return removed
