"""Tests of espnet_ext.scoring.result_txt: sclite's report layout, read back."""

import shutil
import subprocess

import pytest

from espnet_ext.scoring.result_txt import Summary, alignment_lines, read_summary, write_result_txt
from espnet_ext.scoring.scorer import score


def test_alignment_lines():
    utt = score({"s-1": "a b c d"}, {"s-1": "a x c"}, "word").utterances[0]
    assert alignment_lines(utt) == ["REF:  a B c D ", "HYP:  a X c * ", "Eval:   S   D "]
    wide = score({"s-1": "你好"}, {"s-1": "你"}, "char").utterances[0]
    assert alignment_lines(wide)[1] == "HYP:  你 ** "  # a wide character's gap is 2 wide


def test_result_txt_parses_back_and_greps(tmp_path):
    refs = {"spk1-u1": "a b c d", "spk2-u2": "x y", "spk2-u3": "", "spk3-u4": "你好 世界"}
    hyps = {"spk1-u1": "a x c", "spk2-u2": "x y z w", "spk2-u3": "q", "spk3-u4": "你好世间"}
    result = score(refs, hyps, "char")
    path = write_result_txt(result, tmp_path / "score_cer" / "result.txt", "hyp.trn")
    t = result.total
    assert read_summary(path) == Summary(t.sentences, t.words, *t.percentages())
    text = path.read_text(encoding="utf-8")
    assert "id: (spk3-u4)" in text and "Scores: (#C #S #D #I) 3 1 1 0" in text
    grep = shutil.which("grep")
    if grep:
        cmd = [grep, "-e", "Avg", "-e", "SPKR", "-m", "2", str(path)]
        lines = subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()
    else:
        lines = [x for x in text.splitlines() if "Avg" in x or "SPKR" in x][:2]
    assert len(lines) == 2
    assert "| SPKR" in lines[0] and "| # Snt # Wrd |" in lines[0]
    assert lines[0].split("|")[3].split() == ["Corr", "Sub", "Del", "Ins", "Err", "S.Err"]
    assert lines[1].split("|")[1].strip() == "Sum/Avg"
    assert lines[1].split("|")[2].split() == ["4", "15"]
    assert lines[1].split("|")[3].split() == ["66.7", "13.3", "20.0", "33.3", "66.7", "100.0"]


def test_result_txt_without_reference_words(tmp_path):
    result = score({"s-1": "", "s-2": ""}, {"s-1": "a b", "s-2": ""}, "word")
    path = write_result_txt(result, tmp_path / "result.txt")
    assert read_summary(path) == Summary(2, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 50.0)
    assert "2*" in path.read_text(encoding="utf-8")


def test_read_summary_names_the_file(tmp_path, write):
    with pytest.raises(ValueError, match="empty.txt"):
        read_summary(write(tmp_path / "empty.txt", "nothing\n"))
