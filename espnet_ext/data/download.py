"""Download and unpack corpus archives: resumable HTTP(S)/file:// fetches, safe extraction.

:func:`fetch` copies one URL to a local file. It writes ``<dest>.part`` and renames it to ``dest``
only when the copy is complete (and its md5 matches, if one is given), so an interrupted fetch never
leaves a file that looks finished. A leftover ``.part`` is resumed: over HTTP(S) with a
``Range: bytes=<size>-`` request (a server that answers ``206 Partial Content`` continues the file;
one that answers ``200`` sends it whole and the ``.part`` is restarted), for ``file://`` by seeking.
Transient network errors are retried, each retry resuming where the last stopped. An existing
``dest`` is kept (skipped) unless an md5 is given and does not match, in which case it is fetched
again. Progress (bytes, percent when the size is known, MB/s) is logged every ``log_interval`` s.

:func:`extract` unpacks ``.tar``, ``.tar.gz``/``.tgz`` (any tar compression) and ``.zip`` archives,
leaving path safety to the standard library: tar members pass tarfile's ``data`` extraction filter
(a leading ``/`` is stripped, as GNU tar does; a member or link target that would leave ``dest_dir``,
and device files, raise a ValueError naming the archive and member), and zipfile drops a zip
member's leading ``/`` and its ``..`` components, so nothing is written outside ``dest_dir``.

Command line::

    python -m espnet_ext.bin.download URL DEST_DIR [--md5 M] [--extract] [--done_marker NAME]

downloads ``URL`` to ``DEST_DIR/<basename of URL>``, optionally extracts it into ``DEST_DIR``,
then writes ``DEST_DIR/NAME`` (only after the extraction has completed). When that marker exists
the command does nothing, so a recipe stage can be re-run safely.

:class:`LocalCopy` and :func:`needs_download` decide, for a corpus (or one part of it) that a
corpus module has checked on disk, whether to use it, download it, or stop: a complete copy is
used as it is (no marker needed: a corpus extracted by hand counts), a missing one is downloaded,
a partial one is an error naming what is missing, unless it is this project's own interrupted
download (its archive is still in place), which is resumed.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import logging
import lzma
import os
import re
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO, NamedTuple

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike
CHUNK_BYTES = 1 << 20  # read/write block size: 1 MiB
LOG_INTERVAL_S = 10.0  # seconds between progress lines
TIMEOUT_S = 60.0  # socket timeout of one HTTP request, seconds
RETRIES = 3  # extra attempts after a network error, each resuming the .part file
RETRY_WAIT_S = 5.0  # pause before a retry, seconds
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")


class _Source(NamedTuple):
    """An open stream of the remote file from byte ``offset`` on; ``total`` is its full size."""

    stream: BinaryIO
    offset: int
    total: int | None


def md5sum(path: PathLike, chunk_bytes: int = CHUNK_BYTES) -> str:
    """Hex md5 digest of the file at ``path``."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()


def url_basename(url: str) -> str:
    """The file name a URL points to (``.../data_aishell.tgz?x=1`` -> ``data_aishell.tgz``)."""
    name = PurePosixPath(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name
    if not name:
        raise ValueError(f"{url}: expected a URL ending in a file name")
    return name


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _open_file_url(url: str, offset: int) -> _Source:
    """Open a ``file://`` URL from byte ``offset`` (past the end: from the start)."""
    path = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
    if not path.is_file():
        raise FileNotFoundError(f"{url}: no such file {path}")
    total = path.stat().st_size
    stream = open(path, "rb")
    offset = offset if offset <= total else 0
    stream.seek(offset)
    return _Source(stream, offset, total)


_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)")


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """First byte and full size from ``Content-Range: bytes a-b/n`` or ``bytes */n`` (None: unknown)."""
    match = _CONTENT_RANGE.fullmatch((header or "").strip())
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total.isdigit() else None)


def _open_http_url(url: str, offset: int, timeout: float) -> _Source:
    """Open an HTTP(S) URL, asking for bytes ``offset``- when ``offset`` > 0.

    A ``206`` answer continues at ``offset``; a ``200`` answer restarts at 0; a ``416`` answer whose
    full size equals ``offset`` means the ``.part`` is already complete (an empty stream is returned).
    """
    request = urllib.request.Request(url, headers={"User-Agent": "espnet_ext-download"})
    if offset > 0:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset > 0:
            _, total = _content_range(err.headers.get("Content-Range"))
            err.close()
            if total == offset:
                return _Source(io.BytesIO(), offset, total)
            logger.warning("%s: server refused to resume at byte %d; starting over", url, offset)
            return _open_http_url(url, 0, timeout)
        raise
    if response.status == 206:
        start, total = _content_range(response.headers.get("Content-Range"))
        if start != offset:
            response.close()
            raise OSError(f"{url}: asked for bytes from {offset}, server sent from {start}")
        return _Source(response, offset, total)
    if offset > 0:
        logger.info("%s: server does not support resuming (HTTP %d); downloading from the start", url, response.status)
    length = response.headers.get("Content-Length")
    return _Source(response, 0, int(length) if length and length.isdigit() else None)


def _open(url: str, offset: int, timeout: float) -> _Source:
    scheme = urllib.parse.urlparse(url).scheme.lower()
    if scheme == "file":
        return _open_file_url(url, offset)
    if scheme in ("http", "https"):
        return _open_http_url(url, offset, timeout)
    raise ValueError(f"{url}: expected an http://, https:// or file:// URL, found scheme {scheme!r}")


class _Ticker:
    """True every ``interval`` seconds (for periodic progress lines)."""

    def __init__(self, interval: float) -> None:
        self.interval, self.last = interval, time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.interval:
            return False
        self.last = now
        return True


class _Progress:
    """Logs bytes done every ``interval`` seconds (and once at the end)."""

    def __init__(self, name: str, done: int, total: int | None, interval: float) -> None:
        self.name, self.done, self.total = name, done, total
        self.start_done, self.start = done, time.monotonic()
        self.ticker = _Ticker(interval)

    def add(self, nbytes: int) -> None:
        self.done += nbytes
        if self.ticker.due():
            self.log()

    def log(self) -> None:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        rate = (self.done - self.start_done) / elapsed / 1e6
        if self.total:
            logger.info(
                "%s: %.1f / %.1f MB (%.0f%%), %.2f MB/s",
                self.name,
                self.done / 1e6,
                self.total / 1e6,
                100.0 * self.done / self.total,
                rate,
            )
        else:
            logger.info("%s: %.1f MB, %.2f MB/s", self.name, self.done / 1e6, rate)


def _copy_to_part(url: str, part: Path, timeout: float, log_interval: float) -> None:
    """Append the rest of ``url`` to ``part`` (starting over if the server cannot resume)."""
    offset = part.stat().st_size if part.exists() else 0
    source = _open(url, offset, timeout)
    if offset and source.offset == offset:
        logger.info("%s: resuming at byte %d", part.name, offset)
    progress = _Progress(part.name[: -len(".part")], source.offset, source.total, log_interval)
    try:
        with open(part, "r+b" if part.exists() else "wb") as out:
            out.seek(source.offset)
            out.truncate()
            for block in iter(lambda: source.stream.read(CHUNK_BYTES), b""):
                out.write(block)
                progress.add(len(block))
    finally:
        source.stream.close()
    if source.total is not None and progress.done != source.total:
        raise OSError(f"{url}: connection closed after {progress.done} of {source.total} bytes")
    progress.log()


def _download_with_retries(
    url: str, part: Path, timeout: float, log_interval: float, retries: int, retry_wait: float
) -> None:
    for attempt in range(retries + 1):
        try:
            _copy_to_part(url, part, timeout, log_interval)
            return
        except (OSError, http.client.HTTPException) as err:
            fatal = isinstance(err, FileNotFoundError) or (isinstance(err, urllib.error.HTTPError) and err.code < 500)
            if fatal or attempt == retries:
                raise
            logger.warning(
                "%s: %s; retrying (%d of %d) from byte %d",
                url,
                err,
                attempt + 1,
                retries,
                part.stat().st_size if part.exists() else 0,
            )
            time.sleep(retry_wait)


def fetch(
    url: str,
    dest: PathLike,
    *,
    md5: str | None = None,
    timeout: float = TIMEOUT_S,
    log_interval: float = LOG_INTERVAL_S,
    retries: int = RETRIES,
    retry_wait: float = RETRY_WAIT_S,
) -> Path:
    """Download ``url`` (http, https or file) to the file ``dest`` and return its path.

    Skips the download when ``dest`` exists (and matches ``md5``, if given). Writes
    ``<dest>.part`` first, resuming one left by an earlier run, and renames it when complete.
    Raises ValueError when the downloaded file's md5 differs from ``md5`` (the ``.part`` is
    deleted, since resuming a corrupt file cannot fix it), naming the file, expected and got.
    """
    dest = Path(dest)
    if dest.exists():
        if md5 is None:
            logger.info("%s exists; skipping download of %s", dest, url)
            return dest
        got = md5sum(dest)
        if got == md5.lower():
            logger.info("%s exists (md5 %s); skipping download of %s", dest, got, url)
            return dest
        logger.warning("%s exists but its md5 is %s, expected %s; downloading again", dest, got, md5)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    logger.info("Downloading %s to %s", url, dest)
    _download_with_retries(url, part, timeout, log_interval, retries, retry_wait)
    if md5 is not None:
        got = md5sum(part)
        if got != md5.lower():
            part.unlink()
            raise ValueError(f"{dest}: md5 mismatch for the download of {url}: expected {md5.lower()}, got {got}")
    os.replace(part, dest)
    return dest


def archive_kind(archive: PathLike) -> str:
    """``"zip"`` or ``"tar"`` from the archive's name; ValueError for anything else."""
    name = Path(archive).name.lower()
    if not name.endswith(ARCHIVE_SUFFIXES):
        raise ValueError(f"{archive}: expected an archive named *{', *'.join(ARCHIVE_SUFFIXES)}")
    return "zip" if name.endswith(".zip") else "tar"


def extract(archive: PathLike, dest_dir: PathLike, *, log_interval: float = LOG_INTERVAL_S) -> None:
    """Unpack ``archive`` (.tar, .tar.gz, .tgz, .zip, ...) into ``dest_dir``.

    Member paths are made safe as the module docstring says; a tar member the ``data`` filter
    refuses raises ValueError before it is written (members before it are extracted: a tar is
    read in one streaming pass, so a 15 GB .tgz is decompressed once). Progress is logged every
    ``log_interval`` seconds.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    kind = archive_kind(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"{archive}: archive not found")
    dest_dir.mkdir(parents=True, exist_ok=True)
    logger.info("Extracting %s into %s", archive, dest_dir)
    try:
        if kind == "zip":
            _extract_zip(archive, dest_dir, log_interval)
        else:
            _extract_tar(archive, dest_dir, log_interval)
    except tarfile.FilterError as err:
        raise ValueError(f"{archive}: member {err.tarinfo.name!r} refused: {err}") from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError) as err:
        raise ValueError(f"{archive}: not a complete {kind} archive ({err}); delete it to download it again") from err


def _extract_zip(archive: Path, dest_dir: Path, log_interval: float) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        ticker = _Ticker(log_interval)
        for i, info in enumerate(infos, 1):
            zf.extract(info, dest_dir)
            if ticker.due():
                logger.info("%s: %d / %d members extracted", archive.name, i, len(infos))


def _extract_tar(archive: Path, dest_dir: Path, log_interval: float) -> None:
    size = max(archive.stat().st_size, 1)
    ticker = _Ticker(log_interval)
    with open(archive, "rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
        for i, member in enumerate(tar, 1):
            tar.extract(member, dest_dir, filter="data")
            if ticker.due():
                logger.info(
                    "%s: %d members extracted, %.0f%% of the archive read", archive.name, i, 100.0 * raw.tell() / size
                )


def fetch_and_extract(
    url: str,
    dest_dir: PathLike,
    *,
    md5: str | None = None,
    extract_archive: bool = True,
    done_marker: str | None = None,
    remove_archive: bool = False,
) -> Path:
    """Download ``url`` into ``dest_dir`` and (optionally) extract it there; return the archive path.

    With ``done_marker``, nothing is done when ``dest_dir/done_marker`` exists, and the marker is
    written only after the download and extraction completed.
    """
    dest_dir = Path(dest_dir)
    archive = dest_dir / url_basename(url)
    marker = dest_dir / done_marker if done_marker else None
    if marker is not None and marker.exists():
        logger.info("%s exists; %s already downloaded%s", marker, url, " and extracted" if extract_archive else "")
        return archive
    fetch(url, archive, md5=md5)
    if extract_archive:
        extract(archive, dest_dir)
        if remove_archive:
            archive.unlink()
    if marker is not None:
        marker.write_text(f"{url}\n")
    return archive


class LocalCopy(NamedTuple):
    """What a corpus module's check found on disk for a corpus, or for one part of it.

    ``name``: what was checked (``"AISHELL-1"``, ``"train-other-500"``); ``where``: its directory;
    ``found``: whether any of it is there (False: a download starts from nothing); ``missing``:
    what a complete copy has and this one lacks, one item per entry (empty: complete);
    ``fix``: how to complete it by hand; ``summary``: what was found (for the log).
    """

    name: str
    where: Path
    found: bool
    missing: tuple[str, ...] = ()
    fix: str = ""
    summary: str = ""

    @property
    def complete(self) -> bool:
        return self.found and not self.missing


def listing(items: Iterable[str], limit: int = 5) -> str:
    """``a, b, c, ... (N more)``: the first ``limit`` items and how many were left out."""
    items = list(items)
    more = f", ... ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def needs_download(copy: LocalCopy, archives: Sequence[PathLike] = (), download: bool = True) -> bool:
    """Whether ``copy`` must be downloaded; logs the decision. ``archives``: the files a download
    of it leaves in place (their ``.part`` counts too).

    - complete: False ("<name> found complete at <where>: not downloading");
    - not there: True ("downloading <name>: missing from <where>");
    - partial, with one of ``archives`` (or its ``.part``) present: True, since it is an interrupted
      download, which fetching (resumed or skipped) and extracting again completes;
    - partial otherwise: ValueError listing what is missing and saying what to do (delete it to
      download it again, or complete it by hand), rather than extracting over someone's copy.

    With ``download`` False anything but a complete copy is a ValueError naming what is missing.
    """
    if copy.complete:
        logger.info(
            "%s found complete at %s%s: not downloading",
            copy.name,
            copy.where,
            f" ({copy.summary})" if copy.summary else "",
        )
        return False
    again = " to download it again" if download else " and run local/data.sh with --download true to download it"
    if not copy.found:
        if not download:
            raise ValueError(
                f"{copy.name}: missing from {copy.where}; run local/data.sh with --download true "
                "to download it, or point db.sh at a copy that has it"
            )
        logger.info("downloading %s: missing from %s", copy.name, copy.where)
        return True
    in_place = [Path(a) for a in archives if Path(a).exists() or _part_path(Path(a)).exists()]
    if download and in_place:
        logger.info(
            "%s at %s is incomplete (%s) and %s is there (an interrupted download): "
            "downloading (where unfinished) and extracting again",
            copy.name,
            copy.where,
            listing(copy.missing, 2),
            in_place[0].name,
        )
        return True
    fix = f", or complete it: {copy.fix}" if copy.fix else ", or complete it"
    raise ValueError(
        f"{copy.name} at {copy.where} is incomplete; missing: {'; '.join(copy.missing)}. "
        f"Delete {copy.where}{again}{fix}"
    )
