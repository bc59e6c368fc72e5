"""tools/synth_corpus: the sentence source and the generator of the synthetic corpus (egs2/synth).

The generator tests synthesize a tiny corpus (a few dozen utterances, ~15 s on 2 cores) with the
real espeak-ng and flite; the sentence tests read a hand-made fortunes directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "synth_corpus"


def _load(name: str):
    if str(TOOL) not in sys.path:
        sys.path.insert(0, str(TOOL))
    spec = importlib.util.spec_from_file_location(f"synth_corpus_{name}", TOOL / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sentences = _load("sentences")
generate = _load("generate")

needs_synth = pytest.mark.skipif(
    not all(shutil.which(c) for c in ("espeak-ng", "flite", "sox")) or not sentences.FORTUNES_DIR.is_dir(),
    reason="espeak-ng, flite, sox and Debian's fortunes are installed by `make install` (as root)",
)

TINY = dict(unlabeled=12, train=30, dev=4, test_seen=4, test_unseen=4, test_other=4)


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (21, "twenty one"),
        (105, "one hundred five"),
        (1984, "one thousand nine hundred eighty four"),
        (250000, "two hundred fifty thousand"),
    ],
)
def test_spell_number(n, words):
    assert sentences.spell_number(n) == words


def test_spell_number_refuses_out_of_range():
    with pytest.raises(ValueError, match="1000000"):
        sentences.spell_number(1_000_000)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Don't panic!", "don't panic"),
        ("I saw 3 cats & 21 dogs.", "i saw three cats and twenty one dogs"),
        ("A well-known fact -- obviously.", "a well known fact obviously"),
        ("The 'quoted' word", "the quoted word"),
        ("Ask the IBM people", None),  # acronym: spelled letter by letter by a synthesizer
        ("It costs $5", None),  # a symbol the transcript cannot say
        ("Version 3.14 is out", None),  # a decimal number
        ("Caf\u00e9 society", None),  # a non-ASCII letter
    ],
)
def test_normalise(raw, expected):
    assert sentences.normalise(raw) == expected


def _fortunes(tmp_path: Path) -> Path:
    d = tmp_path / "fortunes"
    d.mkdir()
    (d / "wisdom").write_text(
        "The early bird gets the worm. But the second mouse gets the cheese!\n"
        "\t\t-- Anonymous Author\n%\n"
        "A penny saved is a penny earned.\n%\n"
        "Too short.\n%\n"
        "A penny saved is a penny earned.\n%\n"
    )
    (d / "wisdom.dat").write_bytes(b"\0" * 8)  # index files are not read
    (d / "perl").write_text("Just another Perl hacker who writes long sentences.\n%\n")  # an excluded category
    (d / "people").write_text("One two three four five six seven eight nine ten eleven.\n%\n")
    return d


def test_sentences_split_clean_deduplicate_and_sort(tmp_path):
    got = sentences.sentences(_fortunes(tmp_path), min_words=3, max_words=10)
    assert got == [
        "a penny saved is a penny earned",
        "but the second mouse gets the cheese",
        "the early bird gets the worm",
    ]


def test_sentences_word_limits(tmp_path):
    got = sentences.sentences(_fortunes(tmp_path), min_words=2, max_words=11)
    assert "too short" in got and "one two three four five six seven eight nine ten eleven" in got
    assert not any("anonymous" in s or "perl" in s for s in got)


def test_sentences_refuse_an_empty_directory(tmp_path):
    with pytest.raises(ValueError, match="fortunes"):
        sentences.sentences(tmp_path)


def _manifest(out: Path) -> list[dict]:
    lines = (out / "manifest.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "corpus"
    summary = generate.generate(
        out,
        seed=3,
        nj=2,
        counts=TINY,
        n_seen=6,
        n_unseen=3,
        n_other=3,
        subset_seconds=(10.0, 30.0),
        log=lambda *_: None,
    )
    return out, summary


@needs_synth
def test_generate_writes_every_set_as_16khz_mono_flac(tiny_corpus):
    out, summary = tiny_corpus
    rows = _manifest(out)
    assert {s: sum(r["set"] == s for r in rows) for s in generate.SETS} == TINY
    for r in rows:
        path = out / r["path"]
        assert path.read_bytes()[:4] == b"fLaC"
        head = path.read_bytes()[:42]
        info = int.from_bytes(head[18:26], "big")
        assert info >> 44 == 16000 and ((info >> 41) & 7) + 1 == 1  # rate, channels
        assert 0.5 < float(r["duration"]) < 15, r
        assert r["text"] and set(r["text"]) <= set("abcdefghijklmnopqrstuvwxyz' ")
    assert summary["synthesized"] == len(rows) and summary["mb_per_audio_hour"] > 0


@needs_synth
def test_no_sentence_is_shared_between_sets(tiny_corpus):
    rows = _manifest(tiny_corpus[0])
    texts = [r["text"] for r in rows]
    assert len(set(texts)) == len(texts)


@needs_synth
def test_test_sets_have_their_own_voices_and_synthesizer(tiny_corpus):
    rows = _manifest(tiny_corpus[0])
    seen = {r["spk"] for r in rows if r["set"] in ("unlabeled", "train", "dev", "test_seen")}
    seen_variants = {r["variant"] for r in rows if r["spk"] in seen}
    unseen = [r for r in rows if r["set"] == "test_unseen"]
    assert all(r["synth"] == "espeak-ng" and r["variant"] not in seen_variants for r in unseen)
    assert all(r["synth"] == "flite" for r in rows if r["set"] == "test_other")
    assert all(r["synth"] == "espeak-ng" for r in rows if r["spk"] in seen)
    assert len(seen) == 6


@needs_synth
def test_subsets_are_nested_and_long_enough(tiny_corpus):
    out = tiny_corpus[0]
    dur = {r["uttid"]: float(r["duration"]) for r in _manifest(out) if r["set"] == "train"}
    small = (out / "subsets" / "train_10min").read_text().split()
    large = (out / "subsets" / "train_1h").read_text().split()
    assert set(small) < set(large) <= set(dur)
    assert sum(dur[u] for u in small) >= 10.0 and sum(dur[u] for u in large) >= 30.0
    # no longer than needed: it overshoots its duration by less than one utterance
    assert sum(dur[u] for u in small) < 10.0 + max(dur.values())
    assert sum(dur[u] for u in large) < 30.0 + max(dur.values())


@needs_synth
def test_same_seed_same_corpus_other_seed_other_corpus(tiny_corpus, tmp_path):
    counts = dict(TINY, unlabeled=2, train=12)
    kw = dict(counts=counts, n_seen=6, n_unseen=3, n_other=3, subset_seconds=(5.0, 15.0), log=lambda *_: None)
    generate.generate(tmp_path / "a", seed=3, nj=1, **kw)
    generate.generate(tmp_path / "b", seed=3, nj=2, **kw)
    generate.generate(tmp_path / "c", seed=4, nj=2, **kw)

    def digest(d: Path) -> str:
        h = hashlib.sha256((d / "manifest.tsv").read_bytes())
        for r in _manifest(d):
            h.update((d / r["path"]).read_bytes())
        return h.hexdigest()

    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert (tmp_path / "a" / "manifest.tsv").read_text() != (tmp_path / "c" / "manifest.tsv").read_text()


@needs_synth
def test_a_complete_corpus_is_reused_and_a_partial_one_resumed(tmp_path):
    kw = dict(
        seed=1,
        nj=2,
        counts=dict(TINY, unlabeled=2, train=12),
        n_seen=6,
        n_unseen=3,
        n_other=3,
        subset_seconds=(5.0, 15.0),
        log=lambda *_: None,
    )
    first = generate.generate(tmp_path, **kw)
    manifest = (tmp_path / "manifest.tsv").read_text()
    flacs = sorted((tmp_path / "wav").rglob("*.flac"))
    assert generate.generate(tmp_path, **kw) == first  # reused: .done matches
    (tmp_path / ".done").unlink()
    flacs[0].unlink()
    again = generate.generate(tmp_path, **kw)
    assert again["synthesized"] == 1 and (tmp_path / "manifest.tsv").read_text() == manifest


@needs_synth
def test_other_options_in_a_complete_corpus_are_refused(tmp_path):
    kw = dict(
        nj=2,
        counts=dict(TINY, unlabeled=2, train=12),
        n_seen=6,
        n_unseen=3,
        n_other=3,
        subset_seconds=(5.0, 15.0),
        log=lambda *_: None,
    )
    generate.generate(tmp_path, seed=1, **kw)
    with pytest.raises(ValueError, match="other options"):
        generate.generate(tmp_path, seed=2, **kw)


def test_plan_refuses_more_utterances_than_sentences():
    with pytest.raises(ValueError, match="distinct sentences"):
        generate.plan(0, dict(TINY), 6, 3, 3, ["a b c"] * 10)


def test_subsets_refuse_a_train_set_too_short():
    import random

    with pytest.raises(ValueError, match="raise --n_train"):
        generate.choose_subsets(random.Random(0), [("a", 100.0), ("b", 200.0)])
