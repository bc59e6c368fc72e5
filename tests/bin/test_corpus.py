"""python -m espnet_ext.bin.corpus: one entry point for every corpus, each documented by its
library module (the preparation itself is tested in tests/data/test_corpus_*.py)."""

from __future__ import annotations

import pytest

from espnet_ext.bin import corpus
from espnet_ext.data import mini
from espnet_ext.data.corpora import aishell, jsut, librilight, librispeech, ravdess, timit

MODULES = {
    "aishell": aishell,
    "jsut": jsut,
    "librispeech": librispeech,
    "librilight": librilight,
    "ravdess": ravdess,
    "timit": timit,
    "mini": mini,
}


@pytest.mark.parametrize("name", MODULES)
def test_each_corpus_shows_its_module_documentation(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        corpus.main([name, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: python -m espnet_ext.bin.corpus {name} ")
    assert MODULES[name].__doc__.splitlines()[0] in out


def test_the_corpus_comes_first(capsys):
    with pytest.raises(SystemExit) as exit_:
        corpus.main(["nosuch", "prepare"])
    assert exit_.value.code == 2
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err


def test_mini_corpus(tmp_path, project_root):
    assert corpus.main(["mini", str(project_root / "egs2/mini/corpus"), str(tmp_path), "--lang", "ja"]) == 0
    assert all((tmp_path / split / "wav.scp").is_file() for split in mini.SPLITS)
    assert corpus.main(["mini", str(tmp_path / "none"), str(tmp_path / "out")]) == 1
