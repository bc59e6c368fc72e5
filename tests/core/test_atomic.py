"""core.atomic: a replaced file is the old one or the new one, never torn; the previous version is
kept on request; a failed write (disk full, injected) leaves the old file and names the file; the
pause hook leaves a half-written temporary file for a kill to land in."""

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from espnet_ext.core import atomic
from espnet_ext.core.atomic import (
    FaultRule,
    is_temporary,
    parse_faults,
    remove_stale_temporaries,
    replacing,
    write_bytes,
    write_text,
)


@pytest.fixture(autouse=True)
def no_faults(monkeypatch):
    monkeypatch.delenv(atomic.FAULT_ENV, raising=False)
    monkeypatch.setattr(atomic, "_matched", {})


def test_write_replaces_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "f.txt"
    write_text(path, "old\n")
    write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_surrogates_pass_with_surrogateescape(tmp_path):
    text = b"utt \xff\n".decode("utf-8", "surrogateescape")
    with pytest.raises(UnicodeEncodeError):
        write_text(tmp_path / "a", text)
    write_text(tmp_path / "a", text, errors="surrogateescape")
    assert (tmp_path / "a").read_bytes() == b"utt \xff\n"


def test_error_in_the_block_keeps_the_old_file_and_names_it(tmp_path):
    path = tmp_path / "f.bin"
    write_bytes(path, b"old")
    with pytest.raises(RuntimeError) as caught:
        with replacing(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer failed")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
    assert any(str(path) in note for note in caught.value.__notes__)


def test_keep_previous_keeps_the_replaced_file(tmp_path):
    path, prev = tmp_path / "checkpoint.pth", tmp_path / "checkpoint.prev.pth"
    for content in (b"1", b"2", b"3"):
        with replacing(path, keep_previous=prev) as tmp:
            tmp.write_bytes(content)
    assert path.read_bytes() == b"3" and prev.read_bytes() == b"2"
    assert os.stat(path).st_ino != os.stat(prev).st_ino  # two files, not one linked twice


def test_keep_previous_without_hard_links_renames(tmp_path, monkeypatch):
    path, prev = tmp_path / "checkpoint.pth", tmp_path / "checkpoint.prev.pth"
    write_bytes(path, b"1")

    def no_link(*args):
        raise OSError(errno.EPERM, "no hard links here")

    monkeypatch.setattr(os, "link", no_link)
    with replacing(path, keep_previous=prev) as tmp:
        tmp.write_bytes(b"2")
    assert path.read_bytes() == b"2" and prev.read_bytes() == b"1"


def test_parse_faults():
    assert parse_faults("enospc:checkpoint.pth; pause:*epoch.pth:2.5:3") == [
        FaultRule("enospc", "checkpoint.pth", 0.0, 0),
        FaultRule("pause", "*epoch.pth", 2.5, 3),
    ]
    for bad in ("enospc", "pause:x", "fill:x", "pause:x:soon"):
        with pytest.raises(ValueError, match=atomic.FAULT_ENV):
            parse_faults(bad)


def test_injected_disk_full_on_the_nth_write_keeps_the_previous_file(tmp_path, monkeypatch):
    monkeypatch.setenv(atomic.FAULT_ENV, "enospc:*.pth:2")
    path = tmp_path / "3epoch.pth"
    write_bytes(path, b"first")  # the first matching write passes
    with pytest.raises(OSError) as caught:
        write_bytes(path, b"second")
    assert caught.value.errno == errno.ENOSPC
    assert any(str(path) in note for note in caught.value.__notes__)
    write_bytes(tmp_path / "other.txt", b"x")  # not matched
    write_bytes(path, b"third")  # the third passes again
    assert path.read_bytes() == b"third"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3epoch.pth", "other.txt"]


def test_a_kill_in_a_paused_write_leaves_the_old_file(tmp_path):
    """A process killed (SIGKILL) while its write stalls half way: the old file is intact, a
    half-written temporary is left, and remove_stale_temporaries() clears it afterwards."""
    path = tmp_path / "checkpoint.pth"
    write_bytes(path, b"old" * 1000)
    code = "import sys; from espnet_ext.core.atomic import write_bytes; write_bytes(sys.argv[1], b'new' * 1000)"
    env = dict(os.environ, **{atomic.FAULT_ENV: "pause:checkpoint.pth:60"})
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], env=env, stderr=subprocess.PIPE)
    marker = tmp_path / f"checkpoint.pth.tmp.{proc.pid}.paused"
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no pause"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    tmp = tmp_path / f"checkpoint.pth.tmp.{proc.pid}"
    assert tmp.stat().st_size == 1500  # half of the new content was on disk
    assert path.read_bytes() == b"old" * 1000
    assert is_temporary(tmp) and not is_temporary(path)
    assert sorted(p.name for p in remove_stale_temporaries(tmp_path)) == sorted([tmp.name, marker.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth"]


def test_a_paused_write_that_is_not_killed_completes(tmp_path, monkeypatch):
    monkeypatch.setenv(atomic.FAULT_ENV, "pause:f:0.01")
    write_bytes(tmp_path / "f", b"0123456789")
    assert (tmp_path / "f").read_bytes() == b"0123456789"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_temporaries_of_a_live_process_are_kept(tmp_path):
    mine = tmp_path / f"x.tmp.{os.getpid()}"
    mine.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path) == [] and mine.exists()
