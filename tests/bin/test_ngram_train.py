"""python -m espnet_ext.bin.ngram_train: the interface asr.sh stage 9 calls, its summary line, its errors."""

from __future__ import annotations

import re
import subprocess
import sys

from espnet_ext.bin.ngram_train import main
from espnet_ext.lm.arpa import read_arpa


def test_stage_9_command_line(tmp_path, venv_env):
    (tmp_path / "exp/ngram").mkdir(parents=True)
    (tmp_path / "exp/ngram/train.tokens").write_text("h e l l o\nh e l p\nw o r l d\n")
    command = [sys.executable, "-m", "espnet_ext.bin.ngram_train", "--order", "3", "--out", "exp/ngram/3gram.arpa"]
    result = subprocess.run(
        [*command, "exp/ngram/train.tokens"], cwd=tmp_path, env=venv_env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    # unigrams: <unk> <s> </s> h e l o p w r d; bigrams 6 + 2 (l p, p </s>) + 6; trigrams 5 + 2 + 5
    assert re.fullmatch(
        r"ngram_train: 3 sentences, 14 tokens, n-grams 1=11 2=14 3=12, \d+\.\d s -> exp/ngram/3gram\.arpa\n",
        result.stdout,
    ), result.stdout
    arpa = read_arpa(tmp_path / "exp/ngram/3gram.arpa")
    assert [len(g) for g in arpa.ngrams] == [11, 14, 12]


def test_vocab_stdin_and_a_new_output_dir(tmp_path, capsys, monkeypatch):
    import io

    (tmp_path / "tokens.txt").write_text("<blank>\n<unk>\na\nb\nz\n<sos/eos>\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("a b\nb a a\n"))
    out = tmp_path / "new/dir/2gram.arpa.gz"
    assert main(["--order", "2", "--out", str(out), "--vocab", str(tmp_path / "tokens.txt"), "-"]) == 0
    assert "ngram_train: 2 sentences, 5 tokens, n-grams 1=6 2=" in capsys.readouterr().out
    assert read_arpa(out).words == ["<unk>", "<s>", "</s>", "a", "b", "z"]


def test_bad_input_exits_1_naming_the_file(tmp_path, capsys):
    text = tmp_path / "train.tokens"
    text.write_text("a b </s>\n")
    assert main(["--order", "3", "--out", str(tmp_path / "lm.arpa"), str(text)]) == 1
    assert main(["--order", "0", "--out", str(tmp_path / "lm.arpa"), str(text)]) == 1
    assert main(["--order", "3", "--out", str(tmp_path / "lm.arpa"), str(tmp_path / "missing.txt")]) == 1
    assert not (tmp_path / "lm.arpa").exists()
    assert capsys.readouterr().out == ""
