"""TER, the token error rate on the recipe's BPE pieces: a small sentencepiece model trained here,
counts by hand, our scorer against sclite, the command line and RESULTS.md."""

import subprocess
import sys

import pytest

from espnet_ext import scoring
from espnet_ext.scoring.result_txt import read_summary

TRAINING_TEXT = ["HELLO WORLD", "HELLO THERE", "THE WORLD IS GREEN", "GREEN THERE", "WORLDS APART", "HELLO GREEN WORLD"]
REFS = {"s1-u1": "HELLO WORLD", "s1-u2": "HELLO", "s2-u3": "WORLDS APART THERE"}
HYPS = {"s1-u1": "HELLO WORLDS", "s1-u2": "HELLO WORLD", "s2-u3": "WORLD THERE"}


@pytest.fixture(scope="module")
def bpemodel(tmp_path_factory):
    import sentencepiece

    root = tmp_path_factory.mktemp("bpe")
    (root / "text").write_text("\n".join(TRAINING_TEXT * 20) + "\n", encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(root / "text"),
        model_prefix=str(root / "bpe"),
        vocab_size=30,
        model_type="bpe",
        character_coverage=1.0,
        minloglevel=2,
    )
    return root / "bpe.model"


def test_pieces_of_the_model(bpemodel):
    """The tokenization the hand count below rests on: sentencepiece's pieces of each text."""
    encode = scoring.bpe_encoder(bpemodel)
    assert encode("HELLO WORLD") == ["▁", "HE", "LLO", "▁WORLD"]
    assert encode("HELLO WORLDS") == ["▁", "HE", "LLO", "▁WORLD", "S"]
    assert encode("HELLO") == ["▁", "HE", "LLO"]
    assert encode("WORLDS APART THERE") == ["▁WORLD", "S", "▁", "A", "P", "A", "R", "T", "▁T", "HE", "RE"]
    assert encode("WORLD THERE") == ["▁WORLD", "▁T", "HE", "RE"]
    assert scoring.tokenize("HELLO WORLD", "bpe", remove_tokens=["▁"], bpe=encode) == ["HE", "LLO", "▁WORLD"]
    noisy = "HELLO <noise>"  # non-linguistic symbols stay in TER, as in ESPnet's
    assert scoring.tokenize(noisy, "bpe", nlsyms=["<noise>"], bpe=encode) == encode(noisy) != encode("HELLO")


def test_ter_equals_the_hand_count(bpemodel):
    """18 reference pieces (4 + 3 + 11): u1 inserts S, u2 inserts ▁WORLD, u3 deletes the 7 pieces
    of "S APART" and keeps ▁WORLD ▁T HE RE: 4 + 3 + 4 = 11 correct, 7 deletions, 2 insertions, TER 9/18."""
    result = scoring.score(REFS, HYPS, "bpe", bpe=scoring.bpe_encoder(bpemodel))
    total = result.total
    assert (total.words, total.correct, total.substitutions, total.deletions, total.insertions) == (18, 11, 0, 7, 2)
    assert result.metric == "TER" and total.sentences == 3 and total.sentence_errors == 3
    assert [u.ops for u in result.utterances] == ["CCCCI", "CCCI", "CDDDDDDDCCC"]


def test_bpe_needs_its_model():
    with pytest.raises(ValueError, match="unit bpe: expected the BPE model"):
        scoring.score(REFS, HYPS, "bpe")


@pytest.mark.usefixtures("sclite")
def test_ter_identical_to_sclite(bpemodel, tmp_path):
    encode = scoring.bpe_encoder(bpemodel)
    ours = scoring.score(REFS, HYPS, "bpe", bpe=encode)
    theirs = scoring.run_sclite(REFS, HYPS, "bpe", tmp_path, bpe=encode)
    scoring.check_same_counts(ours, theirs)
    assert (tmp_path / "ref.trn").read_text(encoding="utf-8").splitlines()[0] == "▁ HE LLO ▁WORLD (s1-s1-u1)"


def _cli(*args, cwd):
    cmd = [sys.executable, "-m", "espnet_ext.bin.score", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("backend", ["no", "yes"])
def test_cli_scores_ter_and_results_md_shows_it(bpemodel, tmp_path, write, request, backend):
    if backend == "yes":
        request.getfixturevalue("sclite")  # skips without sclite
    ref = write(tmp_path / "ref", "".join(f"{u} {t}\n" for u, t in REFS.items()))
    hyp = write(tmp_path / "hyp", "".join(f"{u} {t}\n" for u, t in HYPS.items()))
    exp = tmp_path / "exp" / "asr_x"
    for metric, unit in (("wer", "word"), ("ter", "bpe")):
        extra = ["--bpemodel", bpemodel] if unit == "bpe" else []
        out = exp / "decode_a" / "test" / f"score_{metric}"
        proc = _cli(
            "--ref", ref, "--hyp", hyp, "--unit", unit, "--out_dir", out, "--sclite", backend, *extra, cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stderr
    assert read_summary(exp / "decode_a" / "test" / "score_ter" / "result.txt").words == 18
    assert "TER of" in proc.stdout and (out / "hyp.trn").exists() == (backend == "yes")
    results = _cli("collect", exp, "--out", "-", cwd=tmp_path).stdout
    assert results.index("### WER") < results.index("### TER")
    assert "|test|3|18|61.1|0.0|38.9|11.1|50.0|100.0|?|" in results


def test_cli_refuses_bpe_without_its_model_and_a_model_elsewhere(bpemodel, tmp_path, write):
    ref = write(tmp_path / "ref", "u1 HELLO\n")
    proc = _cli("--ref", ref, "--hyp", ref, "--unit", "bpe", "--out_dir", tmp_path / "o", cwd=tmp_path)
    assert proc.returncode == 1 and "expected --bpemodel with --unit bpe only" in proc.stderr
    args = ["--ref", ref, "--hyp", ref, "--unit", "word", "--out_dir", tmp_path / "o", "--bpemodel", bpemodel]
    assert _cli(*args, cwd=tmp_path).returncode == 1
