"""Running sclite (SCTK) on the same tokens as our scorer, reading its counts back, and
checking that they equal ours.

sclite is run as ``sclite -r ref.trn trn -h hyp.trn trn [title] -i rm -o all stdout``
(``-s`` if case-sensitive), on ``tokens (spk-uttid)`` trn files. Tokens that the trn format
gives a meaning to (``{ / }`` alternatives, ``@``, ``;;``) are plain tokens for our scorer,
so sclite's counts differ where they occur; :func:`check_same_counts` says so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from espnet_ext.scoring.counts import Counts
from espnet_ext.scoring.scorer import Score
from espnet_ext.scoring.tokens import Encoder, TokenPair, prepare

SCLITE_FALLBACK = "/usr/lib/sctk/bin/sclite"  # Debian's sctk package puts it here, off PATH.


class ScliteResult(NamedTuple):
    """What :func:`run_sclite` reads back from sclite: totals (the ``Sum`` row),
    per-utterance counts by our utterance id, and sclite's report (``-o all stdout``)."""

    total: Counts
    utterances: dict[str, Counts]
    report: str


class ScliteMismatch(RuntimeError):
    """sclite's counts differ from :func:`~espnet_ext.scoring.scorer.score`'s."""


def find_sclite() -> str | None:
    """The sclite executable: on PATH, else Debian's ``/usr/lib/sctk/bin/sclite``; or None."""
    found = shutil.which("sclite")
    if found:
        return found
    return SCLITE_FALLBACK if shutil.which(SCLITE_FALLBACK) else None


def sclite_available() -> bool:
    """Whether :func:`find_sclite` finds sclite."""
    return find_sclite() is not None


def _trn_ids(pairs: Sequence[TokenPair]) -> dict[str, str]:
    """``(spk-uttid)`` trn ids, ESPnet's form; sclite folds ids to lower case, so ids
    differing only in case cannot be told apart by it."""
    ids = {p.utt_id: f"{p.speaker}-{p.utt_id}" for p in pairs}
    seen: dict[str, str] = {}
    for utt, trn in ids.items():
        if trn.lower() in seen:
            raise ValueError(
                f"sclite folds utterance ids to lower case: {seen[trn.lower()]!r} and {utt!r} "
                "collide; score without sclite"
            )
        seen[trn.lower()] = utt
    return ids


def write_trn(path, items: Iterable[tuple[str, Sequence[str]]]) -> None:
    """Write ``tokens (trn_id)`` lines."""
    with open(path, "w", encoding="utf-8") as f:
        for trn_id, tokens in items:
            f.write(f"{' '.join(tokens)} ({trn_id})\n")


def _parse_sclite(report: str, trn_to_utt: Mapping[str, str]) -> tuple[Counts, dict[str, Counts]]:
    """Totals from the counts table's ``| Sum |`` row, per-utterance counts from the
    ``id:``/``Scores:`` lines of the alignment dump."""
    total = None
    utterances: dict[str, Counts] = {}
    current = None
    for line in report.splitlines():
        m = re.match(r"\s*\|\s*Sum\s*\|([\d\s]+)\|([\d\s]+)\|\s*$", line)
        if m and total is None:
            n = [int(x) for x in (m.group(1) + m.group(2)).split()]
            total = Counts(n[0], n[1], n[2], n[3], n[4], n[5], n[7])
        m = re.match(r"id: \((.*)\)\s*$", line)
        if m:
            current = trn_to_utt.get(m.group(1).lower())
        m = re.match(r"Scores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)", line)
        if m and current is not None:
            c, s, d, i = map(int, m.groups())
            utterances[current] = Counts(1, c + s + d, c, s, d, i, int(s + d + i > 0))
    if total is None or len(utterances) != len(trn_to_utt):
        raise RuntimeError(
            f"could not read sclite's report: Sum row {'missing' if total is None else 'found'}, "
            f"{len(utterances)} of {len(trn_to_utt)} utterances; its end:\n{report[-2000:]}"
        )
    return total, utterances


def run_sclite(
    refs: Mapping[str, str],
    hyps: Mapping[str, str],
    unit: str,
    out_dir,
    *,
    nlsyms: Iterable[str] = (),
    remove_tokens: Iterable[str] = (),
    utt2spk: Mapping[str, str] | None = None,
    case_sensitive: bool = False,
    title: str | None = None,
    bpe: Encoder | None = None,
) -> ScliteResult:
    """Score with sclite, tokenized as :func:`~espnet_ext.scoring.scorer.score` does.

    Writes ``out_dir/ref.trn`` and ``out_dir/hyp.trn`` (``tokens (spk-uttid)``; a missing
    hypothesis is an empty line), runs ``sclite -r ref.trn trn -h hyp.trn trn [title]
    -i rm -o all stdout`` (plus ``-s`` if case-sensitive) and reads its counts back."""
    exe = find_sclite()
    if exe is None:
        raise ValueError(f"sclite: expected it on PATH or at {SCLITE_FALLBACK}, found neither")
    pairs, _ = prepare(refs, hyps, unit, nlsyms=nlsyms, remove_tokens=remove_tokens, utt2spk=utt2spk, bpe=bpe)
    ids = _trn_ids(pairs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_trn(out_dir / "ref.trn", ((ids[p.utt_id], p.ref) for p in pairs))
    write_trn(out_dir / "hyp.trn", ((ids[p.utt_id], p.hyp) for p in pairs))
    cmd = [exe, "-r", str(out_dir / "ref.trn"), "trn", "-h", str(out_dir / "hyp.trn"), "trn"]
    cmd += [title] if title else []
    cmd += ["-i", "rm", "-o", "all", "stdout"] + (["-s"] if case_sensitive else [])
    proc = subprocess.run(cmd, capture_output=True)
    report = proc.stdout.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", errors="replace")
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{(report + err)[-2000:]}")
    total, utterances = _parse_sclite(report, {trn.lower(): utt for utt, trn in ids.items()})
    return ScliteResult(total, utterances, report)


def check_same_counts(ours: Score, sclite: ScliteResult) -> None:
    """Raise :class:`ScliteMismatch`, with both counts, unless sclite's totals and
    per-utterance counts equal ours."""
    differ = [u for u in ours.utterances if sclite.utterances.get(u.utt_id) != u.counts]
    if ours.total == sclite.total and not differ:
        return
    lines = [
        f"espnet_ext and sclite disagree on {ours.metric}:",
        f"  espnet_ext: {ours.total}",
        f"  sclite:     {sclite.total}",
    ]
    for u in differ[:5]:
        theirs = sclite.utterances.get(u.utt_id)
        lines.append(
            f"  {u.utt_id} (C, S, D, I): espnet_ext {tuple(u.counts[2:6])}, "
            f"sclite {tuple(theirs[2:6]) if theirs else 'none'}"
        )
    lines.append("Tokens special to sclite's trn format ({ / } @ ;;) cause this; score with --sclite no.")
    raise ScliteMismatch("\n".join(lines))
