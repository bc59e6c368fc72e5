"""The utterances of a test set left out before decoding (excluded in stage 3, removed in
stage 4), with their reasons: ``left_out.txt`` beside ``result.txt``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from espnet_ext.core.atomic import write_text
from espnet_ext.scoring.textio import preview, read_lines

LEFT_OUT = "left_out.txt"  # beside result.txt: the test set's utterances not decoded (uttid<TAB>reason)


def left_out(source: Iterable[str], scored: Mapping[str, str], reason_files: Iterable = ()) -> dict[str, str]:
    """The utterances of ``source`` (ids of a test set as prepared, ``data/<set>/text``)
    missing from ``scored`` (the references of what was decoded, ``dump/raw/<set>/text``),
    each with its reason from the first of ``reason_files`` (``uttid<TAB>reason``: stage 3's
    ``excluded.txt``, stage 4's ``removed.txt``; absent files are skipped) that lists it,
    else "not in the decoded set". A scored utterance missing from ``source`` raises ValueError."""
    source = list(source)
    known = set(source)
    unknown = [u for u in scored if u not in known]
    if unknown:
        raise ValueError(f"{len(unknown)} decoded utterances are not in the source set: {preview(unknown)}")
    reasons: dict[str, str] = {}
    for path in reason_files:
        if Path(path).is_file():
            for _, line in read_lines(path):
                utt, _, reason = line.partition("\t")
                reasons.setdefault(utt.strip(), reason.strip() or "no reason given")
    return {u: reasons.get(u, "not in the decoded set") for u in source if u not in scored}


def write_left_out(items: Mapping[str, str], path) -> Path:
    """Write ``uttid<TAB>reason`` lines (possibly none) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "".join(f"{u}\t{r}\n" for u, r in items.items()))
    return path
