"""Tests of espnet_ext.data.download: fetch over file:// and a local HTTP server, resume, md5, extract."""

from __future__ import annotations

import hashlib
import http.server
import io
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from espnet_ext.bin import download as download_cli
from espnet_ext.data import download

PAYLOAD = bytes(range(256)) * 4000 + b"tail"  # ~1 MB, not a multiple of the chunk size


class _Server(http.server.ThreadingHTTPServer):
    """Serves ``files``; records each request's Range header; can cut the first response short."""

    files: dict[str, bytes]
    ranges: list[str | None]
    support_range: bool
    cut_first_after: int | None


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        data = self.server.files.get(self.path.lstrip("/"))
        range_header = self.headers.get("Range")
        self.server.ranges.append(range_header)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if range_header and self.server.support_range:
            start = int(range_header.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.server.cut_first_after is not None:
            body, self.server.cut_first_after = body[: self.server.cut_first_after], None
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.files, srv.ranges, srv.support_range, srv.cut_first_after = {"f.bin": PAYLOAD}, [], True, None
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv: _Server, name: str = "f.bin") -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/{name}"


def test_file_url_fetch_and_skip_existing(tmp_path: Path) -> None:
    src = tmp_path / "src" / "a.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    dest = download.fetch(src.as_uri(), tmp_path / "out" / "a.bin")
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "out" / "a.bin.part").exists()
    src.write_bytes(b"changed")  # an existing dest is not fetched again
    assert download.fetch(src.as_uri(), dest).read_bytes() == PAYLOAD


def test_file_url_resumes_part(tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "out.bin"
    # a .part whose bytes differ from the source: only a resume (not a restart) keeps them
    (tmp_path / "out.bin.part").write_bytes(b"X" * 1000)
    download.fetch(src.as_uri(), dest)
    assert dest.read_bytes() == b"X" * 1000 + PAYLOAD[1000:]


def test_http_resume_uses_range(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:300_000])
    download.fetch(_url(server), dest, md5=hashlib.md5(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=300000-"]


def test_http_without_range_support_restarts(server: _Server, tmp_path: Path) -> None:
    server.support_range = False
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"garbage" * 1000)
    download.fetch(_url(server), dest)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=7000-"]


def test_http_complete_part_is_renamed(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)
    download.fetch(_url(server), dest)  # the server answers 416 with the full size
    assert dest.read_bytes() == PAYLOAD


def test_interrupted_download_is_resumed(server: _Server, tmp_path: Path) -> None:
    server.cut_first_after = 123_456
    dest = download.fetch(_url(server), tmp_path / "f.bin", retries=2, retry_wait=0.0)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges == [None, "bytes=123456-"]


def test_interrupted_without_retries_leaves_part(server: _Server, tmp_path: Path) -> None:
    server.cut_first_after = 5000
    with pytest.raises(OSError, match="5000 of"):
        download.fetch(_url(server), tmp_path / "f.bin", retries=0)
    assert not (tmp_path / "f.bin").exists()
    assert (tmp_path / "f.bin.part").read_bytes() == PAYLOAD[:5000]
    download.fetch(_url(server), tmp_path / "f.bin")  # the next run resumes it
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert server.ranges[-1] == "bytes=5000-"


def test_md5_mismatch_names_file_expected_and_got(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    with pytest.raises(ValueError) as err:
        download.fetch(_url(server), dest, md5="0" * 32)
    message = str(err.value)
    assert str(dest) in message and "0" * 32 in message and hashlib.md5(PAYLOAD).hexdigest() in message
    assert not dest.exists() and not (tmp_path / "f.bin.part").exists()


def test_existing_dest_with_wrong_md5_is_fetched_again(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"stale")
    download.fetch(_url(server), dest, md5=hashlib.md5(PAYLOAD).hexdigest())
    assert dest.read_bytes() == PAYLOAD
    assert len(server.ranges) == 1
    download.fetch(_url(server), dest, md5=hashlib.md5(PAYLOAD).hexdigest())
    assert len(server.ranges) == 1  # now it matches: skipped


def test_http_404_is_an_error(server: _Server, tmp_path: Path) -> None:
    with pytest.raises(OSError, match="404"):
        download.fetch(_url(server, "missing.bin"), tmp_path / "m.bin", retry_wait=0.0)
    assert len(server.ranges) == 1  # a client error is not retried


def test_unknown_scheme_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ftp"):
        download.fetch("ftp://example.org/x.tgz", tmp_path / "x.tgz")


def _tar(path: Path, members: dict[str, bytes], mode: str = "w:gz", links: dict[str, str] | None = None) -> Path:
    links = links or {}
    with tarfile.open(path, mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


@pytest.mark.parametrize("name,mode", [("a.tar.gz", "w:gz"), ("a.tgz", "w:gz"), ("a.tar", "w")])
def test_extract_tar(tmp_path: Path, name: str, mode: str) -> None:
    archive = _tar(tmp_path / name, {"top/x.txt": b"x", "top/sub/y.txt": b"y"}, mode)
    download.extract(archive, tmp_path / "out")
    assert (tmp_path / "out/top/x.txt").read_bytes() == b"x"
    assert (tmp_path / "out/top/sub/y.txt").read_bytes() == b"y"


def test_extract_zip(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("top/x.txt", "x")
    download.extract(tmp_path / "a.zip", tmp_path / "out")
    assert (tmp_path / "out/top/x.txt").read_text() == "x"


@pytest.mark.parametrize("member", ["../evil.txt", "top/../../evil.txt"])
def test_extract_rejects_traversal_in_tar(tmp_path: Path, member: str) -> None:
    archive = _tar(tmp_path / "bad.tgz", {"top/ok.txt": b"ok", member: b"evil"})
    with pytest.raises(ValueError, match="outside the destination") as err:
        download.extract(archive, tmp_path / "out")
    assert repr(member) in str(err.value) and "bad.tgz" in str(err.value)
    assert not (tmp_path / "evil.txt").exists()


def test_extract_strips_a_leading_slash_in_tar(tmp_path: Path) -> None:
    """As GNU tar does (tarfile's data filter): /tmp/x.txt lands in dest_dir/tmp/x.txt."""
    archive = _tar(tmp_path / "abs.tgz", {"/tmp/x.txt": b"x"})
    download.extract(archive, tmp_path / "out")
    assert (tmp_path / "out/tmp/x.txt").read_bytes() == b"x"


def test_extract_rejects_symlink_out(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "bad.tgz", {}, links={"top/link": "../../etc"})
    with pytest.raises(ValueError, match=r"bad.tgz: member 'top/link' refused: .*link to .*outside the destination"):
        download.extract(archive, tmp_path / "out")
    assert not (tmp_path / "out/top/link").exists()


def test_extract_rejects_device_files_in_tar(tmp_path: Path) -> None:
    archive = tmp_path / "dev.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("top/null")
        info.type = tarfile.CHRTYPE
        tar.addfile(info)
    with pytest.raises(ValueError, match="member 'top/null' refused: .*special file"):
        download.extract(archive, tmp_path / "out")


def test_extract_keeps_zip_traversal_inside(tmp_path: Path) -> None:
    """zipfile drops a member's ``..`` components and leading ``/``: nothing lands outside dest_dir."""
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("ok.txt", "ok")
        zf.writestr("../evil.txt", "evil")
        zf.writestr("/abs.txt", "abs")
    download.extract(tmp_path / "bad.zip", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["abs.txt", "evil.txt", "ok.txt"]
    assert not (tmp_path / "evil.txt").exists()


def test_extract_unknown_suffix(tmp_path: Path) -> None:
    (tmp_path / "a.rar").write_bytes(b"")
    with pytest.raises(ValueError, match="expected an archive"):
        download.extract(tmp_path / "a.rar", tmp_path / "out")


def test_cli_marker_only_after_extraction(tmp_path: Path) -> None:
    archive = _tar(tmp_path / "c.tgz", {"c/x.txt": b"x"})
    good_md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    out = tmp_path / "out"
    argv = [archive.as_uri(), str(out), "--extract", "--done_marker", ".c.done"]
    # a truncated archive: the download succeeds, the extraction fails, no marker
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    assert download_cli.main(argv) == 1
    assert not (out / ".c.done").exists()
    # the next run (fixed archive): the stale download is replaced thanks to --md5, marker written
    archive.write_bytes(data)
    assert download_cli.main(argv + ["--md5", good_md5]) == 0
    assert (out / "c/x.txt").read_bytes() == b"x" and (out / ".c.done").is_file()
    # with the marker present nothing is done, even if the source is gone
    archive.unlink()
    (out / "c/x.txt").unlink()
    assert download_cli.main(argv) == 0
    assert not (out / "c/x.txt").exists()


def test_cli_help_runs_as_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "espnet_ext.bin.download", "--help"], capture_output=True, text=True, check=True
    )
    assert "--done_marker" in proc.stdout and "--md5" in proc.stdout


def _copy(tmp_path: Path, found: bool = True, missing=()) -> download.LocalCopy:
    return download.LocalCopy(
        "corpus-part", tmp_path / "corpus", found, tuple(missing), fix="extract it again", summary="3 chapters"
    )


def test_needs_download_complete_copy_is_used(tmp_path: Path, caplog) -> None:
    with caplog.at_level("INFO"):
        assert download.needs_download(_copy(tmp_path)) is False
        assert download.needs_download(_copy(tmp_path), download=False) is False
    assert f"corpus-part found complete at {tmp_path / 'corpus'} (3 chapters): not downloading" in caplog.text


def test_needs_download_missing_copy(tmp_path: Path, caplog) -> None:
    with caplog.at_level("INFO"):
        assert download.needs_download(_copy(tmp_path, found=False)) is True
    assert f"downloading corpus-part: missing from {tmp_path / 'corpus'}" in caplog.text
    with pytest.raises(ValueError, match=r"corpus-part: missing from .*corpus; run local/data.sh with --download true"):
        download.needs_download(_copy(tmp_path, found=False), download=False)


@pytest.mark.parametrize("download_on", [True, False])
def test_needs_download_partial_copy_is_an_error(tmp_path: Path, download_on: bool) -> None:
    partial = _copy(tmp_path, missing=["a/1/", "b/2.txt"])
    with pytest.raises(ValueError) as err:
        download.needs_download(partial, [tmp_path / "part.tar.gz"], download=download_on)
    message = str(err.value)
    assert f"corpus-part at {tmp_path / 'corpus'} is incomplete; missing: a/1/; b/2.txt." in message
    assert f"Delete {tmp_path / 'corpus'}" in message and "complete it: extract it again" in message
    assert ("--download true" in message) is not download_on


@pytest.mark.parametrize("left", ["part.tar.gz", "part.tar.gz.part"])
def test_needs_download_resumes_own_interrupted_download(tmp_path: Path, left: str, caplog) -> None:
    (tmp_path / left).write_bytes(b"half")
    partial = _copy(tmp_path, missing=["a/1/"])
    with caplog.at_level("INFO"):
        assert download.needs_download(partial, [tmp_path / "part.tar.gz"]) is True
    assert "is incomplete (a/1/) and part.tar.gz is there (an interrupted download)" in caplog.text
    with pytest.raises(ValueError, match="is incomplete"):  # nothing is resumed without --download true
        download.needs_download(partial, [tmp_path / "part.tar.gz"], download=False)


def test_listing_shows_the_first_items_and_the_rest_counted() -> None:
    assert download.listing(["a", "b"]) == "a, b"
    assert download.listing([str(i) for i in range(8)], limit=3) == "0, 1, 2, ... (5 more)"
