"""Tests of espnet_ext.data.corpora.aishell on the mini corpus in AISHELL-1's native layout."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from espnet_ext.bin import corpus as corpus_cli
from espnet_ext.data.corpora import aishell
from espnet_ext.data.datadir import validate_data_dir
from espnet_ext.data.kaldi_files import read_map
from tools import mini_layouts


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


def test_interrupted_extraction_is_redone(tarballs: Path, native: Path, tmp_path: Path, monkeypatch, caplog) -> None:
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
    with caplog.at_level(logging.INFO):  # a partial copy, but with its archive beside it: resumed, not refused
        aishell.download_aishell(target, base_url=tarballs.as_uri())
    assert "data_aishell.tgz is there (an interrupted download)" in caplog.text
    assert (target / aishell.DONE_MARKER).is_file()
    counts = aishell.prepare_aishell(target, tmp_path / "data")
    assert sum(counts.values()) == len(_transcript_lines(native))


def test_cli(native: Path, tmp_path: Path) -> None:
    assert corpus_cli.main(["aishell", "prepare", str(native), str(tmp_path / "data")]) == 0
    assert (tmp_path / "data/train/wav.scp").is_file()
    assert corpus_cli.main(["aishell", "prepare", str(tmp_path / "nowhere"), str(tmp_path / "data2")]) == 1


def _no_fetch(url, dest, **kwargs):
    raise AssertionError(f"unexpected download of {url}")


def test_complete_copy_without_marker_is_used(native: Path, tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(aishell, "fetch", _no_fetch)
    corpus = _copy(native, tmp_path)  # data_aishell/ as extracted by hand: no marker, no resource_aishell/
    wavs = len(list(native.rglob("*.wav")))
    with caplog.at_level(logging.INFO):
        root = aishell.download_aishell(corpus, base_url=(tmp_path / "gone").as_uri())
    assert root == corpus / "data_aishell"
    speakers = len([p for p in root.glob("wav/*/*") if p.is_dir()])
    assert f"AISHELL-1 found complete at {root} ({speakers} speakers, {wavs} wav files): not downloading" in caplog.text
    assert not (corpus / aishell.DONE_MARKER).exists()  # the user's copy is left as it is
    assert not (corpus / "resource_aishell").exists()  # not needed by the recipe: not fetched
    # data_aishell itself as the corpus directory; and the prepare-time check agrees
    assert aishell.download_aishell(root, base_url=(tmp_path / "gone").as_uri()) == root
    assert sum(aishell.prepare_aishell(corpus, tmp_path / "data", require_complete=True).values()) == wavs


@pytest.mark.parametrize("damage", ["tarball", "speaker", "transcript"])
def test_partial_copy_is_an_error_naming_what_is_missing(
    native: Path, tmp_path: Path, monkeypatch, damage: str
) -> None:
    monkeypatch.setattr(aishell, "fetch", _no_fetch)
    corpus = _copy(native, tmp_path)
    wav = corpus / "data_aishell/wav"
    if damage == "transcript":
        (corpus / "data_aishell" / aishell.TRANSCRIPT).unlink()
        expected = r"missing: transcript/aishell_transcript_v0.8.txt \(the transcript"
    else:  # one dev speaker not extracted: its tarball still there, or nothing at all
        shutil.rmtree(wav / "dev/S0724")
        if damage == "tarball":
            (wav / "S0724.tar.gz").write_bytes(b"")
        note = r" \(S0724.tar.gz not extracted\)" if damage == "tarball" else r"\."
        expected = rf"for 1 of the 6 speakers in aishell_transcript_v0.8.txt: S0724{note}"
    with pytest.raises(ValueError, match=expected) as err:
        aishell.download_aishell(corpus, base_url=(tmp_path / "gone").as_uri())
    assert f"AISHELL-1 at {corpus / 'data_aishell'} is incomplete" in str(err.value)
    assert f"Delete {corpus / 'data_aishell'} to download it again, or complete it" in str(err.value)
    with pytest.raises(ValueError, match=expected):  # --download false: the same check before preparing
        aishell.prepare_aishell(corpus, tmp_path / "data", require_complete=True)
    assert not (tmp_path / "data").exists()


def test_copy_claiming_the_published_corpus_needs_its_wav_count(tmp_path: Path) -> None:
    """A transcript naming the 400 published speakers: every one extracted is not enough when
    their wav files fall short of the published 141,925 (a tarball extracted in part)."""
    root = tmp_path / "data_aishell"
    speakers = [f"S{n:04d}" for n in range(2, 2 + aishell.PUBLISHED_SPEAKERS)]
    lines = []
    for n, spk in enumerate(speakers):
        split = "train" if n < 340 else "dev" if n < 380 else "test"
        (root / "wav" / split / spk).mkdir(parents=True)
        (root / "wav" / split / spk / f"BAC009{spk}W0121.wav").write_bytes(b"")
        lines.append(f"BAC009{spk}W0121 你好")
    (root / aishell.TRANSCRIPT).parent.mkdir()
    (root / aishell.TRANSCRIPT).write_text("\n".join(lines) + "\n", encoding="utf-8")
    copy = aishell.check_aishell(tmp_path)
    assert copy.found and not copy.complete
    assert copy.missing == (
        "wav files: 400 found, the published corpus (whose 400 speakers the transcript names) "
        "has 141,925: some speaker tarballs were extracted only in part",
    )
    # the same copy with one speaker fewer in its transcript makes no such claim
    (root / aishell.TRANSCRIPT).write_text("\n".join(lines[1:]) + "\n", encoding="utf-8")
    assert aishell.check_aishell(tmp_path).complete


def test_nothing_there_is_downloaded(tarballs: Path, tmp_path: Path, caplog) -> None:
    target = tmp_path / "db"
    (target / "data_aishell").mkdir(parents=True)  # an empty directory holds nothing to keep
    with caplog.at_level(logging.INFO):
        aishell.download_aishell(target, base_url=tarballs.as_uri())
    assert f"downloading AISHELL-1: missing from {target / 'data_aishell'}" in caplog.text
    assert (target / aishell.DONE_MARKER).is_file() and (target / "resource_aishell").is_dir()
    with pytest.raises(
        ValueError,
        match=r"AISHELL-1: missing from .*nowhere/data_aishell; run local/data.sh "
        r"with --download true",
    ):
        aishell.prepare_aishell(tmp_path / "nowhere", tmp_path / "data", require_complete=True)
