"""Libri-light's limited-supervision splits (espnet_ext.data.corpora.librilight) on the mini
corpus's LibriSpeech train-clean-100 laid out as librispeech_finetuning/ (mini_layouts)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from espnet_ext.bin import corpus as corpus_cli
from espnet_ext.data.corpora import librilight
from espnet_ext.data.datadir import validate_data_dir
from espnet_ext.data.kaldi_files import read_map
from tools import mini_layouts


@pytest.fixture(scope="module")
def librispeech(tmp_path_factory) -> Path:
    return mini_layouts.write_librispeech(mini_layouts.DEFAULT_CORPUS, tmp_path_factory.mktemp("ls")).path


@pytest.fixture(scope="module")
def layout(librispeech, tmp_path_factory) -> Path:
    return mini_layouts.write_librilight_finetuning(librispeech, tmp_path_factory.mktemp("ll")).path


def utterances_under(root: Path, *dirs: str) -> dict:
    """{id: text} of every .trans.txt line under the given directories (an independent reading)."""
    found = {}
    for d in dirs:
        for trans in sorted((root / d).glob("*/*/*/*.trans.txt")):
            for line in trans.read_text(encoding="utf-8").splitlines():
                utt, text = line.split(maxsplit=1)
                found[utt] = text
    return found


def test_splits_are_the_nested_directories(layout, librispeech, tmp_path):
    folds = [f"1h/{n}" for n in range(6)]
    for split, dirs in (("10min", folds[:1]), ("1h", folds), ("10h", folds + ["9h"])):
        result = librilight.prepare_librilight(layout.parent, tmp_path, split)
        d = tmp_path / f"train_{split}"
        assert result.data_dir == d and validate_data_dir(d) == result.count
        assert read_map(d / "text") == utterances_under(layout, *dirs)
        assert (d / "excluded.txt").read_text() == ""
        for utt, path in read_map(d / "wav.scp").items():
            reader, chapter, _ = utt.split("-")
            assert Path(path).is_absolute() and Path(path).parts[-3:] == (reader, chapter, f"{utt}.flac")
            assert read_map(d / "utt2spk")[utt] == f"{reader}-{chapter}"
    # 10h: every utterance of train-clean-100 once, including the chapter found in 1h/0 and 9h
    ls_text = read_map_all(librispeech / "train-clean-100")
    assert read_map(tmp_path / "train_10h/text") == ls_text
    first = sorted((layout / "9h/clean").glob("*/*"))[0]
    assert (layout / "1h/0/clean" / first.parent.name / first.name).is_dir()  # the shared chapter
    assert len(read_map(tmp_path / "train_10min/text")) < len(read_map(tmp_path / "train_1h/text")) < len(ls_text)


def read_map_all(part: Path) -> dict:
    return {
        k: v
        for trans in sorted(part.glob("*/*/*.trans.txt"))
        for k, v in (line.split(maxsplit=1) for line in trans.read_text().splitlines())
    }


def test_root_forms_missing_directories_and_excluded(layout, tmp_path):
    # the librispeech_finetuning directory itself works too
    assert (
        librilight.prepare_librilight(layout, tmp_path / "a", "1h").count
        == librilight.prepare_librilight(layout.parent, tmp_path / "b", "1h").count
    )
    with pytest.raises(ValueError, match=r"expected librispeech_finetuning/ .*LIBRILIGHT in db.sh"):
        librilight.prepare_librilight(tmp_path, tmp_path / "out", "10h")
    copy = Path(shutil.copytree(layout, tmp_path / "copy" / "librispeech_finetuning"))
    shutil.rmtree(copy / "9h/other")
    assert librilight.prepare_librilight(copy, tmp_path / "c", "1h").count > 0  # 1h does not need 9h
    with pytest.raises(ValueError, match=f"{copy / '9h/other'}: no such directory; the 10h split needs"):
        librilight.prepare_librilight(copy, tmp_path / "c", "10h")
    # a .flac without transcript line is left out and listed
    trans = sorted((copy / "1h/2/clean").glob("*/*/*.trans.txt"))[0]
    lines = trans.read_text().splitlines()
    trans.write_text("\n".join(lines[1:]) + "\n")
    result = librilight.prepare_librilight(copy, tmp_path / "d", "1h")
    assert list(result.excluded) == [lines[0].split()[0]]
    assert (tmp_path / "d/train_1h/excluded.txt").read_text().startswith(lines[0].split()[0] + "\tno line in")
    with pytest.raises(ValueError, match="split: expected one of 10min, 1h, 10h"):
        librilight.prepare_librilight(copy, tmp_path / "e", "5h")


def test_command_line(layout, tmp_path):
    assert corpus_cli.main(["librilight", "prepare", str(layout.parent), str(tmp_path), "--split", "10min"]) == 0
    assert (tmp_path / "train_10min/wav.scp").is_file()
    assert corpus_cli.main(["librilight", "prepare", str(tmp_path / "none"), str(tmp_path)]) == 1
