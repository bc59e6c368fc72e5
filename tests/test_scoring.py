"""Tests of espnet_ext.scoring and its CLI (python -m espnet_ext.bin.score).

Hand-computed cases run everywhere; the comparisons with sclite run where sclite is
installed (Debian's sctk package) and are skipped, with the reason, elsewhere.
"""

import random
import shutil
import subprocess
import sys
import time
import warnings

import pytest

from espnet_ext import scoring
from espnet_ext.scoring import Counts

needs_sclite = pytest.mark.skipif(
    not scoring.sclite_available(),
    reason=f"sclite not found on PATH or at {scoring.SCLITE_FALLBACK} (Debian package sctk)",
)


def counts_of(ref, hyp, unit="word", **kw):
    """(C, S, D, I) of one utterance."""
    score = scoring.score({"s-1": ref}, {"s-1": hyp}, unit, **kw)
    return tuple(score.total[2:6])


# --------------------------------------------------------------------------- tokenization


@pytest.mark.parametrize(
    "text, unit, expected",
    [
        ("ab c", "char", ["a", "b", "<space>", "c"]),
        ("  ab   c  ", "char", ["a", "b", "<space>", "c"]),  # runs collapse, no edge spaces
        ("你好 世界", "char", ["你", "好", "<space>", "世", "界"]),
        ("", "char", []),
        ("the  cat sat", "word", ["the", "cat", "sat"]),
        ("sil ah b sil", "phn", ["sil", "ah", "b", "sil"]),
    ],
)
def test_tokenize(text, unit, expected):
    assert scoring.tokenize(text, unit) == expected


def test_tokenize_removes_nlsyms_and_tokens():
    assert scoring.tokenize("你好<noise>世界", "char", nlsyms=["<noise>"]) == ["你", "好", "世", "界"]
    # a removed symbol between words leaves one <space>
    assert scoring.tokenize("a <noise> b", "char", nlsyms=["<noise>"]) == ["a", "<space>", "b"]
    assert scoring.tokenize("a b", "char", remove_tokens=["<space>"]) == ["a", "b"]
    assert scoring.tokenize("a <noise> b <unk>", "word", ["<noise>"], ["<unk>"]) == ["a", "b"]
    # word units remove whole tokens only
    assert scoring.tokenize("a<noise>", "word", ["<noise>"]) == ["a<noise>"]


def test_bad_unit_is_named():
    with pytest.raises(ValueError, match="'chars'"):
        scoring.tokenize("a", "chars")


# --------------------------------------------------------------------------- hand-computed


@pytest.mark.parametrize(
    "ref, hyp, expected",
    [
        ("a b c", "a b c", (3, 0, 0, 0)),
        ("a b c", "a x c", (2, 1, 0, 0)),  # substitution
        ("a b c", "a b x c", (3, 0, 0, 1)),  # insertion
        ("a b c", "a c", (2, 0, 1, 0)),  # deletion
        ("a b c", "", (0, 0, 3, 0)),  # empty hypothesis
        ("", "a b", (0, 0, 0, 2)),  # empty reference
        ("", "", (0, 0, 0, 0)),
        ("a a b", "b c c", (0, 3, 0, 0)),  # tie: 3 S (cost 12) = 2 D + 2 I; sclite takes S
        ("b a a b", "c c c b a", (1, 3, 0, 1)),  # ties where preferring I before D matters
        ("c c c a b", "a b b a", (2, 0, 3, 2)),
        ("Hello WORLD", "hello world", (2, 0, 0, 0)),  # ASCII case folded like sclite
    ],
)
def test_word_counts(ref, hyp, expected):
    assert counts_of(ref, hyp) == expected


def test_case_sensitive_and_non_ascii_case():
    assert counts_of("Hello", "hello", case_sensitive=True) == (0, 1, 0, 0)
    assert counts_of("Äb", "äb") == (0, 1, 0, 0)  # sclite folds ASCII letters only


def test_cer_and_wer_of_the_same_text():
    ref, hyp = "the cat sat", "the cap sat"
    assert counts_of(ref, hyp, "word") == (2, 1, 0, 0)
    assert counts_of(ref, hyp, "char") == (10, 1, 0, 0)  # 9 letters + 2 <space>
    # a missing word boundary is one deleted <space>
    assert counts_of("ab cd", "abcd", "char") == (4, 0, 1, 0)


def test_mandarin_cer():
    ref, hyp = "甚至出现交易几乎停滞的情况", "甚至出现交易几乎停止情况"  # 滞 -> 止, 的 deleted
    score = scoring.score({"BAC009-1": ref}, {"BAC009-1": hyp}, "char")
    assert score.total == Counts(1, 13, 11, 1, 1, 0, 1)
    assert score.metric == "CER"
    assert score.total.percentages().errors == 15.4


def test_alignment_ops_and_lines():
    assert scoring.align(["a"], ["b", "c"]) == "IS"  # sclite: REF "* A", HYP "B C"
    utt = scoring.score({"s-1": "a b c d"}, {"s-1": "a x c"}, "word").utterances[0]
    assert utt.ops == "CSCD"
    assert scoring.alignment_lines(utt) == ["REF:  a B c D ", "HYP:  a X c * ", "Eval:   S   D "]
    wide = scoring.score({"s-1": "你好"}, {"s-1": "你"}, "char").utterances[0]
    assert scoring.alignment_lines(wide)[1] == "HYP:  你 ** "  # a wide character's gap is 2 wide


def test_sclite_rounding_is_half_up():
    assert scoring.sclite_percent(1, 400) == 0.3  # "%.1f" % 0.25 would give 0.2
    assert scoring.sclite_percent(29, 400) == 7.2  # 7.249999... in binary
    assert scoring.sclite_percent(2, 3) == 66.7
    assert scoring.sclite_percent(5, 0) == 0.0


def test_missing_hypotheses_are_deletions_with_a_warning():
    refs = {"s-1": "a b", "s-2": "c d e"}
    with pytest.warns(UserWarning, match="s-2"):
        score = scoring.score(refs, {"s-1": "a b"}, "word")
    assert score.missing == ("s-2",)
    assert score.total == Counts(2, 5, 2, 0, 3, 0, 1)


def test_hypotheses_without_reference_are_named():
    with pytest.raises(ValueError, match="extra-1"):
        scoring.score({"s-1": "a"}, {"s-1": "a", "extra-1": "b"}, "word")


def test_speakers_from_prefix_or_utt2spk():
    refs = {"spk1-a": "x", "spk1_b": "x", "spk2-c": "x y"}
    hyps = {"spk1-a": "x", "spk1_b": "z", "spk2-c": ""}
    score = scoring.score(refs, hyps, "word")
    assert [s for s, _ in score.speakers()] == ["spk1", "spk2"]
    assert dict(score.speakers())["spk2"] == Counts(1, 2, 0, 0, 2, 0, 1)
    score = scoring.score(refs, hyps, "word", utt2spk={"spk1-a": "A", "spk1_b": "B", "spk2-c": "A"})
    assert dict(score.speakers())["A"] == Counts(2, 3, 1, 0, 2, 0, 1)
    with pytest.raises(ValueError, match="spk2-c"):
        scoring.score(refs, hyps, "word", utt2spk={"spk1-a": "A", "spk1_b": "B"})


# --------------------------------------------------------------------------- sclite


def random_pairs(n, seed):
    """Random texts built to make ties: tiny vocabularies, repeated tokens, edits of the
    reference, empty sides, ASCII case differences."""
    rnd = random.Random(seed)
    refs, hyps = {}, {}
    for k in range(n):
        vocab = ["a", "b", "c", "Dd", "dd", "<space>", "e"][: rnd.choice([2, 3, 5, 7])]
        ref = [rnd.choice(vocab) for _ in range(rnd.choice([0, 1, 3, 8, 15]))]
        if rnd.random() < 0.5:
            hyp = [t if rnd.random() > 0.3 else rnd.choice(vocab) for t in ref]
            for _ in range(rnd.randint(0, 3)):
                hyp.insert(rnd.randint(0, len(hyp)), rnd.choice(vocab))
            hyp = [t for t in hyp if rnd.random() > 0.15]
        else:
            hyp = [rnd.choice(vocab) for _ in range(rnd.choice([0, 2, 6, 12]))]
        utt = f"spk{k % 5}-utt{k:04d}"
        refs[utt], hyps[utt] = " ".join(ref), " ".join(hyp)
    return refs, hyps


@needs_sclite
@pytest.mark.parametrize("case_sensitive", [False, True])
def test_identical_to_sclite_on_random_pairs(tmp_path, case_sensitive):
    refs, hyps = random_pairs(400, seed=11 + case_sensitive)
    ours = scoring.score(refs, hyps, "word", case_sensitive=case_sensitive)
    theirs = scoring.run_sclite(refs, hyps, "word", tmp_path, case_sensitive=case_sensitive)
    assert theirs.total == ours.total
    assert theirs.utterances == {u.utt_id: u.counts for u in ours.utterances}
    scoring.check_same_counts(ours, theirs)  # and the check agrees


@needs_sclite
def test_identical_to_sclite_on_mandarin_cer_with_missing(tmp_path):
    rnd = random.Random(5)
    chars = "的一是不了人"  # few characters: many repeats and ties
    refs = {
        f"BAC{k:03d}-u{k}": "".join(rnd.choice(chars) for _ in range(rnd.randint(0, 20))) for k in range(150)
    }
    hyps = {
        u: "".join(c for c in t if rnd.random() > 0.2) + rnd.choice(["", "的", " 是"]) for u, t in refs.items()
    }
    del hyps["BAC007-u7"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = scoring.score(refs, hyps, "char")
        theirs = scoring.run_sclite(refs, hyps, "char", tmp_path)
    assert theirs.total == ours.total
    assert theirs.utterances == {u.utt_id: u.counts for u in ours.utterances}
    # sclite's own percentages are the ones we print
    assert scoring.read_summary(write(tmp_path / "sclite.txt", theirs.report)) == summary_of(ours)


def test_mismatch_reports_both_counts():
    ours = scoring.score({"s-1": "a b"}, {"s-1": "a b"}, "word")
    fake = scoring.ScliteResult(Counts(1, 2, 1, 1, 0, 0, 1), {"s-1": Counts(1, 2, 1, 1, 0, 0, 1)}, "")
    with pytest.raises(scoring.ScliteMismatch, match=r"(?s)correct=2.*correct=1.*s-1"):
        scoring.check_same_counts(ours, fake)


# --------------------------------------------------------------------------- result.txt, RESULTS.md


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def summary_of(score):
    t = score.total
    return scoring.Summary(t.sentences, t.words, *t.percentages())


def test_result_txt_parses_back_and_greps(tmp_path):
    refs = {"spk1-u1": "a b c d", "spk2-u2": "x y", "spk2-u3": "", "spk3-u4": "你好 世界"}
    hyps = {"spk1-u1": "a x c", "spk2-u2": "x y z w", "spk2-u3": "q", "spk3-u4": "你好世间"}
    score = scoring.score(refs, hyps, "char")
    path = scoring.write_result_txt(score, tmp_path / "score_cer" / "result.txt", "hyp.trn")
    assert scoring.read_summary(path) == summary_of(score)
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
    score = scoring.score({"s-1": "", "s-2": ""}, {"s-1": "a b", "s-2": ""}, "word")
    path = scoring.write_result_txt(score, tmp_path / "result.txt")
    assert scoring.read_summary(path) == scoring.Summary(2, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 50.0)
    assert "2*" in path.read_text(encoding="utf-8")


def test_read_summary_names_the_file(tmp_path):
    with pytest.raises(ValueError, match="empty.txt"):
        scoring.read_summary(write(tmp_path / "empty.txt", "nothing\n"))


def make_exp(tmp_path):
    """exp/asr_x/decode_{a,b}/{dev,test}/score_{cer,wer}/result.txt with known counts."""
    exp = tmp_path / "exp" / "asr_x"
    refs = {"s-1": "a b c d", "s-2": "e f"}
    hyps = {"s-1": "a b c", "s-2": "e g"}
    for decode in ("decode_ctc_greedy_asr_model_valid.loss.ave", "decode_ctc_beam_asr_model_1epoch"):
        for dset in ("test", "dev"):
            for metric, unit in (("cer", "char"), ("wer", "word")):
                score = scoring.score(refs, hyps, unit)
                scoring.write_result_txt(score, exp / decode / dset / f"score_{metric}" / "result.txt")
    return exp


def test_results_md(tmp_path):
    exp = make_exp(tmp_path)
    text = scoring.collect_results(exp)
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
    path = scoring.write_results_md(exp)
    assert path == exp / "RESULTS.md" and "### WER" in path.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="found none"):
        scoring.collect_results(tmp_path / "nothing")


# --------------------------------------------------------------------------- reading, CLI


def test_non_utf8_text_names_file_and_line(tmp_path):
    path = tmp_path / "text"
    path.write_bytes("u1 ok\nu2 caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"text:2: expected UTF-8"):
        scoring.read_text(path)


def test_read_text(tmp_path):
    path = write(tmp_path / "text", "\ufeffu1 a  b \nu2\n\nu3\tc\n")
    assert scoring.read_text(path) == {"u1": "a  b", "u2": "", "u3": "c"}
    with pytest.raises(ValueError, match=r"dup:2: duplicate utterance id 'u1'"):
        scoring.read_text(write(tmp_path / "dup", "u1 a\nu1 b\n"))


def run_cli(*args, cwd):
    cmd = [sys.executable, "-m", "espnet_ext.bin.score", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("backend", ["no", pytest.param("yes", marks=needs_sclite)])
def test_cli_scores_and_collects(tmp_path, backend):
    ref = write(tmp_path / "ref", "spk1-u1 甚至 出现\nspk1-u2 a b <noise> c\nspk2-u3 x\n")
    hyp = write(tmp_path / "hyp", "spk1-u1 甚至 出\nspk1-u2 a c\n")
    nlsyms = write(tmp_path / "nlsyms", "<noise>\n")
    out = tmp_path / "exp" / "asr_x" / "decode_a" / "test" / "score_wer"
    proc = run_cli("--ref", ref, "--hyp", hyp, "--unit", "word", "--out_dir", out, "--sclite", backend,
                   "--nlsyms", nlsyms, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "spk2-u3" in proc.stderr  # the missing hypothesis is named
    assert proc.stdout.splitlines()[-1].split("|")[3].split()[0] == "50.0"  # Sum/Avg: 3 of 6 words correct
    assert scoring.read_summary(out / "result.txt").words == 6
    assert (out / "hyp.trn").exists() == (backend == "yes")
    proc = run_cli("collect", tmp_path / "exp" / "asr_x", "--out", "-", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "|test|3|6|50.0|16.7|33.3|0.0|50.0|100.0|?|" in proc.stdout


# --------------------------------------------------------------------------- folding, left out


MAP_60_48_39 = """# 60 48 39
aa\taa\taa
ao\tao\taa
ax-h\tax\tah
ax\tax\tah
ah\tah\tah
bcl\tvcl\tsil
h#\tsil\tsil
q
"""


def test_fold_map_folds_every_column_to_the_last(tmp_path):
    mapping = scoring.read_fold_map(write(tmp_path / "map", MAP_60_48_39))
    assert mapping["ao"] == mapping["aa"] == "aa" and mapping["ax-h"] == mapping["ax"] == "ah"
    assert mapping["vcl"] == mapping["bcl"] == mapping["sil"] == "sil" and mapping["q"] is None
    folded = scoring.fold_texts({"u": "h# ao q ax-h <unk> bcl"}, mapping)
    assert folded == {"u": "sil aa ah <unk> sil"}  # q deleted, <unk> kept


def test_fold_map_conflict_names_the_line(tmp_path):
    path = tmp_path / "map"
    path.write_text("ao ao aa\nx ao ah\n")
    with pytest.raises(ValueError, match=r"map:2: 'ao' folds to 'ah' here but to 'aa' before"):
        scoring.read_fold_map(path)


def test_timit_map_folds_to_39_phones(project_root):
    mapping = scoring.read_fold_map(project_root / "egs2/timit/asr1/conf/phones.60-48-39.map")
    assert len({t for t in mapping.values() if t}) == 39 and mapping["q"] is None


def test_left_out_lists_reasons(tmp_path):
    excluded = write(tmp_path / "excluded.txt", "u2\tunreadable audio\n")
    removed = write(tmp_path / "removed.txt", "u3\ttoo short (0.05 s)\nu2\tlater reason\n")
    left = scoring.left_out(["u1", "u2", "u3", "u4"], {"u1": "a"}, [excluded, tmp_path / "absent", removed])
    assert left == {"u2": "unreadable audio", "u3": "too short (0.05 s)", "u4": "not in the decoded set"}


def test_cli_folds_phones_and_lists_left_out(tmp_path):
    """PER on folded phones against the decoded set; the set's other utterances counted as left out."""
    fold = write(tmp_path / "map", MAP_60_48_39)
    source = write(tmp_path / "data_text", "s-1 h# ao ax\ns-2 aa\ns-3 ah aa\n")
    ref = write(tmp_path / "dump_text", "s-1 h# ao ax\ns-3 ah aa\n")
    hyp = write(tmp_path / "hyp", "s-1 sil aa ah\ns-3 ah ao\n")  # all correct once folded
    removed = write(tmp_path / "removed.txt", "s-2\ttoo short\n")
    exp = tmp_path / "exp" / "asr_x"
    out = exp / "decode_a" / "test" / "score_per"
    args = ["--ref", ref, "--hyp", hyp, "--unit", "phn", "--out_dir", out, "--sclite", "no",
            "--source_ref", source, "--left_out_reasons", removed]
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert tuple(scoring.read_summary(out / "result.txt")) == (2, 5, 20.0, 80.0, 0.0, 0.0, 80.0, 100.0)
    assert "1 of 3 utterances" in proc.stdout and (out / "left_out.txt").read_text() == "s-2\ttoo short\n"
    proc = run_cli(*args, "--fold_map", fold, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert scoring.read_summary(out / "result.txt")[:3] == (2, 5, 100.0)
    results = run_cli("collect", exp, "--out", "-", cwd=tmp_path).stdout
    assert "|test|2|5|100.0|0.0|0.0|0.0|0.0|0.0|1|" in results
    assert "listed in test: `asr_x/decode_a/test/score_per/left_out.txt`" in results
    proc = run_cli(*args[:-4], cwd=tmp_path)  # without --source_ref: no stale list stays behind
    assert proc.returncode == 0 and not (out / "left_out.txt").exists()
    proc = run_cli(*args[:-4], "--source_ref", ref, "--ref", source, cwd=tmp_path)
    assert proc.returncode == 1 and "against --source_ref" in proc.stderr and "not in the source set" in proc.stderr
    proc = run_cli("--ref", ref, "--hyp", hyp, "--unit", "char", "--out_dir", out, "--fold_map", fold, cwd=tmp_path)
    assert proc.returncode == 1 and "expected --unit phn or word" in proc.stderr


def test_cli_errors(tmp_path):
    ref = write(tmp_path / "ref", "u1 a\n")
    bad = tmp_path / "bad_hyp"
    bad.write_bytes(b"u1 \xff\n")
    proc = run_cli("--ref", ref, "--hyp", bad, "--unit", "char", "--out_dir", tmp_path / "o", cwd=tmp_path)
    assert proc.returncode == 1 and "bad_hyp:1" in proc.stderr and "UTF-8" in proc.stderr
    extra = write(tmp_path / "hyp", "u1 a\nu9 b\n")
    proc = run_cli("--ref", ref, "--hyp", extra, "--unit", "char", "--out_dir", tmp_path / "o", cwd=tmp_path)
    assert proc.returncode == 1 and "u9" in proc.stderr
    proc = run_cli("--hyp", extra, cwd=tmp_path)
    assert proc.returncode == 2 and "--ref" in proc.stderr


@needs_sclite
def test_cli_fails_when_sclite_disagrees(tmp_path):
    # "{ b / c }" is an alternation to sclite, four plain tokens to us
    ref = write(tmp_path / "ref", "s-1 a { b / c } d\n")
    hyp = write(tmp_path / "hyp", "s-1 a b d\n")
    out = tmp_path / "score_wer"
    args = ["--ref", ref, "--hyp", hyp, "--unit", "word", "--out_dir", out, "--sclite", "yes"]
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 1
    assert "espnet_ext: Counts(" in proc.stderr and "sclite:     Counts(" in proc.stderr
    assert not (out / "result.txt").exists()


def test_cli_imports_neither_torch_nor_espnet():
    code = (
        "import sys, espnet_ext.bin.score; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'espnet2')))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


# --------------------------------------------------------------------------- speed


def test_ten_thousand_utterances_in_seconds():
    rnd = random.Random(0)
    vocab = [chr(0x4E00 + k) for k in range(2000)]
    refs = [[rnd.choice(vocab) for _ in range(100)] for _ in range(10_000)]
    hyps = [[t if rnd.random() > 0.1 else rnd.choice(vocab) for t in r[rnd.randint(0, 3):]] for r in refs]
    start = time.perf_counter()
    ops = scoring.align_many(refs, hyps)
    elapsed = time.perf_counter() - start
    assert all(len(o) >= 100 for o in ops)
    assert elapsed < 15, f"aligning 10k x 100 tokens took {elapsed:.1f} s (about 1 s expected)"
