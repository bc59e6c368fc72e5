"""LibriSpeech preparation and download (espnet_ext.data.corpora.librispeech) on the mini corpus
laid out as LibriSpeech (tools.mini_layouts): directory tree and openslr tarballs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from espnet_ext.bin import corpus as corpus_cli
from espnet_ext.data.corpora import librispeech as ls
from espnet_ext.data.datadir import validate_data_dir
from espnet_ext.data.kaldi_files import read_map
from tools import mini_corpus, mini_layouts

CORPUS = mini_layouts.DEFAULT_CORPUS
MINI_PARTS = mini_layouts.LIBRISPEECH_PARTS


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    """A pristine mini LibriSpeech tree (tests that damage it work on a copy)."""
    return mini_layouts.write_librispeech(CORPUS, tmp_path_factory.mktemp("ls")).path


@pytest.fixture(scope="module")
def tarballs(tmp_path_factory) -> Path:
    return mini_layouts.write_librispeech(CORPUS, tmp_path_factory.mktemp("tar"), tarballs=True).path


@pytest.fixture
def copy(layout, tmp_path) -> Path:
    return Path(shutil.copytree(layout, tmp_path / "LibriSpeech"))


def excluded(data_dir: Path) -> dict:
    lines = (data_dir / "excluded.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split("\t", 1) for line in lines)


def test_prepare_writes_every_part(layout, tmp_path):
    results = ls.prepare_librispeech(layout.parent, tmp_path, MINI_PARTS)
    _, utts = mini_corpus.load_language(CORPUS, "en")
    mini_texts = sorted(u.text.upper() for u in utts)
    texts = []
    for part, result in results.items():
        d = tmp_path / part.replace("-", "_")
        assert result.data_dir == d and validate_data_dir(d) == result.count
        assert excluded(d) == {}
        wav, text, utt2spk = read_map(d / "wav.scp"), read_map(d / "text"), read_map(d / "utt2spk")
        for utt, path in wav.items():
            reader, chapter, _ = utt.split("-")
            assert Path(path).is_absolute() and Path(path).is_file()
            assert Path(path).parts[-4:] == (part, reader, chapter, f"{utt}.flac")
            assert utt2spk[utt] == f"{reader}-{chapter}"
            assert text[utt] == text[utt].upper()
        texts += text.values()
    assert sorted(texts) == mini_texts  # every utterance once, transcripts as distributed
    speakers = {part: {u.split("-")[0] for u in read_map(r.data_dir / "text")} for part, r in results.items()}
    assert all(not (speakers[a] & speakers[b]) for a in MINI_PARTS for b in MINI_PARTS if a < b)


def test_corpus_root_is_the_parent_or_librispeech_itself(layout, tmp_path):
    assert ls.find_corpus_root(layout.parent) == layout
    assert ls.find_corpus_root(layout) == layout
    a = ls.prepare_part(layout, "dev-clean", tmp_path / "a")
    b = ls.prepare_librispeech(layout.parent, tmp_path / "b", ["dev-clean"])["dev-clean"]
    assert (a.data_dir / "text").read_text() == (b.data_dir / "text").read_text()


def test_missing_or_empty_corpus_directory(tmp_path):
    with pytest.raises(ValueError, match=r"nowhere: no such directory.*LIBRISPEECH in db.sh"):
        ls.find_corpus_root(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: expected LibriSpeech/<part>/"):
        ls.find_corpus_root(tmp_path / "empty")
    (tmp_path / "empty" / "LibriSpeech" / "dev-clean").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"dev-clean: empty; expected <reader>/<chapter>/"):
        ls.prepare_librispeech(tmp_path / "empty", tmp_path / "out", ["dev-clean"])
    with pytest.raises(ValueError, match=r"test-other: no such directory; expected LibriSpeech's test-other"):
        ls.prepare_librispeech(tmp_path / "empty", tmp_path / "out", ["test-other"])
    with pytest.raises(ValueError, match="expected LibriSpeech parts among"):
        ls.prepare_librispeech(tmp_path / "empty", tmp_path / "out", ["train-clean-5"])


def test_missing_transcripts_and_audio_are_excluded_and_listed(copy, tmp_path):
    chapters = sorted(p for p in (copy / "dev-clean").glob("*/*") if p.is_dir())
    no_trans = chapters[0] / f"{chapters[0].parent.name}-{chapters[0].name}.trans.txt"
    lost = sorted(p.stem for p in chapters[0].glob("*.flac"))
    no_trans.unlink()
    trans = next(chapters[1].glob("*.trans.txt"))
    lines = trans.read_text().splitlines()
    dropped_line = lines[0].split()[0]
    trans.write_text("\n".join(lines[1:]) + "\n")
    flacs = sorted(chapters[1].glob("*.flac"))
    flacs[-1].unlink()
    flacs[-2].write_bytes(b"")
    result = ls.prepare_part(copy, "dev-clean", tmp_path)
    reasons = excluded(result.data_dir)
    assert {u: reasons[u] for u in lost} == {u: f"no transcript file {no_trans}" for u in lost}
    assert reasons[dropped_line] == f"no line in {trans}"
    assert reasons[flacs[-1].stem] == f"no audio file {flacs[-1]}"
    assert reasons[flacs[-2].stem] == f"empty audio file {flacs[-2]}"
    assert len(reasons) == len(lost) + 3
    kept = read_map(result.data_dir / "text")
    assert result.count == len(kept) == 30 - len(reasons) and not kept.keys() & reasons.keys()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"470-11000-0000\n", r"trans.txt:1: expected '\d+-\d+-<nnnn> TRANSCRIPT'"),
        (b"999-1-0000 WRONG CHAPTER\n", r"trans.txt:1: expected"),
        (b"X YES\n", r"trans.txt:1: expected"),
        (b"\xff\xfe garbage\n", r"trans.txt: not UTF-8 text"),
    ],
)
def test_corrupt_transcript_file_names_the_file(copy, tmp_path, content, message):
    chapter = sorted(p for p in (copy / "dev-clean").glob("*/*") if p.is_dir())[0]
    trans = chapter / f"{chapter.parent.name}-{chapter.name}.trans.txt"
    trans.write_bytes(content)
    with pytest.raises(ValueError, match=message) as err:
        ls.prepare_part(copy, "dev-clean", tmp_path)
    assert str(trans) in str(err.value)


def test_duplicate_transcript_line_is_an_error(copy, tmp_path):
    trans = sorted((copy / "dev-clean").glob("*/*/*.trans.txt"))[0]
    first = trans.read_text().splitlines()[0]
    trans.write_text(trans.read_text() + first + "\n")
    with pytest.raises(ValueError, match=rf"trans.txt:\d+: utterance {first.split()[0]} appears twice"):
        ls.prepare_part(copy, "dev-clean", tmp_path)


def test_download_from_file_urls_extracts_then_marks(tarballs, tmp_path):
    url = tarballs.as_uri()
    root = ls.download_librispeech(tmp_path, ["dev-other", "test-other"], base_url=url, verify_md5=False)
    assert root == tmp_path / "LibriSpeech"
    for part in ("dev-other", "test-other"):
        assert (root / part / ".complete").read_text().strip() == f"{url}/{part}.tar.gz"
    assert not (root / "dev-clean").exists()
    # the markers make a second call a no-op (the archives' source is gone)
    moved = shutil.move(str(tarballs / "dev-other.tar.gz"), tmp_path / "elsewhere.tar.gz")
    try:
        ls.download_librispeech(tmp_path, ["dev-other"], base_url=url, verify_md5=False)
    finally:
        shutil.move(moved, tarballs / "dev-other.tar.gz")
    result = ls.prepare_part(root, "dev-other", tmp_path / "data")
    assert result.count == 15 and result.excluded == {}


def test_download_checks_openslr_md5(tarballs, tmp_path):
    with pytest.raises(ValueError, match=rf"md5 mismatch.*expected {ls.MD5['test-other']}, got [0-9a-f]{{32}}"):
        ls.download_librispeech(tmp_path, ["test-other"], base_url=tarballs.as_uri())
    assert not (tmp_path / "LibriSpeech" / "test-other" / ".complete").exists()
    assert not (tmp_path / "test-other.tar.gz").exists()


def test_command_line_reports_errors(tmp_path, capsys):
    assert (
        corpus_cli.main(
            ["librispeech", "prepare", str(tmp_path / "missing"), str(tmp_path / "out"), "--parts", "dev-clean"]
        )
        == 1
    )
    assert "ERROR: " + str(tmp_path / "missing") + ": no such directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        corpus_cli.main(["librispeech", "prepare", str(tmp_path), str(tmp_path / "out"), "--parts", "dev-clean-2"])


def _no_download(url, dest_dir, **kwargs):
    raise AssertionError(f"unexpected download of {url}")


def test_complete_copy_without_markers_is_used(copy, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(ls, "fetch_and_extract", _no_download)
    with caplog.at_level("INFO"):
        root = ls.download_librispeech(copy.parent, MINI_PARTS, base_url=(tmp_path / "gone").as_uri())
    assert root == copy and not list(copy.glob("*/.complete"))
    for part in MINI_PARTS:
        chapters = len(list((copy / part).glob("*/*")))
        assert (
            f"{part} found complete at {copy / part} ({chapters} chapters, every one CHAPTERS.TXT lists): "
            "not downloading"
        ) in caplog.text
    assert ls.download_librispeech(copy, ["dev-clean"], base_url=(tmp_path / "gone").as_uri()) == copy
    # without CHAPTERS.TXT a part is checked by the chapters it has
    (copy / ls.CHAPTERS).unlink()
    assert ls.check_part(copy, "dev-other").complete
    assert ls.prepare_librispeech(copy, tmp_path / "data", ["dev-other"], require_complete=True)["dev-other"].count


def test_only_the_missing_part_is_downloaded(copy, tarballs, tmp_path, caplog):
    shutil.rmtree(copy / "test-other")
    server = tmp_path / "server"  # holds test-other.tar.gz only: fetching any other part fails
    server.mkdir()
    shutil.copy(tarballs / "test-other.tar.gz", server)
    with caplog.at_level("INFO"):
        ls.download_librispeech(copy.parent, MINI_PARTS, base_url=server.as_uri(), verify_md5=False)
    assert f"downloading test-other: missing from {copy / 'test-other'}" in caplog.text
    assert caplog.text.count("downloading ") == 1
    assert [p.parent.name for p in copy.glob("*/.complete")] == ["test-other"]
    assert ls.prepare_part(copy, "test-other", tmp_path / "data").count == 15


@pytest.mark.parametrize("damage", ["chapter", "flac", "trans"])
def test_partial_part_is_an_error_naming_what_is_missing(copy, tmp_path, monkeypatch, damage):
    monkeypatch.setattr(ls, "fetch_and_extract", _no_download)
    chapter = sorted(p for p in (copy / "dev-clean").glob("*/*") if p.is_dir())[1]
    reader_chapter = f"{chapter.parent.name}/{chapter.name}"
    if damage == "chapter":  # an extraction that stopped before this chapter
        shutil.rmtree(chapter)
        expected = rf"missing: 1 of the 4 chapter directories that CHAPTERS.TXT lists for dev-clean: {reader_chapter}\."
    elif damage == "flac":  # ... inside it
        sorted(chapter.glob("*.flac"))[-1].unlink()
        expected = rf"files in 1 of its 4 chapters: {reader_chapter}/: 1 .flac files that \S+.trans.txt lists"
    else:
        next(chapter.glob("*.trans.txt")).unlink()
        expected = rf"files in 1 of its 4 chapters: {reader_chapter}/{chapter.parent.name}-{chapter.name}.trans.txt"
    shutil.rmtree(copy / "test-other")  # missing, and would be downloaded, but the partial part stops everything
    with pytest.raises(ValueError, match=expected) as err:
        ls.download_librispeech(copy.parent, MINI_PARTS, base_url=(tmp_path / "gone").as_uri())
    assert f"dev-clean at {copy / 'dev-clean'} is incomplete" in str(err.value)
    assert f"Delete {copy / 'dev-clean'} to download it again" in str(err.value)
    # --download false: both the partial and the missing part are named before anything is prepared
    with pytest.raises(ValueError, match=expected) as err:
        ls.prepare_librispeech(copy.parent, tmp_path / "data", MINI_PARTS, require_complete=True)
    assert f"test-other: missing from {copy / 'test-other'}" in str(err.value)
    assert not (tmp_path / "data").exists()


def test_interrupted_download_of_a_part_is_resumed(copy, tarballs, tmp_path, caplog):
    shutil.rmtree(sorted((copy / "dev-other").glob("*/*"))[0])
    shutil.copy(tarballs / "dev-other.tar.gz", copy.parent)  # the archive of an unfinished download
    with caplog.at_level("INFO"):
        ls.download_librispeech(copy.parent, ["dev-other"], base_url=(tmp_path / "gone").as_uri(), verify_md5=False)
    assert "dev-other.tar.gz is there (an interrupted download)" in caplog.text
    assert (copy / "dev-other/.complete").is_file() and ls.check_part(copy, "dev-other", ()).complete
    assert ls.prepare_part(copy, "dev-other", tmp_path / "data").count == 15


def test_parts_in_the_corpus_dir_itself_are_not_hidden_by_a_download(copy, tmp_path):
    shutil.rmtree(copy / "test-other")
    with pytest.raises(ValueError, match=r"holds LibriSpeech's parts itself.*to download test-other"):
        ls.download_librispeech(copy, ["dev-clean", "test-other"], base_url=(tmp_path / "gone").as_uri())
    assert not (copy / "LibriSpeech").exists()
