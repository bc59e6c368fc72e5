"""Tests of espnet_ext.scoring.results_md: RESULTS.md from the result.txt files below an experiment."""

import pytest

from espnet_ext.scoring.result_txt import write_result_txt
from espnet_ext.scoring.results_md import collect_results, write_results_md
from espnet_ext.scoring.scorer import score


def make_exp(tmp_path):
    """exp/asr_x/decode_{a,b}/{dev,test}/score_{cer,wer}/result.txt with known counts."""
    exp = tmp_path / "exp" / "asr_x"
    refs = {"s-1": "a b c d", "s-2": "e f"}
    hyps = {"s-1": "a b c", "s-2": "e g"}
    for decode in ("decode_ctc_greedy_asr_model_valid.loss.ave", "decode_ctc_beam_asr_model_1epoch"):
        for dset in ("test", "dev"):
            for metric, unit in (("cer", "char"), ("wer", "word")):
                result = score(refs, hyps, unit)
                write_result_txt(result, exp / decode / dset / f"score_{metric}" / "result.txt")
    return exp


def test_results_md(tmp_path):
    exp = make_exp(tmp_path)
    text = collect_results(exp)
    assert "python version" in text and "- date:" in text and "cores" in text.split("- cpu:")[1]
    sections = [line for line in text.splitlines() if line.startswith("## asr_x/")]
    assert sections == [
        "## asr_x/decode_ctc_beam_asr_model_1epoch",
        "## asr_x/decode_ctc_greedy_asr_model_valid.loss.ave",
    ]
    first = text.split("## asr_x/decode_ctc_beam")[1].split("## asr_x/")[0]
    assert first.index("### CER") < first.index("### WER")
    wer = first.split("### WER")[1].strip().splitlines()
    assert wer[0] == "|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|Left out|"
    # no left_out.txt beside result.txt: the count is unknown
    assert wer[2:4] == ["|dev|2|6|66.7|16.7|16.7|0.0|33.3|100.0|?|", "|test|2|6|66.7|16.7|16.7|0.0|33.3|100.0|?|"]
    cer = first.split("### CER")[1].split("###")[0].strip().splitlines()
    assert cer[2] == "|dev|2|10|70.0|10.0|20.0|0.0|30.0|100.0|?|"  # "a b c d": 7 tokens with <space>, "e f": 3
    path = write_results_md(exp)
    assert path == exp / "RESULTS.md" and "### WER" in path.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="found none"):
        collect_results(tmp_path / "nothing")
