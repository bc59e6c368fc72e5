"""espnet_ext.scoring.significance: MAPSSWE (against SCTK's sc_stats and hand-computed cases), the
paired bootstrap (hand-checked cases, exact enumeration), reading score dirs of stage 13."""

from __future__ import annotations

import itertools
import math
import random
import re
import subprocess
from pathlib import Path

import pytest

from espnet_ext import scoring
from espnet_ext.bin.score import main as score_main
from espnet_ext.scoring import significance as sig
from espnet_ext.scoring.sclite import find_sclite

SCLITE = find_sclite()
SC_STATS = str(Path(SCLITE).with_name("sc_stats")) if SCLITE else None
needs_sctk = pytest.mark.skipif(
    SC_STATS is None or not Path(SC_STATS).is_file(),
    reason="sclite/sc_stats not installed (Debian package sctk, /usr/lib/sctk/bin)",
)


# --------------------------------------------------------------------------- segments, hand-computed
@pytest.mark.parametrize(
    "ops_a, ops_b, expected",
    [
        ("CCCC", "CCCC", []),  # both right everywhere: no segment
        ("CCSCCCC", "CCCCCCC", [(5, 1, 0)]),  # 1 word before the last good one, 2 after
        ("SCCCC", "CCCCC", [(3, 1, 0)]),  # from the utterance's start
        ("CCCCS", "CCCCC", [(3, 1, 0)]),  # to its end
        ("CCSCSCC", "CCCCCCC", [(7, 2, 0)]),  # one good word between: one segment
        ("CCSCCSCC", "CCCCCCCC", [(5, 1, 0), (5, 1, 0)]),  # two good words: two, sharing them
        ("CCCCDC", "SCCCCS", [(3, 0, 1), (4, 1, 1)]),
        ("CSCCCCI", "CCCSCD", [(6, 2, 2)]),  # trailing insertion of a: to the end
        ("CCC", "CCCI", [(2, 0, 1)]),  # trailing insertion of b only
        ("CCICCC", "CCCCC", [(4, 1, 0)]),  # an insertion between two good words
        ("ICC", "CC", [(2, 1, 0)]),
        ("", "II", [(0, 0, 2)]),  # empty reference
        ("SS", "SS", [(2, 2, 2)]),  # equal errors: a segment of difference 0
    ],
)
def test_segments_by_hand(ops_a, ops_b, expected):
    assert sig.segments(ops_a, ops_b) == [sig.Segment(*e) for e in expected]
    swapped = sig.segments(ops_b, ops_a)
    assert [(s.errors_b, s.errors_a) for s in swapped] == [(e[1], e[2]) for e in expected]


def test_every_error_lands_in_exactly_one_segment():
    """Segments share only words both systems got right: over random alignment pairs of the
    same reference, the segments' errors add up to each system's errors."""
    rng = random.Random(5)
    for _ in range(3000):
        n = rng.randint(0, 8)

        def alignment(n=n):
            ops = []
            for k in range(n + 1):
                while rng.random() < 0.15:
                    ops.append("I")
                if k < n:
                    ops.append(rng.choice("CCCCSD"))
            return "".join(ops)

        a, b = alignment(), alignment()
        found = sig.segments(a, b)
        assert sum(s.errors_a for s in found) == len(a) - a.count("C")
        assert sum(s.errors_b for s in found) == len(b) - b.count("C")
        assert all(s.ref_words <= n and (s.errors_a or s.errors_b) for s in found)


def test_min_good_one_splits_at_every_good_word():
    assert sig.segments("CSCSC", "CCCCC", min_good=1) == [sig.Segment(3, 1, 0), sig.Segment(3, 1, 0)]
    with pytest.raises(ValueError, match="min_good"):
        sig.segments("C", "C", min_good=0)


def test_mapsswe_statistic_by_hand():
    """Differences 1, -1, 0, 0, 1: mean 0.2, sd sqrt(2.8 / 4), Z = 0.2 / (sd / sqrt 5)."""
    a = ["CCSCCCCCCC", "CCCCDC", "CSCCCCI", "S"]
    b = ["C" * 10, "SCCCCS", "CCCSCD", "C"]
    m = sig.mapsswe(a, b)
    sd = math.sqrt(2.8 / 4)
    z = 0.2 / (sd / math.sqrt(5))
    assert (m.segments, m.ref_words, m.errors_a, m.errors_b) == (5, 19, 5, 4)
    assert m.mean == pytest.approx(0.2) and m.std_dev == pytest.approx(sd) and m.z == pytest.approx(z)
    assert m.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert m.sctk_p_value == pytest.approx(math.erfc(0.53 / math.sqrt(2)))  # Z taken down to 0.53
    assert m.rate_a == pytest.approx(500 / 19) and not m.significant()
    swapped = sig.mapsswe(b, a)
    assert swapped.z == pytest.approx(-z) and swapped.p_value == pytest.approx(m.p_value)


def test_mapsswe_degenerate_cases_give_no_difference():
    identical = sig.mapsswe(["CSC", "CCD"], ["CSC", "CCD"])
    assert identical.segments == 2 and identical.mean == 0 and identical.z == 0 and identical.p_value == 1.0
    assert not identical.no_variance and identical.reported_p == 1.0 and not identical.significant()
    same_step = sig.mapsswe(["SCCS"] * 4, ["CCCC"] * 4)  # every segment +1: no variance, Z = 0 as in SCTK
    assert same_step.segments == 8 and same_step.mean == 1 and same_step.z == 0 and same_step.p_value == 1.0
    # the sign test instead: 8 segments all favouring b, two-sided p = 2 / 2 ** 8
    assert same_step.no_variance and same_step.reported_p == 2 / 256 and same_step.significant()
    one = sig.mapsswe(["CSC"], ["CCC"])
    assert one.no_variance and one.reported_p == 1.0 and not one.significant()
    assert sig.mapsswe([], []).segments == 0
    with pytest.raises(ValueError, match="same reference"):
        sig.mapsswe(["CC"], ["C"])


def test_mapsswe_finds_a_clear_difference():
    a = ["CSCCCCSCC", "SCCSCC", "CCCSCCCSC"] * 5
    b = ["C" * 9, "CCCCSC", "C" * 9] * 5
    m = sig.mapsswe(a, b)
    assert m.mean > 0 and m.z > 3 and m.p_value < 0.01 and m.significant()


# --------------------------------------------------------------------------- against sc_stats
def random_systems(seed: int, n: int = 40):
    """References and two systems' hypotheses, word level, with every kind of error (edges,
    empty hypotheses, all-correct utterances, an empty reference)."""
    rng = random.Random(seed)
    vocab = "the cat sat on a mat dog ran far away".split()
    refs, hyps_a, hyps_b = {}, {}, {}
    for k in range(n):
        utt = f"spk{k % 4}_utt{k:03d}"
        ref = [rng.choice(vocab) for _ in range(rng.choice([0, 1, 3, 6, 9, 12]) if k else 0)]
        refs[utt] = " ".join(ref)
        for hyps, p in ((hyps_a, 0.25), (hyps_b, 0.12)):
            hyp = []
            for word in ref + [None]:
                while rng.random() < p / 3:
                    hyp.append(rng.choice(vocab + ["x"]))  # insertion
                if word is not None and rng.random() >= p / 3:  # else deleted
                    hyp.append(rng.choice(vocab + ["y"]) if rng.random() < p / 2 else word)
            hyps[utt] = "" if rng.random() < 0.05 else " ".join(hyp)
    return refs, hyps_a, hyps_b


def sc_stats(tmp_path: Path, refs, hyps_a, hyps_b):
    """sclite -o sgml of both systems, then sc_stats -t mapsswe: (the -v line's numbers, the
    -u report's p-value as printed)."""
    pairs, _ = scoring.prepare(refs, hyps_a, "word")
    ids = {p.utt_id: f"{p.speaker}-{p.utt_id}" for p in pairs}
    scoring.write_trn(tmp_path / "ref.trn", ((ids[u], t.split()) for u, t in refs.items()))
    sgml = []
    for name, hyps in (("sysA", hyps_a), ("sysB", hyps_b)):
        scoring.write_trn(tmp_path / f"{name}.trn", ((ids[u], hyps[u].split()) for u in refs))
        subprocess.run(
            [
                SCLITE,
                "-r",
                str(tmp_path / "ref.trn"),
                "trn",
                "-h",
                str(tmp_path / f"{name}.trn"),
                "trn",
                name,
                "-i",
                "rm",
                "-o",
                "sgml",
                "-O",
                str(tmp_path),
                "-n",
                name,
            ],
            check=True,
            capture_output=True,
        )
        sgml.append((tmp_path / f"{name}.sgml").read_bytes())
    for flag, stem in (("-v", "verbose"), ("-u", "unified")):
        subprocess.run(
            [SC_STATS, "-p", "-t", "mapsswe", flag, "-n", str(tmp_path / stem)],
            input=b"".join(sgml),
            check=True,
            capture_output=True,
            cwd=tmp_path,
        )  # it writes <system>.sts in its directory
    text = (tmp_path / "verbose.stats.mapsswe").read_text()
    line = re.search(r"MTCH_PR_RESULTS .*", text).group(0)
    numbers = dict(re.findall(r"\((# segs|mean|std dev|Z Stat): *(-?[\d.]+)\)", line))
    totals = re.search(r"Totals +(\d+) +(\d+) +(\d+)", text).groups()
    unified = (tmp_path / "unified.stats.unified").read_text()
    p = re.search(r"\|\| +sysA +\| +\| +(?:~|sys[AB]) +(<?[\d.]+)", unified).group(1)
    return numbers, tuple(map(int, totals)), p


@needs_sctk
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mapsswe_equals_sc_stats(tmp_path, seed):
    refs, hyps_a, hyps_b = random_systems(seed)
    ours_a, ours_b = scoring.score(refs, hyps_a, "word"), scoring.score(refs, hyps_b, "word")
    m = sig.mapsswe([u.ops for u in ours_a.utterances], [u.ops for u in ours_b.utterances])
    numbers, totals, p = sc_stats(tmp_path, refs, hyps_a, hyps_b)
    assert int(numbers["# segs"]) == m.segments and totals == (m.ref_words, m.errors_a, m.errors_b)
    assert (numbers["mean"], numbers["std dev"], numbers["Z Stat"]) == (
        f"{m.mean:.3f}",
        f"{m.std_dev:.3f}",
        f"{m.z:.3f}",
    )
    assert p == ("<0.001" if m.sctk_p_value < 0.001 else f"{m.sctk_p_value:.3f}")
    assert abs(m.p_value - m.sctk_p_value) < 0.01 and m.p_value <= m.sctk_p_value + 1e-12


@needs_sctk
def test_mapsswe_equals_sc_stats_on_a_clear_difference(tmp_path):
    refs, _, hyps_b = random_systems(7, n=60)
    hyps_a = {u: " ".join(w if k % 3 else "z" for k, w in enumerate(t.split())) for u, t in refs.items()}
    ours = [scoring.score(refs, h, "word") for h in (hyps_a, hyps_b)]
    m = sig.mapsswe(*[[u.ops for u in s.utterances] for s in ours])
    numbers, totals, p = sc_stats(tmp_path, refs, hyps_a, hyps_b)
    assert numbers["Z Stat"] == f"{m.z:.3f}" and totals == (m.ref_words, m.errors_a, m.errors_b)
    assert p == ("<0.001" if m.sctk_p_value < 0.001 else f"{m.sctk_p_value:.3f}") and m.significant()


# --------------------------------------------------------------------------- score dirs
def score_dir(tmp_path: Path, name: str, refs, hyps, unit: str, use_sclite: str) -> Path:
    """Stage 13's scoring of ``hyps``: ``python -m espnet_ext.bin.score`` into ``tmp_path/name``."""
    ref_file, hyp_file = tmp_path / f"{name}.ref", tmp_path / f"{name}.hyp"
    ref_file.write_text("".join(f"{u} {t}\n" for u, t in refs.items()), encoding="utf-8")
    hyp_file.write_text("".join(f"{u} {t}\n" for u, t in hyps.items()), encoding="utf-8")
    out = tmp_path / name
    assert (
        score_main(
            [
                "--ref",
                str(ref_file),
                "--hyp",
                str(hyp_file),
                "--unit",
                unit,
                "--out_dir",
                str(out),
                "--sclite",
                use_sclite,
            ]
        )
        == 0
    )
    return out


MANDARIN_REFS = {
    "BAC009S0764W0121": "甚至 出现 交易 几乎 停滞 的 情况",
    "BAC009S0764W0122": "一二线 城市 Hello World",
    "BAC009S0765W0001": "",
    "spk-2_a": "ab cd",
}
MANDARIN_HYPS = {
    "BAC009S0764W0121": "甚至 出现 交易 几乎 停 的 情况 了",
    "BAC009S0764W0122": "一二线 城 hello word",
    "BAC009S0765W0001": "嗯",
    "spk-2_a": "ab cd",
}


@pytest.mark.parametrize(
    "use_sclite", ["no", pytest.param("yes", marks=pytest.mark.skipif(SCLITE is None, reason="sclite not installed"))]
)
def test_read_score_dir_gives_the_scorer_alignments(tmp_path, use_sclite):
    """Both reports (sclite's, with its <speaker>-<uttid> ids, and ours) read back as the
    scorer's alignments, keyed by utterance id."""
    path = score_dir(tmp_path, "s", MANDARIN_REFS, MANDARIN_HYPS, "char", use_sclite)
    assert (path / "ref.trn").is_file() == (use_sclite == "yes")
    read = sig.read_score_dir(path)
    expected = scoring.score(MANDARIN_REFS, MANDARIN_HYPS, "char")
    assert list(read.utterances) == [u.utt_id for u in expected.utterances]
    assert [u.ops for u in read.utterances.values()] == [u.ops for u in expected.utterances]
    assert [u.ref for u in read.utterances.values()] == [tuple(t.lower() for t in u.ref) for u in expected.utterances]
    assert (read.ref_words, read.errors) == (expected.total.words, expected.total.errors)


@pytest.mark.skipif(SCLITE is None, reason="sclite not installed")
def test_score_dirs_of_both_backends_pair_up(tmp_path):
    refs, hyps_a, hyps_b = random_systems(3)
    a = sig.read_score_dir(score_dir(tmp_path, "a", refs, hyps_a, "word", "yes"))
    b = sig.read_score_dir(score_dir(tmp_path, "b", refs, hyps_b, "word", "no"))
    ua, ub = sig.paired(a, b)
    expected = sig.mapsswe(*[[u.ops for u in scoring.score(refs, h, "word").utterances] for h in (hyps_a, hyps_b)])
    assert sig.mapsswe_utterances(ua, ub) == expected


def test_paired_names_both_dirs_when_utterances_or_references_differ(tmp_path):
    refs = {"u1": "a b c", "u2": "d e"}
    a = sig.read_score_dir(score_dir(tmp_path, "a", refs, refs, "word", "no"))
    b = sig.read_score_dir(score_dir(tmp_path, "b", {"u1": "a b c"}, {"u1": "a b"}, "word", "no"))
    with pytest.raises(
        ValueError,
        match=rf"{re.escape(str(a.path))} and {re.escape(str(b.path))}: expected the "
        r"same utterances, found 1 only in the first \(u2\)",
    ):
        sig.paired(a, b)
    c = sig.read_score_dir(score_dir(tmp_path, "c", {"u1": "a b c", "u2": "d f"}, refs, "word", "no"))
    with pytest.raises(ValueError, match="expected the same references, found 1 utterances.*u2"):
        sig.paired(a, c)
    pooled_a, pooled_b = sig.paired_sets([(a, a), (a, a)])
    assert len(pooled_a) == len(pooled_b) == 4


def test_read_score_dir_rejects_what_it_cannot_read(tmp_path):
    with pytest.raises(ValueError, match="expected result.txt"):
        sig.read_score_dir(tmp_path)
    (tmp_path / "result.txt").write_text("| Sum/Avg| 1 2 | 50.0 50.0 0.0 0.0 50.0 100.0 |\n")
    with pytest.raises(ValueError, match="expected per-utterance alignments"):
        sig.read_score_dir(tmp_path)
    (tmp_path / "result.txt").write_text("id: (u1)\nScores: (#C #S #D #I) 2 0 0 0\nREF:  a B\nHYP:  a X\nEval:   S\n")
    with pytest.raises(ValueError, match=r"result.txt:1: expected the alignment to give .* \(2, 0, 0, 0\)"):
        sig.read_score_dir(tmp_path)


# --------------------------------------------------------------------------- bootstrap
def test_bootstrap_of_identical_systems_is_zero():
    b = sig.paired_bootstrap([5, 3, 8], [1, 0, 2], [1, 0, 2], resamples=500)
    assert (b.difference, b.low, b.high, b.b_better, b.a_better) == (0.0, 0.0, 0.0, 0.0, 0.0)
    assert not b.excludes_zero()


def test_bootstrap_of_a_system_better_on_every_utterance_excludes_zero():
    b = sig.paired_bootstrap([10] * 8, [3, 2, 4, 1, 2, 5, 3, 2], [1, 0, 2, 0, 1, 3, 1, 1], resamples=2000)
    assert b.rate_a == pytest.approx(100 * 22 / 80) and b.rate_b == pytest.approx(100 * 9 / 80)
    assert b.difference == pytest.approx(b.rate_b - b.rate_a)
    assert b.high < 0 and b.excludes_zero() and b.b_better == 1.0 and b.a_better == 0.0
    assert b.low <= b.difference <= b.high


def test_bootstrap_is_seeded_and_matches_exact_enumeration():
    """Three utterances: the 27 equally likely resamples, enumerated, give the exact
    probability that b is better; 20000 draws estimate it within 0.015."""
    words, err_a, err_b = [4, 2, 6], [1, 0, 3], [0, 2, 2]
    exact = []
    for draw in itertools.product(range(3), repeat=3):
        w = sum(words[k] for k in draw)
        exact.append(sum(err_b[k] for k in draw) / w - sum(err_a[k] for k in draw) / w)
    p_better = sum(d < 0 for d in exact) / 27
    b = sig.paired_bootstrap(words, err_a, err_b, resamples=20000, seed=3)
    assert abs(b.b_better - p_better) < 0.015 and abs(b.a_better - sum(d > 0 for d in exact) / 27) < 0.015
    assert b == sig.paired_bootstrap(words, err_a, err_b, resamples=20000, seed=3)
    assert b != sig.paired_bootstrap(words, err_a, err_b, resamples=20000, seed=4)
    assert 100 * min(exact) - 1e-9 <= b.low <= b.high <= 100 * max(exact) + 1e-9


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        sig.paired_bootstrap([], [], [])
    with pytest.raises(ValueError, match="same utterances"):
        sig.paired_bootstrap([1, 2], [0, 1], [0])
    with pytest.raises(ValueError, match="level"):
        sig.paired_bootstrap([1], [0], [0], level=1.5)
