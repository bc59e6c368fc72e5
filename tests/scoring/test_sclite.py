"""Tests of espnet_ext.scoring.sclite: our counts equal sclite's (where sclite is installed,
Debian's sctk package; skipped with the reason elsewhere)."""

import random
import warnings

import pytest

from espnet_ext.scoring.counts import Counts
from espnet_ext.scoring.result_txt import Summary, read_summary
from espnet_ext.scoring.sclite import ScliteMismatch, ScliteResult, check_same_counts, run_sclite
from espnet_ext.scoring.scorer import score


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


@pytest.mark.usefixtures("sclite")
@pytest.mark.parametrize("case_sensitive", [False, True])
def test_identical_to_sclite_on_random_pairs(tmp_path, case_sensitive):
    refs, hyps = random_pairs(400, seed=11 + case_sensitive)
    ours = score(refs, hyps, "word", case_sensitive=case_sensitive)
    theirs = run_sclite(refs, hyps, "word", tmp_path, case_sensitive=case_sensitive)
    assert theirs.total == ours.total
    assert theirs.utterances == {u.utt_id: u.counts for u in ours.utterances}
    check_same_counts(ours, theirs)  # and the check agrees


@pytest.mark.usefixtures("sclite")
def test_identical_to_sclite_on_mandarin_cer_with_missing(tmp_path, write):
    rnd = random.Random(5)
    chars = "的一是不了人"  # few characters: many repeats and ties
    refs = {f"BAC{k:03d}-u{k}": "".join(rnd.choice(chars) for _ in range(rnd.randint(0, 20))) for k in range(150)}
    hyps = {u: "".join(c for c in t if rnd.random() > 0.2) + rnd.choice(["", "的", " 是"]) for u, t in refs.items()}
    del hyps["BAC007-u7"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = score(refs, hyps, "char")
        theirs = run_sclite(refs, hyps, "char", tmp_path)
    assert theirs.total == ours.total
    assert theirs.utterances == {u.utt_id: u.counts for u in ours.utterances}
    # sclite's own percentages are the ones we print
    t = ours.total
    assert read_summary(write(tmp_path / "sclite.txt", theirs.report)) == Summary(
        t.sentences, t.words, *t.percentages()
    )


def test_mismatch_reports_both_counts():
    ours = score({"s-1": "a b"}, {"s-1": "a b"}, "word")
    fake = ScliteResult(Counts(1, 2, 1, 1, 0, 0, 1), {"s-1": Counts(1, 2, 1, 1, 0, 0, 1)}, "")
    with pytest.raises(ScliteMismatch, match=r"(?s)correct=2.*correct=1.*s-1"):
        check_same_counts(ours, fake)
