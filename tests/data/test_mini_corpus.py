"""Tests of the shipped mini corpus (egs2/mini/corpus) and of its generator."""

import re
import shutil
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tools import mini_corpus as mc

CORPUS = Path(__file__).resolve().parents[2] / "egs2" / "mini" / "corpus"
EXPECTED_UTTS = {"en": 240, "zh": 90, "ja": 90}
EXPECTED_SPEAKERS = {"en": 16, "zh": 6, "ja": 6}
HIRAGANA = re.compile(r"^[\u3041-\u309f]+$")


@pytest.fixture(scope="module")
def corpus():
    """{lang: (speaker info, utterances)} as read from the shipped corpus."""
    return {lang: mc.load_language(CORPUS, lang) for lang in mc.LANGUAGES}


def test_counts_per_language(corpus):
    for lang, (speakers, utts) in corpus.items():
        assert len(utts) == EXPECTED_UTTS[lang], lang
        assert len(speakers) == EXPECTED_SPEAKERS[lang], lang
        assert set(Counter(u.spk for u in utts).values()) == {mc.UTTS_PER_SPEAKER}


def test_every_text_line_has_audio_and_nothing_else(corpus):
    for lang, (_, utts) in corpus.items():
        flacs = {p.stem for p in (CORPUS / lang / "wav").iterdir()}
        assert flacs == {u.uttid for u in utts}, lang


def test_tables_sorted_and_ids_well_formed(corpus):
    for lang, (speakers, utts) in corpus.items():
        for name in ("text", "utt2spk", "spk2info"):
            keys = [line.split(" ", 1)[0] for line in (CORPUS / lang / name).read_text().splitlines()]
            assert keys == sorted(keys), f"{lang}/{name}"
        for utt in utts:
            assert re.fullmatch(rf"s\d\d-{lang}-\d{{4}}", utt.uttid)
            assert utt.uttid.startswith(utt.spk + "-")
        for info in speakers.values():
            assert set(info) == {"voice", "variant", "rate", "pitch", "sex"}
            assert 130 <= int(info["rate"]) <= 190 and 30 <= int(info["pitch"]) <= 70
    all_speakers = [spk for speakers, _ in corpus.values() for spk in speakers]
    assert len(all_speakers) == len(set(all_speakers))


def test_audio_format_and_durations(corpus):
    total = 0.0
    for _, utts in corpus.values():
        for utt in utts:
            info = sf.info(str(utt.audio))
            assert (info.samplerate, info.channels, info.subtype, info.format) == (
                16000,
                1,
                "PCM_16",
                "FLAC",
            ), utt.uttid
            assert mc.MIN_DURATION <= info.duration <= mc.MAX_DURATION, utt.uttid
            total += info.duration
    assert 300 < total < 1200


def test_corpus_size_within_budget():
    size = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert size <= mc.MAX_CORPUS_BYTES
    assert (CORPUS / "README.md").is_file()


def test_vocabularies(corpus):
    en_words = set(mc.EN_WORDS)
    for utt in corpus["en"][1]:
        words = utt.text.split()
        assert 2 <= len(words) <= 5 and set(words) <= en_words, utt
    zh_words = {w for w, _ in mc.ZH_WORDS}
    for utt in corpus["zh"][1]:
        words = utt.text.split()
        assert 2 <= len(words) <= 4 and set(words) <= zh_words, utt
    for utt in corpus["ja"][1]:
        assert HIRAGANA.match(utt.text), utt


def test_every_english_speaker_reads_the_shared_sentences_once(corpus):
    speakers, utts = corpus["en"]
    for sentence in mc.SHARED_SENTENCES:
        readers = Counter(u.spk for u in utts if u.text == sentence)
        assert readers == Counter({spk: 1 for spk in speakers})


def test_phones_and_words(corpus):
    phones = mc.read_segments(CORPUS / "en" / "phones")
    words = mc.read_segments(CORPUS / "en" / "words")
    _, utts = corpus["en"]
    assert set(phones) == set(words) == {u.uttid for u in utts}
    timit = set(mc.TIMIT_PHONES)
    for utt in utts:
        segs = phones[utt.uttid]
        n_samples = sf.info(str(utt.audio)).frames
        assert segs[0].label == segs[-1].label == "h#"
        assert segs[0].start == 0 and segs[-1].end == n_samples
        assert all(a.end == b.start for a, b in pairwise(segs))
        assert all(s.start < s.end for s in segs) and {s.label for s in segs} <= timit
        assert [w.label for w in words[utt.uttid]] == utt.text.split()
        assert words[utt.uttid][0].start == segs[1].start
        assert words[utt.uttid][-1].end == segs[-1].start


def test_shipped_text_is_the_seed_0_plan(corpus):
    plan = mc.plan_corpus(0)
    assert plan == mc.plan_corpus(0)
    assert plan != mc.plan_corpus(1)
    for lang, (speakers, utts) in corpus.items():
        planned_speakers, planned = plan[lang]
        assert [(u.uttid, u.spk, u.text) for u in planned] == [(u.uttid, u.spk, u.text) for u in utts]
        assert {s.spk: s.voice for s in planned_speakers} == {spk: info["voice"] for spk, info in speakers.items()}


def test_timit_phone_set_and_mapping():
    assert len(mc.TIMIT_PHONES) == len(set(mc.TIMIT_PHONES)) == 61
    assert {p for phones in mc.ESPEAK_TO_TIMIT.values() for p in phones} <= set(mc.TIMIT_PHONES)
    assert mc.espeak_word_to_timit("s.'E.v.@.n") == ["s", "eh", "v", "ax", "n"]
    assert mc.espeak_word_to_timit("s.t2.'0.p") == ["s", "tcl", "t", "aa", "pcl", "p"]
    assert mc.espeak_word_to_timit("f.'o@.r") == ["f", "ao", "r"]  # no doubled r
    with pytest.raises(ValueError, match="no TIMIT mapping"):
        mc.espeak_word_to_timit("q.'Y")


def test_trim_and_pad_reaches_minimum_duration():
    audio = np.zeros(16000, np.int16)
    audio[4800:6400] = 1000  # 10 ms frames 30..39: trimmed to exactly this span
    out, start, end = mc.trim_and_pad(audio)
    assert len(out) >= mc.MIN_DURATION * 16000
    assert end - start == 1600 and np.all(out[:start] == 0) and np.all(out[end:] == 0)


def test_align_spreads_phones_over_speech():
    phones, words = mc.align(["go", "up"], [["gcl", "g", "ow"], ["ah", "pcl", "p"]], 1000, 100, 900)
    assert [p.label for p in phones] == ["h#", "gcl", "g", "ow", "ah", "pcl", "p", "h#"]
    assert phones[1].start == 100 and phones[-2].end == 900
    assert words[0].end == words[1].start and words[0].label == "go"


def test_reader_errors_name_the_file(tmp_path):
    bad = tmp_path / "text"
    bad.write_text("a x\na y\n")
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        mc.read_table(bad)
    lang = tmp_path / "en"
    (lang / "wav").mkdir(parents=True)
    (lang / "text").write_text("s01-en-0000 go up\n")
    (lang / "utt2spk").write_text("s01-en-0000 s01\n")
    (lang / "spk2info").write_text("s01 voice=en-us variant=m1 rate=150 pitch=50 sex=m\n")
    with pytest.raises(ValueError, match="s01-en-0000.flac"):
        mc.load_language(tmp_path, "en")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the espeak-ng command")
def test_synthesis_smoke(tmp_path):
    plan = mc.plan_corpus(0)
    for lang in ("en", "ja"):
        speakers, utts = plan[lang]
        utt = utts[0]
        speaker = next(s for s in speakers if s.spk == utt.spk)
        path = tmp_path / f"{utt.uttid}.flac"
        audio, phones, words = mc.synthesize_utterance(utt, speaker, path)
        info = sf.info(str(path))
        assert info.samplerate == 16000 and info.frames == len(audio)
        assert mc.MIN_DURATION <= info.duration <= mc.MAX_DURATION
        assert np.abs(audio).max() > 1000
        if lang == "en":
            assert phones[0].label == "h#" and [w.label for w in words] == list(utt.words)
        else:
            assert phones == [] and words == []
