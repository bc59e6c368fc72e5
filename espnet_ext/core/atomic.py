"""Atomic file replacement: a file a run resumes from, or a user keeps, is never seen half written.

Every such file is written beside its final name (``<name>.tmp.<pid>``), flushed to disk, then
renamed onto the final name (``os.replace``, atomic on POSIX within a file system). A kill at any
moment leaves either the previous file or the new one, never a torn mix; a reader that has the old
file open (e.g. bash running a script) keeps reading the old inode. A write that fails (disk full)
removes its temporary file and leaves the previous file as it was; the error carries a note that
names the file.

``replacing(path, keep_previous=prev)`` also keeps the file being replaced as ``prev`` (a hard
link made before the new file lands, so ``path`` itself never goes missing; a rename where the file
system has no hard links): there is always an intact previous state beside the current one.

Fault injection, for tests: the environment variable ``ESPNET_EXT_FAULT`` holds ``;``-separated
rules ``ACTION:GLOB[:ARG...]`` applied to writes whose final file name matches ``GLOB``
(:func:`fnmatch.fnmatch`), checked when the writer has written the temporary file:

- ``enospc:GLOB[:NTH]`` raises ``OSError(ENOSPC)`` (disk full) in the NTH matching write of the
  process (1-based; every matching write when NTH is absent or 0);
- ``pause:GLOB:SECONDS[:NTH]`` cuts the temporary file to half its size, creates ``<tmp>.paused``,
  sleeps SECONDS, then writes the rest back and goes on: a write stalled half way, for a test to
  kill the process in.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple, Union

PathLike = Union[str, "os.PathLike[str]"]

FAULT_ENV = "ESPNET_EXT_FAULT"
_TEMPORARY = re.compile(r"\.tmp\.\d+$")


def temporary_path(final: Path) -> Path:
    """Where :func:`replacing` writes ``final`` before renaming it."""
    return final.with_name(f"{final.name}.tmp.{os.getpid()}")


def is_temporary(path: PathLike) -> bool:
    """Whether ``path`` is a temporary file of :func:`replacing` (``<name>.tmp.<pid>``)."""
    return bool(_TEMPORARY.search(Path(path).name))


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


def _keep(final: Path, previous: Path) -> None:
    """``final``'s current content becomes ``previous`` (replacing it), ``final`` staying in place."""
    if not final.exists():
        return
    link = temporary_path(previous)
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    try:
        os.link(final, link)
    except OSError:  # no hard links here: rename (``final`` is missing until the new file lands)
        os.replace(final, previous)
        return
    os.replace(link, previous)


@contextlib.contextmanager
def replacing(path: PathLike, keep_previous: PathLike | None = None, sync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; when the block ends without an error the
    temporary file is flushed to disk and renamed onto ``path`` (the file it replaces kept as
    ``keep_previous`` when given). On an error it is removed, ``path`` is left untouched, and the
    error gets a note naming ``path``. The writer must close the file before the block ends.

    ``sync=False`` skips the flushes to disk: a killed process still leaves the old file or the
    new one, a power loss may not; for the many small files of a directory that is itself
    renamed into place when complete (dumped audio)."""
    final = Path(path)
    tmp = temporary_path(final)
    try:
        yield tmp
        _inject_fault(final, tmp)
        if sync:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        if keep_previous is not None:
            _keep(final, Path(keep_previous))
        os.replace(tmp, final)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(error, Exception):
            error.add_note(f"while writing {final} (the previous {final.name}, if any, is left as it was)")
        raise
    if sync:
        _fsync_dir(final.parent)


def write_bytes(path: PathLike, data: bytes) -> Path:
    """``path`` replaced atomically by ``data``; returns ``path`` as a Path."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: PathLike, text: str, encoding: str = "utf-8", errors: str = "strict") -> Path:
    """``path`` replaced atomically by ``text`` (newlines as given; ``errors`` as in :meth:`str.encode`);
    returns ``path`` as a Path."""
    return write_bytes(path, text.encode(encoding, errors))


# --------------------------------------------------------------------------- fault injection


class FaultRule(NamedTuple):
    action: str  # "enospc" or "pause"
    pattern: str  # glob over the final file name
    seconds: float  # pause only
    nth: int  # the matching write it applies to (1-based); 0: every one


_matched: dict[FaultRule, int] = {}  # matching writes seen so far in this process, per rule


def parse_faults(spec: str) -> list[FaultRule]:
    """The rules of an ``ESPNET_EXT_FAULT`` value (see the module docstring)."""
    rules = []
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        fields = item.split(":")
        action = fields[0]
        try:
            if action == "enospc" and len(fields) in (2, 3):
                rules.append(FaultRule(action, fields[1], 0.0, int(fields[2]) if len(fields) == 3 else 0))
                continue
            if action == "pause" and len(fields) in (3, 4):
                rules.append(FaultRule(action, fields[1], float(fields[2]), int(fields[3]) if len(fields) == 4 else 0))
                continue
        except ValueError:
            pass
        raise ValueError(f"{FAULT_ENV}: expected enospc:GLOB[:NTH] or pause:GLOB:SECONDS[:NTH]; found {item!r}")
    return rules


def _inject_fault(final: Path, tmp: Path) -> None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for rule in parse_faults(spec):
        if not fnmatch.fnmatch(final.name, rule.pattern):
            continue
        _matched[rule] = _matched.get(rule, 0) + 1
        if rule.nth and _matched[rule] != rule.nth:
            continue
        if rule.action == "enospc":
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({FAULT_ENV})", str(tmp))
        _stall(tmp, rule.seconds)


def _stall(tmp: Path, seconds: float) -> None:
    """Leave ``tmp`` half written for ``seconds``, then complete it."""
    data = tmp.read_bytes()
    with open(tmp, "rb+") as handle:
        handle.truncate(len(data) // 2)
    marker = tmp.with_name(tmp.name + ".paused")
    marker.touch()
    print(f"{FAULT_ENV}: {tmp} half written, pausing {seconds:g} s", file=sys.stderr, flush=True)
    time.sleep(seconds)
    marker.unlink()
    tmp.write_bytes(data)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory: PathLike) -> list[Path]:
    """Remove the temporary files (and pause markers) that killed writers left in ``directory``:
    ``<name>.tmp.<pid>`` of a process that no longer runs. Returns the paths removed."""
    removed = []
    for path in sorted(Path(directory).glob("*.tmp.*")):
        match = re.search(r"\.tmp\.(\d+)(\.paused)?$", path.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed
