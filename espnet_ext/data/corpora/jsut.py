"""JSUT 1.1 (Japanese, one female speaker, 48 kHz): download, and Kaldi data dirs.

:func:`download_jsut` first checks ``target_dir`` (:func:`check_jsut`): a complete
``jsut_ver1.1/`` is used as it is, with or without this module's marker (an unzipped copy is
not downloaded again); a partial one is an error naming what is missing, unless
``jsut_ver1.1.zip`` lies beside it (this module's interrupted download, which is resumed).
Otherwise it fetches ``jsut_ver1.1.zip`` from ``base_url``
(``http://ss-takashi.sakura.ne.jp/corpus`` or a ``file://`` folder) into ``target_dir``,
extracts it and writes ``target_dir/.jsut.done`` only after the extraction has completed.

Completeness (:func:`check_jsut`) is judged against each subset's own ``transcript_utf8.txt``,
which comes in the same zip as its audio: every id it lists must have ``wav/<ID>.wav``. Which
subsets must be there depends on what the copy claims to be: one whose ``basic5000``
transcript lists the published 5,000 utterances is the published corpus, so all nine subsets
of :data:`SUBSETS` are required (and with them the published counts, 7,696 utterances); a
smaller copy (the tests' mini corpus: 3 subsets, 75 ``basic5000`` utterances) is checked by the
subsets it has, ``basic5000`` always among them.

:func:`prepare_jsut` reads the corpus as published::

    <corpus_dir>/jsut_ver1.1/<subset>/wav/<ID>.wav             48 kHz, 16-bit
    <corpus_dir>/jsut_ver1.1/<subset>/transcript_utf8.txt      "<ID>:<text>"

(``corpus_dir`` may also be ``jsut_ver1.1`` itself) for every subset of :data:`SUBSETS`, and
writes ``<out_dir>/{tr_no_dev,dev,eval1}/{wav.scp,text,utt2spk,spk2utt,excluded.txt}``.
The splits follow ESPnet's ``egs2/jsut/asr1``: the ``basic5000`` ids sorted, the first
``num_eval`` (250) are ``eval1``, the next ``num_dev`` (250) ``dev``, and the remaining
``basic5000`` utterances plus every other subset ``tr_no_dev``. The split sizes are options so
that a small copy (the tests' mini corpus has 75 ``basic5000`` utterances) can be split too.
The audio stays at 48 kHz here; stage 3 of the recipe resamples it to 16 kHz.

Preparing, a missing subset is listed in a warning (``basic5000`` missing is an error; the
check above refuses a copy of the published corpus without all nine); a subset whose
``transcript_utf8.txt`` is missing has its utterances left out and listed; so are audio files
without a transcript line and transcript lines without audio (``excluded.txt``). Counts that
differ from the published ones (:data:`SUBSETS`) are warnings. Transcripts are kept as written
(full-width punctuation included), as ESPnet's recipe does; the speaker is ``JSUT``.

Command line (what ``egs2/jsut/asr1/local/data.sh`` runs)::

    python -m espnet_ext.bin.corpus jsut download TARGET_DIR [--base_url URL] [--remove_archive]
    python -m espnet_ext.bin.corpus jsut prepare CORPUS_DIR OUT_DIR [--num_dev 250] [--num_eval 250] \\
        [--require_complete]

(``--require_complete``: stop unless :func:`check_jsut` finds the copy complete; what
``local/data.sh --download false`` runs.)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from espnet_ext.data.corpora.splits import Utterance, join_transcripts, log_listing, write_split
from espnet_ext.data.download import LocalCopy, fetch_and_extract, listing, needs_download

logger = logging.getLogger(__name__)

BASE_URL = "http://ss-takashi.sakura.ne.jp/corpus"
ARCHIVE = "jsut_ver1.1.zip"
DONE_MARKER = ".jsut.done"
ROOT_NAME = "jsut_ver1.1"
#: subset -> utterances in JSUT 1.1 (7,696 in all)
SUBSETS = {
    "basic5000": 5000,
    "countersuffix26": 26,
    "loanword128": 128,
    "onomatopee300": 300,
    "precedent130": 130,
    "repeat500": 500,
    "travel1000": 1000,
    "utparaphrase512": 512,
    "voiceactress100": 100,
}
SPLIT_NAMES = ("tr_no_dev", "dev", "eval1")
NUM_DEV = 250  # basic5000 utterances in dev (ESPnet's egs2/jsut/asr1)
NUM_EVAL = 250  # basic5000 utterances in eval1
SPEAKER = "JSUT"


class Subset(NamedTuple):
    """One subset's utterances and the ids left out (with the reason)."""

    utts: list[Utterance]
    excluded: dict[str, str]


def download_jsut(target_dir, base_url: str = BASE_URL, remove_archive: bool = False) -> Path:
    """Download and extract ``jsut_ver1.1.zip`` into ``target_dir``; return its ``jsut_ver1.1``.

    Skipped when ``target_dir/.jsut.done`` exists or :func:`check_jsut` finds a complete copy
    there; a partial copy raises ValueError (see :func:`espnet_ext.data.download.needs_download`).
    """
    target_dir = Path(target_dir)
    if not (target_dir / DONE_MARKER).exists():
        copy = check_jsut(target_dir)
        if not needs_download(copy, [target_dir / ARCHIVE]):
            return copy.where
    fetch_and_extract(
        f"{base_url.rstrip('/')}/{ARCHIVE}", target_dir, done_marker=DONE_MARKER, remove_archive=remove_archive
    )
    return target_dir / ROOT_NAME


def _subset_gaps(root: Path, name: str) -> list[str]:
    """What subset ``name`` lacks: its directory, its transcript, or wav files its transcript lists."""
    subset_dir = root / name
    transcript = subset_dir / "transcript_utf8.txt"
    if not subset_dir.is_dir():
        return [f"{name}/"]
    if not transcript.is_file():
        return [f"{name}/transcript_utf8.txt"]
    listed = read_transcript(transcript)
    wav_dir = subset_dir / "wav"
    have = {p.stem for p in wav_dir.iterdir() if p.suffix.lower() == ".wav"} if wav_dir.is_dir() else set()
    lacking = sorted(listed.keys() - have)
    if not lacking:
        return []
    return [
        f"{name}/wav/: {len(lacking)} of the {len(listed)} files listed in {name}/transcript_utf8.txt "
        f"({listing(u + '.wav' for u in lacking)})"
    ]


def check_jsut(corpus_dir) -> LocalCopy:
    """What of JSUT 1.1 is in ``corpus_dir`` (the directory holding ``jsut_ver1.1/``, or that
    directory itself); see the module docstring for what complete means.

    ``found`` is False when no subset directory is there.
    """
    corpus_dir = Path(corpus_dir)
    root = next((r for r in (corpus_dir / ROOT_NAME, corpus_dir) if any((r / n).is_dir() for n in SUBSETS)), None)
    if root is None:
        return LocalCopy("JSUT 1.1", corpus_dir / ROOT_NAME, found=False)
    basic = root / "basic5000" / "transcript_utf8.txt"
    published = basic.is_file() and len(read_transcript(basic)) >= SUBSETS["basic5000"]
    needed = [n for n in SUBSETS if published or n == "basic5000" or (root / n).is_dir()]
    missing = [gap for name in needed for gap in _subset_gaps(root, name)]
    summary = f"{len(needed)} subsets" + (", the published corpus" if published else f" of {len(SUBSETS)}")
    return LocalCopy(
        "JSUT 1.1",
        root,
        found=True,
        missing=tuple(missing),
        summary=summary,
        fix=f"unzip {ARCHIVE} into {root.parent} again (every subset's wav/ and transcript_utf8.txt)",
    )


def find_root(corpus_dir) -> Path:
    """``corpus_dir/jsut_ver1.1`` (or ``corpus_dir`` when it holds the subsets itself)."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise ValueError(
            f"{corpus_dir}: JSUT corpus directory not found; expected the directory holding "
            f"{ROOT_NAME}/ (JSUT in db.sh)"
        )
    for root in (corpus_dir / ROOT_NAME, corpus_dir):
        if (root / "basic5000").is_dir():
            return root
    raise ValueError(
        f"{corpus_dir}: no {ROOT_NAME}/basic5000 here; expected {corpus_dir}/{ROOT_NAME}/"
        "basic5000/{wav/*.wav,transcript_utf8.txt} (download it with local/data.sh --download true)"
    )


def read_transcript(path: Path) -> dict[str, str]:
    """``ID -> text`` from ``<ID>:<text>`` lines (split at the first colon)."""
    texts: dict[str, str] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8").strip()
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not UTF-8 ({err}); expected '<ID>:<text>'") from None
            if not line:
                continue
            utt_id, sep, text = line.partition(":")
            if not sep or not utt_id or any(c.isspace() for c in utt_id):
                raise ValueError(f"{path}:{lineno}: expected '<ID>:<text>', found {line[:60]!r}")
            if utt_id in texts:
                raise ValueError(f"{path}:{lineno}: utterance {utt_id} appears twice; expected unique ids")
            texts[utt_id] = text.strip()
    return texts


def read_subset(root: Path, name: str) -> Subset:
    """The utterances of ``root/name`` (wav files joined with ``transcript_utf8.txt``)."""
    subset_dir = root / name
    wavs = {p.stem: p for p in sorted((subset_dir / "wav").glob("*")) if p.suffix.lower() == ".wav"}
    transcript = subset_dir / "transcript_utf8.txt"
    if not transcript.is_file():
        if name == "basic5000":
            raise ValueError(f"{transcript}: not found; expected '<ID>:<text>' lines for {name}")
        logger.warning("%s: not found; the %d utterances of %s are left out", transcript, len(wavs), name)
        return Subset([], {u: f"no {transcript}" for u in wavs})
    texts = read_transcript(transcript)
    utts, excluded = join_transcripts(((u, SPEAKER, p) for u, p in wavs.items()), texts, transcript)
    for utt_id in texts.keys() - wavs.keys():
        excluded[utt_id] = f"no audio file {subset_dir / 'wav' / (utt_id + '.wav')} (listed in {transcript})"
    expected = SUBSETS[name]
    if len(wavs) != expected:
        logger.warning("%s: %d wav files, expected %d in JSUT 1.1", subset_dir, len(wavs), expected)
    return Subset(utts, excluded)


def split_basic5000(utts: Sequence[Utterance], num_dev: int, num_eval: int) -> dict[str, list[Utterance]]:
    """eval1: the first ``num_eval`` sorted ids; dev: the next ``num_dev``; tr_no_dev: the rest."""
    if num_dev < 1 or num_eval < 1:
        raise ValueError(f"num_dev and num_eval: expected positive numbers, found {num_dev} and {num_eval}")
    if num_dev + num_eval >= len(utts):
        raise ValueError(
            f"basic5000 has {len(utts)} usable utterances; --num_eval {num_eval} plus --num_dev "
            f"{num_dev} must leave some for training (pass smaller split sizes for a small copy)"
        )
    ordered = sorted(utts, key=lambda u: u.utt_id)
    return {
        "eval1": ordered[:num_eval],
        "dev": ordered[num_eval : num_eval + num_dev],
        "tr_no_dev": ordered[num_eval + num_dev :],
    }


def prepare_jsut(
    corpus_dir, out_dir, num_dev: int = NUM_DEV, num_eval: int = NUM_EVAL, require_complete: bool = False
) -> dict[str, int]:
    """Write ``out_dir/{tr_no_dev,dev,eval1}``; return the utterances per split.

    With ``require_complete``, first stop unless :func:`check_jsut` finds the copy complete.

    Raises:
        ValueError: a missing corpus directory or basic5000 transcript, split sizes too large;
            with ``require_complete``, anything :func:`check_jsut` finds missing.
    """
    if require_complete:
        needs_download(check_jsut(corpus_dir), download=False)
    root = find_root(corpus_dir)
    missing = [name for name in SUBSETS if not (root / name).is_dir()]
    if missing:
        log_listing(f"{root}: {len(missing)} of the {len(SUBSETS)} JSUT subsets are missing", missing, log=logger)
    subsets = {name: read_subset(root, name) for name in SUBSETS if name not in missing}
    splits = split_basic5000(subsets["basic5000"].utts, num_dev, num_eval)
    excluded = {"tr_no_dev": {}, "dev": {}, "eval1": {}}
    for name, subset in subsets.items():
        excluded["tr_no_dev"].update(subset.excluded)  # any subset's left-out ids: listed once, with train
        if name != "basic5000":
            splits["tr_no_dev"].extend(subset.utts)
    logger.info("%s: %s", root, ", ".join(f"{n} {len(s.utts)}" for n, s in subsets.items()))
    counts = {}
    for split in SPLIT_NAMES:
        counts[split] = write_split(Path(out_dir) / split, splits[split], excluded[split])
    return counts
