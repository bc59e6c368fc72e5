"""Tests of espnet_ext.data.corpora.jsut on the mini corpus in JSUT 1.1's native layout."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import soundfile as sf

from espnet_ext.bin import corpus as corpus_cli
from espnet_ext.data.corpora import jsut
from espnet_ext.data.datadir import validate_data_dir
from espnet_ext.data.kaldi_files import read_map
from tools import mini_layouts


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> Path:
    """The mini corpus as jsut_ver1.1/ (the directory holding it is returned)."""
    out = tmp_path_factory.mktemp("jsut_native")
    mini_layouts.write_jsut(mini_layouts.DEFAULT_CORPUS, out)
    return out


def _copy(native: Path, tmp_path: Path) -> Path:
    shutil.copytree(native, tmp_path / "corpus")
    return tmp_path / "corpus"


def _ids(root: Path, subset: str) -> list:
    return sorted(p.stem for p in (root / jsut.ROOT_NAME / subset / "wav").glob("*.wav"))


def _excluded(path: Path) -> dict:
    return dict(line.split("\t") for line in path.read_text(encoding="utf-8").splitlines())


def test_prepare_splits_like_espnet(native: Path, tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        counts = jsut.prepare_jsut(native, tmp_path / "data", num_dev=10, num_eval=12)
    basic = _ids(native, "basic5000")
    present = [s for s in jsut.SUBSETS if (native / jsut.ROOT_NAME / s).is_dir()]
    others = [u for s in present if s != "basic5000" for u in _ids(native, s)]
    assert len(present) < len(jsut.SUBSETS)
    data = {s: read_map(tmp_path / "data" / s / "wav.scp") for s in jsut.SPLIT_NAMES}
    assert sorted(data["eval1"]) == basic[:12]
    assert sorted(data["dev"]) == basic[12:22]
    assert sorted(data["tr_no_dev"]) == sorted(basic[22:] + others)
    assert counts == {s: len(v) for s, v in data.items()}
    for split in jsut.SPLIT_NAMES:
        validate_data_dir(tmp_path / "data" / split)
        assert set(read_map(tmp_path / "data" / split / "utt2spk").values()) == {jsut.SPEAKER}
    # the transcript text is kept as written
    line = (native / jsut.ROOT_NAME / "basic5000/transcript_utf8.txt").read_text(encoding="utf-8").splitlines()[0]
    utt, text = line.split(":", 1)
    assert read_map(tmp_path / "data/eval1/text")[utt] == text
    # the audio is the corpus's 48 kHz files (stage 3 resamples)
    assert sf.info(data["eval1"][utt]).samplerate == 48000
    # missing subsets are listed in a warning, not an error
    missing = [s for s in jsut.SUBSETS if s not in present]
    warning = next(r.getMessage() for r in caplog.records if "subsets are missing" in r.getMessage())
    assert all(s in warning for s in missing)


def test_default_split_sizes_need_500_basic5000_utterances(native: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--num_eval 250 plus --num_dev 250"):
        jsut.prepare_jsut(native, tmp_path / "data")


def test_left_out_utterances_are_listed(native: Path, tmp_path: Path) -> None:
    corpus = _copy(native, tmp_path)
    root = corpus / jsut.ROOT_NAME
    basic_lines = (root / "basic5000/transcript_utf8.txt").read_text(encoding="utf-8").splitlines()
    no_text = basic_lines[-1].split(":")[0]
    (root / "basic5000/transcript_utf8.txt").write_text(
        "\n".join(basic_lines[:-1] + ["BASIC5000_9999:ghost"]) + "\n", encoding="utf-8"
    )
    other = next(s for s in jsut.SUBSETS if s != "basic5000" and (root / s).is_dir())
    (root / other / "transcript_utf8.txt").unlink()
    jsut.prepare_jsut(corpus, tmp_path / "data", num_dev=5, num_eval=5)
    excluded = _excluded(tmp_path / "data/tr_no_dev/excluded.txt")
    assert "no transcript line" in excluded[no_text]
    assert "no audio file" in excluded["BASIC5000_9999"]
    for utt in _ids(corpus, other):
        assert "transcript_utf8.txt" in excluded[utt]
    train = read_map(tmp_path / "data/tr_no_dev/wav.scp")
    assert no_text not in train and not set(_ids(corpus, other)) & set(train)


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_missing_or_empty_corpus_dir(tmp_path: Path, make: str) -> None:
    corpus = tmp_path / "nowhere"
    if make == "empty":
        corpus.mkdir()
    with pytest.raises(ValueError, match="jsut_ver1.1") as err:
        jsut.prepare_jsut(corpus, tmp_path / "data", 5, 5)
    assert str(corpus) in str(err.value)


def test_missing_basic5000_transcript(native: Path, tmp_path: Path) -> None:
    corpus = _copy(native, tmp_path)
    (corpus / jsut.ROOT_NAME / "basic5000/transcript_utf8.txt").unlink()
    with pytest.raises(ValueError, match="basic5000/transcript_utf8.txt: not found"):
        jsut.prepare_jsut(corpus, tmp_path / "data", 5, 5)


def test_malformed_transcript_line_names_file_and_line(native: Path, tmp_path: Path) -> None:
    corpus = _copy(native, tmp_path)
    path = corpus / jsut.ROOT_NAME / "basic5000/transcript_utf8.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:2] + ["no colon here"] + lines[2:]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"transcript_utf8.txt:3: expected '<ID>:<text>'"):
        jsut.prepare_jsut(corpus, tmp_path / "data", 5, 5)


def test_download_zip_then_marker(tmp_path: Path, native: Path) -> None:
    mini_layouts.write_jsut(mini_layouts.DEFAULT_CORPUS, tmp_path / "zip", make_zip=True)
    root = jsut.download_jsut(tmp_path / "db", base_url=(tmp_path / "zip").as_uri())
    assert (tmp_path / "db" / jsut.DONE_MARKER).is_file()
    assert sorted(p.relative_to(root) for p in root.rglob("*.wav")) == sorted(
        p.relative_to(native / jsut.ROOT_NAME) for p in (native / jsut.ROOT_NAME).rglob("*.wav")
    )
    shutil.rmtree(tmp_path / "zip")  # done: nothing is fetched again
    jsut.download_jsut(tmp_path / "db", base_url=(tmp_path / "zip").as_uri())
    assert (
        corpus_cli.main(
            ["jsut", "prepare", str(tmp_path / "db"), str(tmp_path / "data"), "--num_dev", "5", "--num_eval", "5"]
        )
        == 0
    )
    assert corpus_cli.main(["jsut", "prepare", str(tmp_path / "db"), str(tmp_path / "data")]) == 1  # 250 + 250 > 75


def test_missing_basic5000_is_an_error(native: Path, tmp_path: Path) -> None:
    corpus = _copy(native, tmp_path)
    shutil.rmtree(corpus / jsut.ROOT_NAME / "basic5000")
    with pytest.raises(ValueError, match="no jsut_ver1.1/basic5000"):
        jsut.prepare_jsut(corpus, tmp_path / "data", 5, 5)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """jsut_ver1.1.zip as distributed (the folder is returned)."""
    out = tmp_path_factory.mktemp("jsut_zip")
    mini_layouts.write_jsut(mini_layouts.DEFAULT_CORPUS, out, make_zip=True)
    return out


def _no_download(url, dest_dir, **kwargs):
    raise AssertionError(f"unexpected download of {url}")


def test_complete_copy_without_marker_is_used(native: Path, tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(jsut, "fetch_and_extract", _no_download)
    corpus = _copy(native, tmp_path)  # unzipped by hand: no marker
    with caplog.at_level(logging.INFO):
        root = jsut.download_jsut(corpus, base_url=(tmp_path / "gone").as_uri())
    assert root == corpus / jsut.ROOT_NAME and not (corpus / jsut.DONE_MARKER).exists()
    assert f"JSUT 1.1 found complete at {root} (3 subsets of 9): not downloading" in caplog.text
    assert jsut.download_jsut(root, base_url=(tmp_path / "gone").as_uri()) == root  # jsut_ver1.1 itself
    counts = jsut.prepare_jsut(corpus, tmp_path / "data", 5, 5, require_complete=True)
    assert sum(counts.values()) == len(list(root.rglob("*.wav")))


@pytest.mark.parametrize("damage", ["wavs", "transcript"])
def test_partial_copy_is_an_error_naming_what_is_missing(
    native: Path, tmp_path: Path, monkeypatch, damage: str
) -> None:
    monkeypatch.setattr(jsut, "fetch_and_extract", _no_download)
    corpus = _copy(native, tmp_path)
    root = corpus / jsut.ROOT_NAME
    if damage == "wavs":  # an unzip that stopped inside basic5000/wav
        for path in sorted((root / "basic5000/wav").glob("*.wav"))[-2:]:
            path.unlink()
        expected = (
            rf"basic5000/wav/: 2 of the {len(_ids(native, 'basic5000'))} files listed in "
            r"basic5000/transcript_utf8.txt \(BASIC5000_\d{4}.wav, BASIC5000_\d{4}.wav\)"
        )
    else:
        (root / "onomatopee300/transcript_utf8.txt").unlink()
        expected = r"missing: onomatopee300/transcript_utf8.txt\."
    with pytest.raises(ValueError, match=expected) as err:
        jsut.download_jsut(corpus, base_url=(tmp_path / "gone").as_uri())
    assert f"JSUT 1.1 at {root} is incomplete" in str(err.value) and f"Delete {root}" in str(err.value)
    with pytest.raises(ValueError, match=expected):  # --download false: the same check before preparing
        jsut.prepare_jsut(corpus, tmp_path / "data", 5, 5, require_complete=True)
    assert not (tmp_path / "data").exists()


def test_copy_claiming_the_published_corpus_needs_all_subsets(tmp_path: Path) -> None:
    """basic5000 with the published 5,000 utterances is the published corpus: all nine subsets are
    required; the same copy with one utterance fewer is checked by the subsets it has."""
    basic = tmp_path / jsut.ROOT_NAME / "basic5000"
    (basic / "wav").mkdir(parents=True)
    ids = [f"BASIC5000_{n:04d}" for n in range(1, 5001)]
    for utt in ids:
        (basic / "wav" / f"{utt}.wav").write_bytes(b"")
    (basic / "transcript_utf8.txt").write_text("".join(f"{u}:テキスト\n" for u in ids), encoding="utf-8")
    copy = jsut.check_jsut(tmp_path)
    assert copy.found and copy.missing == tuple(f"{name}/" for name in jsut.SUBSETS if name != "basic5000")
    (basic / "transcript_utf8.txt").write_text("".join(f"{u}:テキスト\n" for u in ids[1:]), encoding="utf-8")
    assert jsut.check_jsut(tmp_path).complete


def test_interrupted_download_is_resumed_and_nothing_there_downloaded(
    site: Path, native: Path, tmp_path: Path, caplog
) -> None:
    db = tmp_path / "db"
    with caplog.at_level(logging.INFO):
        jsut.download_jsut(db, base_url=site.as_uri())
    assert f"downloading JSUT 1.1: missing from {db / jsut.ROOT_NAME}" in caplog.text
    # an unzip that stopped: no marker, a subset half there, the zip still in place: extracted again
    (db / jsut.DONE_MARKER).unlink()
    shutil.rmtree(db / jsut.ROOT_NAME / "voiceactress100/wav")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        jsut.download_jsut(db, base_url=(tmp_path / "gone").as_uri())
    assert "jsut_ver1.1.zip is there (an interrupted download)" in caplog.text
    assert (db / jsut.DONE_MARKER).is_file() and _ids(db, "voiceactress100") == _ids(native, "voiceactress100")
