"""AISHELL-1 (openslr.org resource 33): download, and Kaldi data dirs train/dev/test.

:func:`download_aishell` fetches ``data_aishell.tgz`` and ``resource_aishell.tgz`` from
``base_url`` (``https://www.openslr.org/resources/33`` or a mirror, or a ``file://`` folder)
into ``target_dir`` (resuming partial downloads, see :mod:`espnet_ext.data.download`),
extracts both, then extracts every per-speaker tarball ``data_aishell/wav/<SPK>.tar.gz``
(each holds ``<split>/<SPK>/*.wav``) into ``data_aishell/wav`` and deletes it. Only then is
``target_dir/.aishell.done`` written: an interrupted run redoes the extraction next time (the
outer archive brings the per-speaker tarballs back), a finished one is skipped.

:func:`prepare_aishell` reads the corpus as published::

    <corpus_dir>/data_aishell/wav/{train,dev,test}/<SPK>/<UTT>.wav     16 kHz, 16-bit
    <corpus_dir>/data_aishell/transcript/aishell_transcript_v0.8.txt   "<UTT> word word ..."

(``corpus_dir`` may also be ``data_aishell`` itself) and writes
``<out_dir>/{train,dev,test}/{wav.scp,text,utt2spk,spk2utt,excluded.txt}``: the split is the
corpus's own ``wav/<split>`` directory, the speaker its ``<SPK>`` directory, the text the
transcript's words joined without spaces (the recipe uses character tokens). Utterances with
audio but no transcript line (the real corpus has a few hundred) or an empty one are left out
and listed in ``excluded.txt`` with the reason. A wav count other than the corpus's 141,925 is
a warning, not an error (a partial copy, or the mini corpus of the tests).

Command line (what ``egs2/aishell/asr1/local/data.sh`` runs)::

    python -m espnet_ext.data.corpora.aishell download TARGET_DIR [--base_url URL] [--remove_archive]
    python -m espnet_ext.data.corpora.aishell prepare CORPUS_DIR OUT_DIR
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_ext.data.corpora.splits import corpus_parser, join_transcripts, log_listing, run_cli, write_split
from espnet_ext.data.download import extract, fetch

logger = logging.getLogger(__name__)

BASE_URL = "https://www.openslr.org/resources/33"
ARCHIVES = ("data_aishell.tgz", "resource_aishell.tgz")
DONE_MARKER = ".aishell.done"
SPLITS = ("train", "dev", "test")
TRANSCRIPT = Path("transcript") / "aishell_transcript_v0.8.txt"
EXPECTED_WAVS = 141_925  # wav files in the published corpus (ESPnet's and Kaldi's recipes check it too)
LOG_INTERVAL_S = 30.0  # seconds between progress lines of the per-speaker extraction


def download_aishell(target_dir, base_url: str = BASE_URL, remove_archive: bool = False) -> Path:
    """Download and fully extract AISHELL-1 into ``target_dir``; return ``target_dir/data_aishell``.

    Skipped when ``target_dir/.aishell.done`` exists. With ``remove_archive`` the two archives
    are deleted once everything is extracted.
    """
    target_dir = Path(target_dir)
    marker = target_dir / DONE_MARKER
    if marker.exists():
        logger.info("%s exists: AISHELL-1 already downloaded and extracted", marker)
        return target_dir / "data_aishell"
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
        raise ValueError(f"{wav_dir}: expected per-speaker tarballs <SPK>.tar.gz or {'/'.join(SPLITS)} "
                         "directories; found neither (is this data_aishell.tgz from openslr.org/33?)")
    last = time.monotonic()
    for i, tarball in enumerate(tarballs, 1):
        extract(tarball, wav_dir, log_interval=LOG_INTERVAL_S)
        tarball.unlink()
        if time.monotonic() - last >= LOG_INTERVAL_S or i == len(tarballs):
            last = time.monotonic()
            logger.info("%s: extracted %d / %d speaker tarballs", wav_dir, i, len(tarballs))
    return len(tarballs)


def find_root(corpus_dir) -> Path:
    """``corpus_dir/data_aishell`` (or ``corpus_dir`` itself when it is that directory)."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise ValueError(f"{corpus_dir}: AISHELL-1 corpus directory not found; expected the directory "
                         "holding data_aishell/ (AISHELL in db.sh)")
    for root in (corpus_dir / "data_aishell", corpus_dir):
        if (root / "wav").is_dir() or (root / "transcript").is_dir():
            return root
    raise ValueError(f"{corpus_dir}: no data_aishell/ here; expected {corpus_dir}/data_aishell/wav and "
                     f"{corpus_dir}/data_aishell/{TRANSCRIPT} (download it with local/data.sh --download true)")


def read_transcript(path: Path) -> Dict[str, str]:
    """``UTT -> text`` with the words joined (spaces removed); an id alone maps to ``""``."""
    if not path.is_file():
        raise ValueError(f"{path}: AISHELL-1 transcript not found; expected data_aishell/{TRANSCRIPT}")
    texts: Dict[str, str] = {}
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


def find_wavs(wav_dir: Path) -> Dict[str, List[Tuple[str, str, Path]]]:
    """``split -> [(utt, speaker, path)]`` from ``wav_dir/<split>/<SPK>/<UTT>.wav`` (any case)."""
    leftover = sorted(p.name for p in wav_dir.glob("*.tar.gz")) if wav_dir.is_dir() else []
    found: Dict[str, List[Tuple[str, str, Path]]] = {}
    for split in SPLITS:
        split_dir = wav_dir / split
        if not split_dir.is_dir():
            hint = (f"; {len(leftover)} per-speaker tarballs ({leftover[0]}, ...) are not extracted: "
                    "run local/data.sh --download true, or extract them there" if leftover else "")
            raise ValueError(f"{split_dir}: not found; expected data_aishell/wav/{split}/<SPK>/<UTT>.wav{hint}")
        paths = sorted(p for p in split_dir.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
        found[split] = [(p.stem, p.parent.name, p) for p in paths]
    return found


def prepare_aishell(corpus_dir, out_dir) -> Dict[str, int]:
    """Write ``out_dir/{train,dev,test}`` from the corpus; return the utterances per split.

    Raises:
        ValueError: a missing corpus directory, transcript or split directory, naming it.
    """
    root = find_root(corpus_dir)
    transcript = root / TRANSCRIPT
    texts = read_transcript(transcript)
    wavs = find_wavs(root / "wav")
    total = sum(len(v) for v in wavs.values())
    logger.info("%s: %d wav files (%s), %d transcript lines", root, total,
                ", ".join(f"{s} {len(v)}" for s, v in wavs.items()), len(texts))
    if total != EXPECTED_WAVS:
        logger.warning("%s: found %d wav files, expected %s in the full AISHELL-1 corpus "
                       "(a partial or modified copy?)", root / "wav", total, f"{EXPECTED_WAVS:,}")
    counts = {}
    for split in SPLITS:
        utts, excluded = join_transcripts(wavs[split], texts, transcript)
        if excluded:
            log_listing(f"{split}: {len(excluded)} utterances left out",
                        (f"{u} ({r})" for u, r in excluded.items()), limit=3, log=logger)
        counts[split] = write_split(Path(out_dir) / split, utts, excluded)
    no_audio = texts.keys() - {utt for split in wavs.values() for utt, _, _ in split}
    if no_audio:
        logger.info("%d transcript lines have no audio file (not utterances of this copy)", len(no_audio))
    return counts


def get_parser() -> argparse.ArgumentParser:
    """The command-line parser: ``download`` and ``prepare`` sub-commands."""
    parser, _ = corpus_parser("espnet_ext.data.corpora.aishell", __doc__, " and ".join(ARCHIVES), BASE_URL,
                              "data_aishell/", "/".join(SPLITS))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m espnet_ext.data.corpora.aishell``."""
    args = get_parser().parse_args(argv)
    if args.command == "download":
        return run_cli(lambda: download_aishell(args.target_dir, args.base_url, args.remove_archive))
    return run_cli(lambda: prepare_aishell(args.corpus_dir, args.out_dir))


if __name__ == "__main__":
    raise SystemExit(main())
