"""Tests of espnet_ext.data.corpora.aishell2 on the mini corpus in AISHELL-2's released layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from espnet_ext.bin import corpus as corpus_cli
from espnet_ext.data.corpora import aishell2
from espnet_ext.data.datadir import validate_data_dir
from espnet_ext.data.kaldi_files import read_map
from tools import mini_layouts

EVAL_DIRS = [f"{name}_{channel.lower()}" for channel in aishell2.CHANNELS for name in aishell2.EVAL_SETS]


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> Path:
    """The mini corpus as AISHELL-2/ with its evaluation sets (the directory holding it is returned)."""
    out = tmp_path_factory.mktemp("aishell2_native")
    mini_layouts.write_aishell2(mini_layouts.DEFAULT_CORPUS, out)
    return out


@pytest.fixture
def corpus(native: Path, tmp_path: Path) -> Path:
    """A copy of ``native``'s AISHELL-2 directory to damage."""
    shutil.copytree(native / "AISHELL-2", tmp_path / "AISHELL-2")
    return tmp_path / "AISHELL-2"


def _trans(set_dir: Path) -> dict:
    lines = (set_dir / "trans.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split("\t") for line in lines)


def _excluded(data: Path) -> dict:
    return dict(line.split("\t") for line in (data / "excluded.txt").read_text(encoding="utf-8").splitlines())


def test_prepare_released_layout(native: Path, tmp_path: Path) -> None:
    counts = aishell2.prepare_aishell2(native / "AISHELL-2", tmp_path / "data")
    assert list(counts) == ["train", *EVAL_DIRS]
    root = native / "AISHELL-2"
    set_dirs = {"train": root / "iOS/data"} | {
        f"{n}_{c.lower()}": root / "AISHELL-DEV-TEST-SET" / c / n for c in aishell2.CHANNELS for n in aishell2.EVAL_SETS
    }
    for name, set_dir in set_dirs.items():
        data = tmp_path / "data" / name
        validate_data_dir(data)
        wavs = sorted(set_dir.glob("wav/*/*.wav"))
        assert counts[name] == len(wavs) and counts[name] > 0
        scp, text, utt2spk = read_map(data / "wav.scp"), read_map(data / "text"), read_map(data / "utt2spk")
        assert scp == {p.stem: str(p.resolve()) for p in wavs}
        assert all(utt2spk[p.stem] == p.parent.name for p in wavs)  # the speaker is the <SPK> directory
        assert text == _trans(set_dir) and all(" " not in t for t in text.values())
        assert (data / "excluded.txt").read_text() == ""
    assert counts["train"] == 90 and counts["dev_ios"] == mini_layouts.AISHELL2_EVAL_UTTS
    assert set(read_map(tmp_path / "data/test_android/utt2spk").values()) == {"T0011"}


def test_corpus_dir_may_hold_aishell2(native: Path, tmp_path: Path) -> None:
    counts = aishell2.prepare_aishell2(native, tmp_path / "data")
    assert counts["train"] == 90 and len(counts) == 7


def test_text_white_space_removed(corpus: Path, tmp_path: Path) -> None:
    trans = corpus / "iOS/data/trans.txt"
    lines = trans.read_text(encoding="utf-8").splitlines()
    utt, text = lines[0].split("\t")
    lines[0] = f"{utt}\t {text[:1]} {text[1:]}  "
    trans.write_text("\n".join(lines) + "\n", encoding="utf-8")
    aishell2.prepare_aishell2(corpus, tmp_path / "data")
    assert read_map(tmp_path / "data/train/text")[utt] == text


def test_bad_input_is_listed_with_reasons(corpus: Path, tmp_path: Path) -> None:
    """Audio without a transcript line, a line without audio, an empty transcript, a 0-byte wav:
    each left out and listed; every other utterance written."""
    set_dir = corpus / "iOS/data"
    trans = _trans(set_dir)
    ids = sorted(trans)
    no_line, no_audio, empty_text, empty_wav = ids[0], ids[20], ids[40], ids[60]
    lines = [f"{u}\t{'' if u == empty_text else t}" for u, t in sorted(trans.items()) if u != no_line]
    (set_dir / "trans.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (set_dir / "wav" / no_audio[1:6] / f"{no_audio}.wav").unlink()
    (set_dir / "wav" / empty_wav[1:6] / f"{empty_wav}.wav").write_bytes(b"")
    counts = aishell2.prepare_aishell2(corpus, tmp_path / "data")
    assert counts["train"] == 90 - 4
    excluded = _excluded(tmp_path / "data/train")
    assert sorted(excluded) == sorted([no_line, no_audio, empty_text, empty_wav])
    assert excluded[no_line].startswith("no transcript line in ") and "trans.txt" in excluded[no_line]
    assert excluded[no_audio].startswith("no audio file under ") and "listed in" in excluded[no_audio]
    assert excluded[empty_text].startswith("empty transcript in ")
    assert excluded[empty_wav].startswith("empty audio file ") and excluded[empty_wav].endswith(f"{empty_wav}.wav")
    assert not set(excluded) & set(read_map(tmp_path / "data/train/wav.scp"))


def test_eval_set_bad_input_is_listed(corpus: Path, tmp_path: Path) -> None:
    set_dir = corpus / "AISHELL-DEV-TEST-SET/Mic/test"
    victim = sorted(_trans(set_dir))[0]
    (set_dir / "wav/T0011" / f"{victim}.wav").unlink()
    counts = aishell2.prepare_aishell2(corpus, tmp_path / "data")
    assert counts["test_mic"] == mini_layouts.AISHELL2_EVAL_UTTS - 1
    assert list(_excluded(tmp_path / "data/test_mic")) == [victim]
    assert _excluded(tmp_path / "data/test_ios") == {}


def test_eval_sets_are_optional_or_elsewhere(corpus: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "eval" / aishell2.DEV_TEST_NAME
    shutil.move(corpus / aishell2.DEV_TEST_NAME, elsewhere)
    shutil.rmtree(elsewhere / "Android")
    assert aishell2.prepare_aishell2(corpus, tmp_path / "only_train") == {"train": 90}
    counts = aishell2.prepare_aishell2(corpus, tmp_path / "data", dev_test_dir=elsewhere)
    assert list(counts) == ["train", "dev_ios", "test_ios", "dev_mic", "test_mic"]
    with pytest.raises(ValueError, match=r"nowhere: not found; expected AISHELL-2's evaluation sets"):
        aishell2.prepare_aishell2(corpus, tmp_path / "data", dev_test_dir=tmp_path / "nowhere")


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_missing_or_empty_corpus_dir(tmp_path: Path, make: str) -> None:
    where = tmp_path / "AISHELL-2"
    if make == "empty":
        where.mkdir()
    match = "corpus directory not found" if make == "missing" else r"no iOS/data here; expected .*iOS/data/wav/<SPK>"
    with pytest.raises(ValueError, match=match) as err:
        aishell2.prepare_aishell2(where, tmp_path / "data")
    assert str(where) in str(err.value)


@pytest.mark.parametrize("damage", ["no_transcript", "no_wav", "not_utf8", "duplicate", "all_bad"])
def test_malformed_copy_is_an_error(corpus: Path, tmp_path: Path, damage: str) -> None:
    set_dir = corpus / "iOS/data"
    trans = set_dir / "trans.txt"
    lines = trans.read_bytes().splitlines(keepends=True)
    if damage == "no_transcript":
        trans.unlink()
        match = r"iOS/data/trans.txt: not found; expected '<UTT><TAB><text>'"
    elif damage == "no_wav":
        shutil.rmtree(set_dir / "wav")
        match = r"iOS/data/wav: not found; expected wav/<SPK>/<UTT>.wav"
    elif damage == "not_utf8":
        trans.write_bytes(b"".join(lines[:2]) + b"IC0001W0003\t\xff\xfe\n" + b"".join(lines[3:]))
        match = r"trans.txt:3: not UTF-8"
    elif damage == "duplicate":
        trans.write_bytes(b"".join(lines) + lines[4])
        match = rf"trans.txt:{len(lines) + 1}: utterance IC0001W0005 appears twice"
    else:
        trans.write_text("NOSUCH\tword\n", encoding="utf-8")
        match = r"iOS/data: no usable utterances \(IC0001W0001: no transcript line"
    with pytest.raises(ValueError, match=match):
        aishell2.prepare_aishell2(corpus, tmp_path / "data")
    assert not (tmp_path / "data/train/wav.scp").exists()  # nothing half-written


def test_command_line(native: Path, tmp_path: Path, capfd) -> None:
    assert corpus_cli.main(["aishell2", "prepare", str(native), str(tmp_path / "data")]) == 0
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(["train", *EVAL_DIRS])
    assert corpus_cli.main(["aishell2", "prepare", str(tmp_path / "nowhere"), str(tmp_path / "x")]) == 1
    assert "AISHELL-2 corpus directory not found" in capfd.readouterr().err
