"""Tests of espnet_ext.data.corpora.aishell on the mini corpus in AISHELL-1's native layout."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from espnet_ext.data import mini_layouts
from espnet_ext.data.corpora import aishell
from espnet_ext.data.datadir import read_map, validate_data_dir


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> Path:
    """The mini corpus as data_aishell/ (the directory holding it is returned)."""
    out = tmp_path_factory.mktemp("aishell_native")
    mini_layouts.write_aishell(mini_layouts.DEFAULT_CORPUS, out)
    return out


@pytest.fixture(scope="module")
def tarballs(tmp_path_factory) -> Path:
    """data_aishell.tgz and resource_aishell.tgz as on openslr.org (the folder is returned)."""
    out = tmp_path_factory.mktemp("aishell_tgz")
    mini_layouts.write_aishell(mini_layouts.DEFAULT_CORPUS, out, tarballs=True)
    return out


def _copy(native: Path, tmp_path: Path) -> Path:
    shutil.copytree(native, tmp_path / "corpus")
    return tmp_path / "corpus"


def _transcript_lines(corpus: Path) -> list:
    return (corpus / "data_aishell" / aishell.TRANSCRIPT).read_text(encoding="utf-8").splitlines()


def test_prepare_native_layout(native: Path, tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        counts = aishell.prepare_aishell(native, tmp_path / "data")
    wavs = {split: sorted((native / "data_aishell/wav" / split).rglob("*.wav")) for split in aishell.SPLITS}
    assert counts == {split: len(paths) for split, paths in wavs.items()}
    assert all(counts.values())
    # the count differs from the real corpus: a warning naming the expected number, not an error
    assert any("141,925" in r.message and r.levelno == logging.WARNING for r in caplog.records)
    transcript = dict(line.split(maxsplit=1) for line in _transcript_lines(native))
    for split, paths in wavs.items():
        d = tmp_path / "data" / split
        validate_data_dir(d)
        text, scp, utt2spk = read_map(d / "text"), read_map(d / "wav.scp"), read_map(d / "utt2spk")
        assert set(scp) == {p.stem for p in paths}  # the split is the corpus's own wav/<split>
        for utt, path in scp.items():
            assert Path(path).is_file() and Path(path).parent.name == utt2spk[utt]
            assert " " not in text[utt] and text[utt] == transcript[utt].replace(" ", "")
        assert (d / "excluded.txt").read_text() == ""


def test_corpus_dir_may_be_data_aishell_itself(native: Path, tmp_path: Path) -> None:
    counts = aishell.prepare_aishell(native / "data_aishell", tmp_path / "data")
    assert sum(counts.values()) == len(_transcript_lines(native))


def test_audio_without_transcript_is_listed(native: Path, tmp_path: Path) -> None:
    corpus = _copy(native, tmp_path)
    lines = _transcript_lines(corpus)
    dropped, emptied = lines[0].split()[0], lines[1].split()[0]
    kept = [f"{emptied}"] + lines[2:]
    (corpus / "data_aishell" / aishell.TRANSCRIPT).write_text("\n".join(kept) + "\n", encoding="utf-8")
    counts = aishell.prepare_aishell(corpus, tmp_path / "data")
    assert sum(counts.values()) == len(lines) - 2
    split = next(s for s in aishell.SPLITS if list((corpus / "data_aishell/wav" / s).rglob(dropped + ".wav")))
    excluded = dict(line.split("\t") for line in (tmp_path / "data" / split / "excluded.txt").read_text().splitlines())
    assert "no transcript line" in excluded[dropped] and aishell.TRANSCRIPT.name in excluded[dropped]
    assert "empty transcript" in excluded[emptied]
    assert dropped not in read_map(tmp_path / "data" / split / "wav.scp")


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_missing_or_empty_corpus_dir(tmp_path: Path, make: str) -> None:
    corpus = tmp_path / "nowhere"
    if make == "empty":
        corpus.mkdir()
    with pytest.raises(ValueError, match="data_aishell") as err:
        aishell.prepare_aishell(corpus, tmp_path / "data")
    assert str(corpus) in str(err.value)


def test_missing_transcript(native: Path, tmp_path: Path) -> None:
    corpus = _copy(native, tmp_path)
    (corpus / "data_aishell" / aishell.TRANSCRIPT).unlink()
    with pytest.raises(ValueError, match="aishell_transcript_v0.8.txt: AISHELL-1 transcript not found"):
        aishell.prepare_aishell(corpus, tmp_path / "data")


def test_unextracted_speaker_tarballs_are_named(native: Path, tmp_path: Path) -> None:
    corpus = _copy(native, tmp_path)
    shutil.rmtree(corpus / "data_aishell/wav/dev")
    (corpus / "data_aishell/wav/S0724.tar.gz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"wav/dev: not found.*S0724.tar.gz.*not extracted"):
        aishell.prepare_aishell(corpus, tmp_path / "data")


def test_download_extracts_speaker_tarballs_then_marks_done(tarballs: Path, native: Path, tmp_path: Path) -> None:
    target = tmp_path / "db"
    root = aishell.download_aishell(target, base_url=tarballs.as_uri())
    assert root == target / "data_aishell"
    assert (target / aishell.DONE_MARKER).is_file()
    assert (target / "resource_aishell" / "lexicon.txt").is_file()
    assert not list((root / "wav").glob("*.tar.gz"))  # the per-speaker tarballs are gone once extracted
    got = sorted(p.relative_to(root) for p in root.rglob("*.wav"))
    assert got == sorted(p.relative_to(native / "data_aishell") for p in (native / "data_aishell").rglob("*.wav"))
    # done: a re-run touches nothing, even with the archives unreachable
    aishell.download_aishell(target, base_url=(tmp_path / "gone").as_uri())


def test_interrupted_extraction_is_redone(tarballs: Path, native: Path, tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "db"
    real_extract, calls = aishell.extract, []

    def failing_extract(archive, dest_dir, **kwargs):
        calls.append(Path(archive).name)
        if len(calls) == 4:  # the outer archives, then the second speaker tarball
            raise OSError("disk full (simulated)")
        return real_extract(archive, dest_dir, **kwargs)

    monkeypatch.setattr(aishell, "extract", failing_extract)
    with pytest.raises(OSError, match="simulated"):
        aishell.download_aishell(target, base_url=tarballs.as_uri())
    assert not (target / aishell.DONE_MARKER).exists()
    monkeypatch.setattr(aishell, "extract", real_extract)
    aishell.download_aishell(target, base_url=tarballs.as_uri())
    assert (target / aishell.DONE_MARKER).is_file()
    counts = aishell.prepare_aishell(target, tmp_path / "data")
    assert sum(counts.values()) == len(_transcript_lines(native))


def test_cli(native: Path, tmp_path: Path) -> None:
    assert aishell.main(["prepare", str(native), str(tmp_path / "data")]) == 0
    assert (tmp_path / "data/train/wav.scp").is_file()
    assert aishell.main(["prepare", str(tmp_path / "nowhere"), str(tmp_path / "data2")]) == 1
