"""AISHELL-1 (openslr.org resource 33): download, and Kaldi data dirs train/dev/test.

:func:`download_aishell` first checks ``target_dir`` (:func:`check_aishell`): a complete
``data_aishell/`` is used as it is, with or without this module's marker (a copy extracted by
hand, as in ESPnet's recipe, is not downloaded again); a partial one is an error naming what is
missing, unless ``data_aishell.tgz`` lies beside it (this module's interrupted download, which
is resumed). Otherwise it fetches ``data_aishell.tgz`` and ``resource_aishell.tgz`` from
``base_url`` (``https://www.openslr.org/resources/33`` or a mirror, or a ``file://`` folder)
into ``target_dir`` (resuming partial downloads, see :mod:`espnet_ext.data.download`),
extracts both, then extracts every per-speaker tarball ``data_aishell/wav/<SPK>.tar.gz``
(each holds ``<split>/<SPK>/*.wav``) into ``data_aishell/wav`` and deletes it. Only then is
``target_dir/.aishell.done`` written: an interrupted run redoes the extraction next time (the
outer archive brings the per-speaker tarballs back), a finished one is skipped.
``resource_aishell/`` (the lexicon) is fetched with a download but not required of a local
copy: the recipe does not read it.

Completeness (:func:`check_aishell`) is judged against the copy's own transcript, which comes in
the same archive as the audio: every speaker it names (``BAC009<SPK>W<nnnn>``) must have a
``wav/<split>/<SPK>/`` directory holding ``.wav`` files, and the transcript must be there. For the
published corpus that is its 400 speakers (340 train, 40 dev, 20 test), and a copy whose
transcript names all 400 claims to be the published corpus, so its wav count must also reach the
published 141,925 (:data:`EXPECTED_WAVS`; fewer means a speaker tarball was extracted only in
part). A smaller copy (the tests' mini corpus) names its own speakers and is checked by them;
the published counts are not asserted of it.

:func:`prepare_aishell` reads the corpus as published::

    <corpus_dir>/data_aishell/wav/{train,dev,test}/<SPK>/<UTT>.wav     16 kHz, 16-bit
    <corpus_dir>/data_aishell/transcript/aishell_transcript_v0.8.txt   "<UTT> word word ..."

(``corpus_dir`` may also be ``data_aishell`` itself) and writes
``<out_dir>/{train,dev,test}/{wav.scp,text,utt2spk,spk2utt,excluded.txt}``: the split is the
corpus's own ``wav/<split>`` directory, the speaker its ``<SPK>`` directory, the text the
transcript's words joined without spaces (the recipe uses character tokens). Utterances with
audio but no transcript line (the real corpus has a few hundred) or an empty one are left out
and listed in ``excluded.txt`` with the reason. A wav count other than the corpus's 141,925 is
a warning here, not an error (the mini corpus of the tests); the check above refuses a copy of
the published corpus with fewer.

Command line (what ``egs2/aishell/asr1/local/data.sh`` runs)::

    python -m espnet_ext.bin.corpus aishell download TARGET_DIR [--base_url URL] [--remove_archive]
    python -m espnet_ext.bin.corpus aishell prepare CORPUS_DIR OUT_DIR [--require_complete]

(``--require_complete``: stop unless :func:`check_aishell` finds the copy complete; what
``local/data.sh --download false`` runs.)
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

from espnet_ext.data.corpora.splits import join_transcripts, log_listing, write_split
from espnet_ext.data.download import LocalCopy, extract, fetch, listing, needs_download

logger = logging.getLogger(__name__)

BASE_URL = "https://www.openslr.org/resources/33"
ARCHIVES = ("data_aishell.tgz", "resource_aishell.tgz")
DONE_MARKER = ".aishell.done"
SPLITS = ("train", "dev", "test")
TRANSCRIPT = Path("transcript") / "aishell_transcript_v0.8.txt"
EXPECTED_WAVS = 141_925  # wav files in the published corpus (ESPnet's and Kaldi's recipes check it too)
PUBLISHED_SPEAKERS = 400  # speakers in the published transcript: 340 train, 40 dev, 20 test
_UTT_RE = re.compile(r"BAC009(S\d{4})W\d{4}")  # an utterance id; group 1 is the speaker
LOG_INTERVAL_S = 30.0  # seconds between progress lines of the per-speaker extraction


def download_aishell(target_dir, base_url: str = BASE_URL, remove_archive: bool = False) -> Path:
    """Download and fully extract AISHELL-1 into ``target_dir``; return its ``data_aishell``.

    Skipped when ``target_dir/.aishell.done`` exists or :func:`check_aishell` finds a complete
    copy there; a partial copy raises ValueError (see :func:`espnet_ext.data.download.needs_download`).
    With ``remove_archive`` the two archives are deleted once everything is extracted.
    """
    target_dir = Path(target_dir)
    marker = target_dir / DONE_MARKER
    if marker.exists():
        logger.info("%s exists: AISHELL-1 already downloaded and extracted", marker)
        return target_dir / "data_aishell"
    copy = check_aishell(target_dir)
    if not needs_download(copy, [target_dir / ARCHIVES[0]]):
        return copy.where
    target_dir.mkdir(parents=True, exist_ok=True)
    archives = [fetch(f"{base_url.rstrip('/')}/{name}", target_dir / name) for name in ARCHIVES]
    for archive in archives:
        extract(archive, target_dir)
    extract_speaker_tarballs(target_dir / "data_aishell" / "wav")
    if remove_archive:
        for archive in archives:
            archive.unlink()
    marker.write_text(f"{base_url}\n", encoding="utf-8")
    logger.info("AISHELL-1 is in %s (marker %s)", target_dir / "data_aishell", marker)
    return target_dir / "data_aishell"


def extract_speaker_tarballs(wav_dir: Path) -> int:
    """Extract each ``wav_dir/*.tar.gz`` into ``wav_dir`` and delete it; return how many."""
    tarballs = sorted(wav_dir.glob("*.tar.gz"))
    if not tarballs and not any((wav_dir / split).is_dir() for split in SPLITS):
        raise ValueError(
            f"{wav_dir}: expected per-speaker tarballs <SPK>.tar.gz or {'/'.join(SPLITS)} "
            "directories; found neither (is this data_aishell.tgz from openslr.org/33?)"
        )
    last = time.monotonic()
    for i, tarball in enumerate(tarballs, 1):
        extract(tarball, wav_dir, log_interval=LOG_INTERVAL_S)
        tarball.unlink()
        if time.monotonic() - last >= LOG_INTERVAL_S or i == len(tarballs):
            last = time.monotonic()
            logger.info("%s: extracted %d / %d speaker tarballs", wav_dir, i, len(tarballs))
    return len(tarballs)


def _wav_names(directory: Path) -> list[str]:
    """Names of the ``.wav`` files (any case) directly in ``directory``."""
    with os.scandir(directory) as entries:
        return [e.name for e in entries if e.name.lower().endswith(".wav") and e.is_file()]


def _speaker_dirs(wav_dir: Path) -> dict[str, int]:
    """``SPK -> wav files`` for every ``wav_dir/<split>/<SPK>/`` holding at least one."""
    found: dict[str, int] = {}
    for split in SPLITS:
        if (wav_dir / split).is_dir():
            for spk_dir in (p for p in (wav_dir / split).iterdir() if p.is_dir()):
                count = len(_wav_names(spk_dir))
                if count:
                    found[spk_dir.name] = found.get(spk_dir.name, 0) + count
    return found


def _missing_speakers(wav_dir: Path, named: Sequence[str], found: dict[str, int]) -> list[str]:
    """The speakers of ``named`` without audio, each marked when its tarball lies unextracted."""
    return [
        spk + (f" ({spk}.tar.gz not extracted)" if (wav_dir / f"{spk}.tar.gz").is_file() else "")
        for spk in named
        if spk not in found
    ]


def check_aishell(corpus_dir) -> LocalCopy:
    """What of AISHELL-1 is in ``corpus_dir`` (the directory holding ``data_aishell/``, or that
    directory itself); see the module docstring for what complete means.

    ``found`` is False when there is no ``data_aishell/`` with a ``wav/`` or ``transcript/`` in it.
    A malformed transcript raises ValueError naming the file and line (as :func:`prepare_aishell`).
    """
    try:
        root = find_root(corpus_dir)
    except ValueError:
        return LocalCopy("AISHELL-1", Path(corpus_dir) / "data_aishell", found=False)
    wav_dir, missing = root / "wav", []
    missing += [f"wav/{split}/" for split in SPLITS if not (wav_dir / split).is_dir()]
    if not (root / TRANSCRIPT).is_file():
        missing.append(f"{TRANSCRIPT.as_posix()} (the transcript, which lists the speakers)")
        named: list[str] = []
    else:
        named = sorted({m.group(1) for m in map(_UTT_RE.fullmatch, read_transcript(root / TRANSCRIPT)) if m})
    found = _speaker_dirs(wav_dir)
    absent = _missing_speakers(wav_dir, named, found)
    if absent:
        missing.append(
            f"wav/<split>/<SPK>/ with .wav files for {len(absent)} of the {len(named)} speakers in "
            f"{TRANSCRIPT.name}: {listing(absent)}"
        )
    wavs = sum(found.values())
    if len(named) >= PUBLISHED_SPEAKERS and wavs < EXPECTED_WAVS:
        missing.append(
            f"wav files: {wavs:,} found, the published corpus (whose {len(named)} speakers the "
            f"transcript names) has {EXPECTED_WAVS:,}: some speaker tarballs were extracted only in part"
        )
    fix = (
        f'extract every per-speaker tarball in {wav_dir} there (for f in *.tar.gz; do tar xzf "$f"; done) '
        f"and keep {TRANSCRIPT.as_posix()} from data_aishell.tgz"
    )
    return LocalCopy(
        "AISHELL-1",
        root,
        found=True,
        missing=tuple(missing),
        fix=fix,
        summary=f"{len(found)} speakers, {wavs:,} wav files",
    )


def find_root(corpus_dir) -> Path:
    """``corpus_dir/data_aishell`` (or ``corpus_dir`` itself when it is that directory)."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise ValueError(
            f"{corpus_dir}: AISHELL-1 corpus directory not found; expected the directory "
            "holding data_aishell/ (AISHELL in db.sh)"
        )
    for root in (corpus_dir / "data_aishell", corpus_dir):
        if (root / "wav").is_dir() or (root / "transcript").is_dir():
            return root
    raise ValueError(
        f"{corpus_dir}: no data_aishell/ here; expected {corpus_dir}/data_aishell/wav and "
        f"{corpus_dir}/data_aishell/{TRANSCRIPT} (download it with local/data.sh --download true)"
    )


def read_transcript(path: Path) -> dict[str, str]:
    """``UTT -> text`` with the words joined (spaces removed); an id alone maps to ``""``."""
    if not path.is_file():
        raise ValueError(f"{path}: AISHELL-1 transcript not found; expected data_aishell/{TRANSCRIPT}")
    texts: dict[str, str] = {}
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                fields = raw.decode("utf-8").split()
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}:{lineno}: not UTF-8 ({err}); expected '<UTT> word word ...'") from None
            if not fields:
                continue
            if fields[0] in texts:
                raise ValueError(f"{path}:{lineno}: utterance {fields[0]} appears twice; expected unique ids")
            texts[fields[0]] = "".join(fields[1:])
    if not texts:
        raise ValueError(f"{path}: empty transcript; expected '<UTT> word word ...' lines")
    return texts


def find_wavs(wav_dir: Path) -> dict[str, list[tuple[str, str, Path]]]:
    """``split -> [(utt, speaker, path)]`` from ``wav_dir/<split>/<SPK>/<UTT>.wav`` (any case)."""
    leftover = sorted(p.name for p in wav_dir.glob("*.tar.gz")) if wav_dir.is_dir() else []
    found: dict[str, list[tuple[str, str, Path]]] = {}
    for split in SPLITS:
        split_dir = wav_dir / split
        if not split_dir.is_dir():
            hint = (
                f"; {len(leftover)} per-speaker tarballs ({leftover[0]}, ...) are not extracted: "
                "run local/data.sh --download true, or extract them there"
                if leftover
                else ""
            )
            raise ValueError(f"{split_dir}: not found; expected data_aishell/wav/{split}/<SPK>/<UTT>.wav{hint}")
        paths = sorted(p for p in split_dir.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
        found[split] = [(p.stem, p.parent.name, p) for p in paths]
    return found


def prepare_aishell(corpus_dir, out_dir, require_complete: bool = False) -> dict[str, int]:
    """Write ``out_dir/{train,dev,test}`` from the corpus; return the utterances per split.

    With ``require_complete``, first stop unless :func:`check_aishell` finds the copy complete.

    Raises:
        ValueError: a missing corpus directory, transcript or split directory, naming it; with
            ``require_complete``, anything :func:`check_aishell` finds missing.
    """
    if require_complete:
        needs_download(check_aishell(corpus_dir), download=False)
    root = find_root(corpus_dir)
    transcript = root / TRANSCRIPT
    texts = read_transcript(transcript)
    wavs = find_wavs(root / "wav")
    total = sum(len(v) for v in wavs.values())
    logger.info(
        "%s: %d wav files (%s), %d transcript lines",
        root,
        total,
        ", ".join(f"{s} {len(v)}" for s, v in wavs.items()),
        len(texts),
    )
    if total != EXPECTED_WAVS:
        logger.warning(
            "%s: found %d wav files, expected %s in the full AISHELL-1 corpus (a partial or modified copy?)",
            root / "wav",
            total,
            f"{EXPECTED_WAVS:,}",
        )
    counts = {}
    for split in SPLITS:
        utts, excluded = join_transcripts(wavs[split], texts, transcript)
        if excluded:
            log_listing(
                f"{split}: {len(excluded)} utterances left out",
                (f"{u} ({r})" for u, r in excluded.items()),
                limit=3,
                log=logger,
            )
        counts[split] = write_split(Path(out_dir) / split, utts, excluded)
    no_audio = texts.keys() - {utt for split in wavs.values() for utt, _, _ in split}
    if no_audio:
        logger.info("%d transcript lines have no audio file (not utterances of this copy)", len(no_audio))
    return counts
