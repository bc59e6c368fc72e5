"""Atomic file replacement: a file a run resumes from, or a user keeps, is never seen half written.

Every such file is written beside its final name (``<name>.tmp.<pid>``), flushed to disk, then
renamed onto the final name (``os.replace``, atomic on POSIX within a file system). A kill at any
moment leaves either the previous file or the new one, never a torn mix; a reader that has the old
file open (e.g. bash running a script) keeps reading the old inode. A write that fails (disk full)
removes its temporary file and leaves the previous file as it was.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def replacing(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; when the block ends without an error the
    temporary file is flushed to disk and renamed onto ``path``. On an error it is removed and
    ``path`` is left untouched. The writer must close the file before the block ends."""
    final = Path(path)
    tmp = final.with_name(f"{final.name}.tmp.{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(final.parent)


def write_bytes(path: PathLike, data: bytes) -> Path:
    """``path`` replaced atomically by ``data``; returns ``path`` as a Path."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """``path`` replaced atomically by ``text`` (newlines as given); returns ``path`` as a Path."""
    return write_bytes(path, text.encode(encoding))
