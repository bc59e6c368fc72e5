"""LibriSpeech (openslr.org resource 12): download the parts and write Kaldi data dirs.

What it reads, the corpus as distributed (``<part>.tar.gz`` extracted)::

    <corpus>/LibriSpeech/<part>/<reader>/<chapter>/<reader>-<chapter>-<nnnn>.flac
    <corpus>/LibriSpeech/<part>/<reader>/<chapter>/<reader>-<chapter>.trans.txt   ("<id> UPPER CASE TEXT")

(``<corpus>`` may also be the ``LibriSpeech`` directory itself.) What it writes, per part, into
``<out>/<part with underscores>/`` (``train-clean-100`` -> ``train_clean_100``):

``wav.scp``      ``<id> <absolute path of the .flac>`` (stage 3 decodes FLAC directly)
``text``         ``<id> <transcript>``, upper case as distributed
``utt2spk``      ``<id> <reader>-<chapter>`` (Kaldi's convention: one "speaker" per chapter)
``spk2utt``      derived from ``utt2spk``
``excluded.txt`` ``<id><TAB><reason>`` for every utterance left out (possibly empty): a .flac
                 without transcript line or transcript file, a transcript line without .flac,
                 an empty (0-byte) .flac. Undecodable audio is found and listed by stage 3.

A missing or empty part directory, a malformed or non-UTF-8 transcript line, a duplicate id
and a corpus path with white space (wav.scp cannot hold it) raise ValueError naming the file
(and line). A part whose utterance count differs from the published one
(:data:`EXPECTED_UTTERANCES`) is logged as a warning. The data dirs are written by
:class:`espnet_ext.data.datadir.SortedDataDirWriter`, chapter by chapter.

Download (:func:`download_librispeech`): each part is first checked (:func:`check_part`). A
part found complete is used as it is, with or without a marker (a corpus extracted by hand is
not downloaded again); a part that is not there is downloaded, and only those; a partial part is
an error naming what it lacks, unless ``<target>/<part>.tar.gz`` (or its ``.part``) lies there,
i.e. this module's interrupted download, which is resumed. All parts are checked before anything
is fetched. A download fetches ``<base_url>/<part>.tar.gz`` into ``<target>``, checks it against
openslr's md5 (:data:`MD5`) and extracts it into ``<target>/LibriSpeech/<part>``;
``<target>/LibriSpeech/<part>/.complete`` (Kaldi's marker) is written only after the
extraction has finished, and a part that has it counts as complete without a look inside.

Completeness is judged against the copy's own ``CHAPTERS.TXT`` (in every part's archive; it
lists each chapter with its part): every chapter it lists for the part must have its
``<reader>/<chapter>/`` directory, and in every chapter directory the ``.trans.txt`` must be
there with a ``.flac`` for each line. For the published corpus that is the real chapter list of
each part (and so its published utterance count); the tests' mini corpus writes its own
``CHAPTERS.TXT`` and is checked by it. A copy without ``CHAPTERS.TXT``, or a part it lists no
chapter for, makes no claim about which chapters the part has: it is checked by the chapters
present (at least one, each with its transcript and audio), and a count other than the
published one is the warning of :func:`prepare_part`.

Command line (what ``egs2/librispeech/asr1/local/data.sh`` calls)::

    python -m espnet_ext.bin.corpus librispeech download TARGET --parts dev-clean ... \\
        [--base_url URL] [--no_md5] [--remove_archive]
    python -m espnet_ext.bin.corpus librispeech prepare CORPUS OUT --parts dev-clean ... [--require_complete]

(``--require_complete``: stop unless every part is complete, naming the parts that are not;
what ``local/data.sh --download false`` runs.)
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from espnet_ext.data import datadir
from espnet_ext.data.corpora.splits import Utterance, check_path, log_written
from espnet_ext.data.download import LocalCopy, fetch_and_extract, listing, needs_download

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.openslr.org/resources/12"
PARTS = (
    "train-clean-100", "train-clean-360", "train-other-500",
    "dev-clean", "dev-other", "test-clean", "test-other",
)  # fmt: skip
TRAIN_960_PARTS = ("train-clean-100", "train-clean-360", "train-other-500")
#: md5 of each ``<part>.tar.gz`` (openslr.org/resources/12/md5sum.txt).
MD5 = {
    "train-clean-100": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500": "d1a0fd59409feb2c614ce4d30c387708",
    "dev-clean": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other": "fb5a50374b501bb3bac4815ee91d3135",
}
#: Utterances per part in the published corpus.
EXPECTED_UTTERANCES = {
    "train-clean-100": 28539, "train-clean-360": 104014, "train-other-500": 148688,
    "dev-clean": 2703, "dev-other": 2864, "test-clean": 2620, "test-other": 2939,
}  # fmt: skip
DONE_MARKER = ".complete"
CHAPTERS = "CHAPTERS.TXT"  # "<chapter> | <reader> | <minutes> | <part> | ..." per chapter of the corpus
LOG_INTERVAL_S = 10.0  # seconds between progress lines while scanning a part

_ID_RE = re.compile(r"(\d+)-(\d+)-(\d+)")


class PartResult(NamedTuple):
    """What :func:`prepare_part` wrote: the data dir, kept utterances, excluded ones (id -> reason)."""

    data_dir: Path
    count: int
    excluded: dict[str, str]


def set_name(part: str) -> str:
    """Data-dir name of a part: ``train-clean-100`` -> ``train_clean_100``."""
    return part.replace("-", "_")


def check_parts(parts: Sequence[str]) -> list[str]:
    """``parts`` if every one is a LibriSpeech part, else ValueError listing the valid names."""
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"expected LibriSpeech parts among {', '.join(PARTS)}; found {list(parts)}")
    return list(parts)


# ---------------------------------------------------------------------------------------------
# Download
# ---------------------------------------------------------------------------------------------


def read_chapter_list(root: Path) -> dict[str, list[str]]:
    """``part -> ["<reader>/<chapter>", ...]`` from ``root/CHAPTERS.TXT`` (empty without one).

    Comment lines (``;``) and lines whose first two fields are not numbers are skipped.
    """
    listed: dict[str, list[str]] = {}
    path = root / CHAPTERS
    if not path.is_file():
        return listed
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = [field.strip() for field in line.split("|", 4)]
        if not line.startswith(";") and len(fields) >= 4 and fields[0].isdigit() and fields[1].isdigit():
            listed.setdefault(fields[3], []).append(f"{fields[1]}/{fields[0]}")
    return listed


def _chapter_gap(reader: str, chapter: str, chapter_dir: Path) -> str:
    """What a chapter directory lacks: its transcript, or ``.flac`` files it lists ("" if nothing)."""
    trans_path = chapter_dir / f"{reader}-{chapter}.trans.txt"
    if not trans_path.is_file():
        return f"{reader}/{chapter}/{trans_path.name}"
    with os.scandir(chapter_dir) as entries:
        flacs = {e.name[: -len(".flac")] for e in entries if e.name.endswith(".flac")}
    lacking = read_transcripts(trans_path, reader, chapter).keys() - flacs
    return f"{reader}/{chapter}/: {len(lacking)} .flac files that {trans_path.name} lists" if lacking else ""


def check_part(root, part: str, listed: Sequence[str] = ()) -> LocalCopy:
    """What of ``part`` is in ``root/<part>`` (``root``: the ``LibriSpeech`` directory).

    ``listed``: the ``<reader>/<chapter>`` that ``CHAPTERS.TXT`` gives for the part (see the
    module docstring). A part with :data:`DONE_MARKER` is complete; an absent or empty part
    directory is not ``found``.
    """
    part_dir = Path(root) / part
    if (part_dir / DONE_MARKER).is_file():
        return LocalCopy(part, part_dir, True, summary=f"{DONE_MARKER}: already downloaded and extracted")
    if not part_dir.is_dir() or not any(part_dir.iterdir()):
        return LocalCopy(part, part_dir, False)
    chapters = _chapter_dirs(part_dir)
    absent = [c for c in listed if not (part_dir / c).is_dir()]
    gaps = [gap for reader, chapter, chapter_dir in chapters if (gap := _chapter_gap(reader, chapter, chapter_dir))]
    missing = (
        [f"{len(absent)} of the {len(listed)} chapter directories that {CHAPTERS} lists for {part}: {listing(absent)}"]
        if absent
        else []
    )
    missing += [] if chapters else ["<reader>/<chapter>/ directories (there are none)"]
    missing += [f"files in {len(gaps)} of its {len(chapters)} chapters: {listing(gaps, 3)}"] if gaps else []
    summary = f"{len(chapters)} chapters" + (f", every one {CHAPTERS} lists" if listed else f", no {CHAPTERS} list")
    return LocalCopy(
        part, part_dir, True, tuple(missing), summary=summary, fix=f"extract {part}.tar.gz in {Path(root).parent} again"
    )


def _download_root(target_dir: Path) -> Path:
    """The ``LibriSpeech`` directory in ``target_dir`` (``target_dir`` itself when it holds parts)."""
    try:
        return find_corpus_root(target_dir)
    except ValueError:
        return target_dir / "LibriSpeech"


def parts_to_download(target_dir, parts: Sequence[str], download: bool = True) -> list[str]:
    """The parts of ``parts`` that are not in ``target_dir`` and must be downloaded.

    Each part is checked (:func:`check_part`) and the decision logged
    (:func:`espnet_ext.data.download.needs_download`). Raises ValueError naming every part that
    cannot be used (partial; with ``download`` False also missing), before anything is fetched.
    """
    target_dir = Path(target_dir)
    root = _download_root(target_dir)
    listed = read_chapter_list(root)
    todo, errors = [], []
    for part in check_parts(parts):
        try:
            if needs_download(check_part(root, part, listed.get(part, ())), [target_dir / f"{part}.tar.gz"], download):
                todo.append(part)
        except ValueError as err:
            errors.append(str(err))
    if errors:
        raise ValueError("\n".join(errors))
    return todo


def download_librispeech(
    target_dir,
    parts: Sequence[str],
    base_url: str = DEFAULT_BASE_URL,
    verify_md5: bool = True,
    remove_archive: bool = False,
) -> Path:
    """Fetch and extract the parts of ``parts`` that ``target_dir`` lacks (:func:`parts_to_download`);
    return the ``LibriSpeech`` directory.

    ``base_url``: where ``<part>.tar.gz`` are (http, https or file URL of a folder).
    ``verify_md5``: check each archive against :data:`MD5` (off for other archives, e.g. tests').
    """
    target_dir = Path(target_dir)
    todo = parts_to_download(target_dir, parts)
    root = _download_root(target_dir)
    if todo and root != target_dir / "LibriSpeech":
        raise ValueError(
            f"{target_dir} holds LibriSpeech's parts itself, but a download extracts into "
            f"{target_dir}/LibriSpeech/, which would then hide them: to download {', '.join(todo)}, "
            "point LIBRISPEECH in db.sh at the directory holding a LibriSpeech/ with your parts"
        )
    for part in todo:
        url = f"{base_url.rstrip('/')}/{part}.tar.gz"
        fetch_and_extract(
            url,
            target_dir,
            md5=MD5[part] if verify_md5 else None,
            done_marker=f"LibriSpeech/{part}/{DONE_MARKER}",
            remove_archive=remove_archive,
        )
        if not (target_dir / "LibriSpeech" / part).is_dir():
            raise ValueError(f"{url}: expected the archive to hold LibriSpeech/{part}/; it does not")
    return root


# ---------------------------------------------------------------------------------------------
# Preparation
# ---------------------------------------------------------------------------------------------


def find_corpus_root(corpus_dir) -> Path:
    """The ``LibriSpeech`` directory: ``corpus_dir/LibriSpeech`` or ``corpus_dir`` itself."""
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise ValueError(
            f"{corpus_dir}: no such directory; expected the directory holding LibriSpeech/ (set LIBRISPEECH in db.sh)"
        )
    if (corpus_dir / "LibriSpeech").is_dir():
        return corpus_dir / "LibriSpeech"
    if any((corpus_dir / part).is_dir() for part in PARTS):
        return corpus_dir
    raise ValueError(
        f"{corpus_dir}: expected LibriSpeech/<part>/ or <part>/ directories (parts: {', '.join(PARTS)}); found none"
    )


def read_transcripts(path: Path, reader: str, chapter: str) -> dict[str, str]:
    """``<reader>-<chapter>.trans.txt`` -> {id: upper-case text}; ValueError (file:line) if malformed."""
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err}); expected '<id> TRANSCRIPT' lines") from None
    result: dict[str, str] = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        match = _ID_RE.fullmatch(parts[0])
        if len(parts) != 2 or not match or match.group(1, 2) != (reader, chapter):
            raise ValueError(f"{path}:{lineno}: expected '{reader}-{chapter}-<nnnn> TRANSCRIPT', found {line!r}")
        if parts[0] in result:
            raise ValueError(f"{path}:{lineno}: utterance {parts[0]} appears twice")
        result[parts[0]] = " ".join(parts[1].upper().split())
    return result


def _chapter_dirs(part_dir: Path) -> list[tuple[str, str, Path]]:
    """(reader, chapter, dir) for every ``<reader>/<chapter>/`` of a part, sorted."""
    chapters = []
    for reader_dir in sorted(p for p in part_dir.iterdir() if p.is_dir()):
        for chapter_dir in sorted(p for p in reader_dir.iterdir() if p.is_dir()):
            chapters.append((reader_dir.name, chapter_dir.name, chapter_dir))
    return chapters


def _chapter_utterances(reader: str, chapter: str, chapter_dir: Path, excluded: dict[str, str]) -> list[Utterance]:
    """One chapter's usable utterances in id order; the others go to ``excluded`` with the reason.

    The audio paths are the ``.flac`` names under the chapter directory made absolute (resolved
    once per chapter, not per file)."""
    # names as strings (os.scandir), not Path objects: Python 3.11's pathlib interns every
    # path component, which would keep each file name for the life of the process
    with os.scandir(chapter_dir) as entries:
        flacs = {e.name[: -len(".flac")]: e.name for e in entries if e.name.endswith(".flac")}
    trans_path = chapter_dir / f"{reader}-{chapter}.trans.txt"
    if not trans_path.is_file():
        excluded.update({utt: f"no transcript file {trans_path}" for utt in flacs})
        return []
    texts = read_transcripts(trans_path, reader, chapter)
    for utt in flacs.keys() - texts.keys():
        excluded[utt] = f"no line in {trans_path}"
    for utt in texts.keys() - flacs.keys():
        excluded[utt] = f"no audio file {chapter_dir / (utt + '.flac')}"
    kept = []
    absolute = check_path(chapter_dir)
    for utt in sorted(flacs.keys() & texts.keys()):
        path = f"{absolute}/{flacs[utt]}"
        if os.stat(path).st_size == 0:
            excluded[utt] = f"empty audio file {path}"
        else:
            kept.append(Utterance(utt, path, texts[utt], f"{reader}-{chapter}"))
    return kept


def prepare_part(corpus_root, part: str, out_dir) -> PartResult:
    """Write ``out_dir/<set_name(part)>/`` from ``corpus_root/<part>`` (see the module docstring).

    Streams: chapters are read in order and their utterances written at once (LibriSpeech's
    ids, ``<reader>-<chapter>-<nnnn>`` with numeric fields, sort as the directories do), so
    memory does not grow with the size of the part (only with the excluded utterances).
    """
    part_dir = Path(corpus_root) / part
    if not part_dir.is_dir():
        raise ValueError(
            f"{part_dir}: no such directory; expected LibriSpeech's {part} (download it, or point "
            "LIBRISPEECH in db.sh at the directory holding LibriSpeech/)"
        )
    chapters = _chapter_dirs(part_dir)
    if not chapters:
        raise ValueError(f"{part_dir}: empty; expected <reader>/<chapter>/ directories with .flac files")
    excluded: dict[str, str] = {}
    data_dir = Path(out_dir) / set_name(part)
    writer = datadir.SortedDataDirWriter(data_dir, ["wav.scp", "text", "utt2spk"])
    last = time.monotonic()
    try:
        for index, (reader, chapter, chapter_dir) in enumerate(chapters):
            for utt in _chapter_utterances(reader, chapter, chapter_dir, excluded):
                writer.add(utt.utt_id, {"wav.scp": utt.path, "text": utt.text, "utt2spk": utt.speaker})
            if time.monotonic() - last >= LOG_INTERVAL_S:
                last = time.monotonic()
                logger.info("%s: %d of %d chapters, %d utterances", part, index + 1, len(chapters), writer.count)
    except BaseException:
        writer.abort()
        raise
    if not writer.count:
        writer.abort()
        reasons = "; ".join(f"{u}: {r}" for u, r in list(excluded.items())[:3])
        raise ValueError(f"{data_dir}: no utterances left to write{' (' + reasons + ')' if reasons else ''}")
    count = writer.close()
    log_written(data_dir, count, excluded)
    if count != EXPECTED_UTTERANCES[part]:
        logger.warning("%s: %d utterances, the published corpus has %d", part, count, EXPECTED_UTTERANCES[part])
    return PartResult(data_dir, count, excluded)


def prepare_librispeech(
    corpus_dir, out_dir, parts: Sequence[str], require_complete: bool = False
) -> dict[str, PartResult]:
    """Write a data dir per part (see :func:`prepare_part`); returns them by part name.

    With ``require_complete``, first stop unless every part is complete (:func:`check_part`),
    with a ValueError naming each part that is not.
    """
    root = find_corpus_root(corpus_dir)
    if require_complete:
        parts_to_download(corpus_dir, parts, download=False)
    return {part: prepare_part(root, part, out_dir) for part in check_parts(parts)}
