"""The embedded mini corpus: speech synthesized with espeak-ng in English, Mandarin and Japanese.

The project ships a few hundred short synthetic utterances so that every recipe (data preparation,
tokenization, CTC training, decoding, scoring) can run end to end on a CPU in minutes, with no
corpus download. Sentences come from tiny built-in word lists and a seeded random generator, so a
small model learns them quickly; the audio comes from the ``espeak-ng`` command-line synthesizer.

Each *speaker* is one (voice, variant, rate, pitch) combination of espeak-ng, e.g. voice
``en-us``, variant ``m3``, 150 words per minute, pitch 40.

What :func:`generate_corpus` writes (``out_dir`` is usually ``egs2/mini/corpus``)::

    <out_dir>/
      README.md            (written by hand: what the corpus is, licence)
      {en,zh,ja}/
        wav/<uttid>.flac   16 kHz, mono, 16-bit FLAC; 0.8-3 s each
        text               "<uttid> <transcript>" lines, sorted by uttid
        utt2spk            "<uttid> <spk>" lines, sorted by uttid
        spk2info           "<spk> voice=<v> variant=<var> rate=<wpm> pitch=<p> sex=<m|f>", sorted
      en/phones            "<uttid> s e ph s e ph ..." TIMIT 61-phone segments, sample offsets
      en/words             "<uttid> s e w s e w ..." word segments, sample offsets

* Utterance ids are ``<spk>-<lang>-<nnnn>`` (e.g. ``s03-en-0007``) with ``nnnn`` counting the
  speaker's utterances from 0000; speaker ids ``s01``, ``s02``, ... are unique over all languages,
  so sorting by uttid groups utterances by speaker (Kaldi's convention).
* English: sentences of 2-5 words from :data:`EN_WORDS` (digits, colours, commands), lower case.
  Every English speaker reads the two :data:`SHARED_SENTENCES` (TIMIT's SA1/SA2 role), five
  sentences from a pool shared between speakers (SX role) and eight sentences no one else reads
  (SI role), in a shuffled order; :mod:`tools.mini_layouts` relies on that.
* Mandarin: 2-4 words from :data:`ZH_WORDS`, words separated by spaces as in AISHELL-1. The
  ``cmn-latn-pinyin`` voice is used because the Debian ``cmn`` voice reads Hanzi through English
  (``你`` comes out as "ni three").
* Japanese: 2-4 words from :data:`JA_WORDS`, written in hiragana (espeak-ng does not read kanji)
  and joined without spaces as in JSUT.
* Phone and word segments: espeak-ng's phonemes (``-x``) are mapped to TIMIT's 61-phone set by
  :data:`ESPEAK_TO_TIMIT` (stops become closure + release, e.g. ``t`` -> ``tcl t``). The offsets are
  APPROXIMATE: ``h#`` covers the leading and trailing silence exactly, and the speech in between
  is shared among the phones in proportion to a fixed weight per phone class; they are not forced
  alignments.

The text is a pure function of the seed; the audio is whatever the installed espeak-ng produces
(stable for one espeak-ng version). Regenerate with::

    python -m tools.mini_corpus --out egs2/mini/corpus --seed 0
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from math import gcd
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
LANGUAGES = ("en", "zh", "ja")
MIN_DURATION = 0.8
MAX_DURATION = 3.0
MAX_CORPUS_BYTES = 20 * 1024 * 1024
LEAD_SILENCE = 0.12  # seconds of silence kept before the speech
TAIL_SILENCE = 0.15  # ... and after it

EN_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "red", "green", "blue", "yellow", "white", "black",
    "go", "stop", "left", "right", "up", "down", "yes", "no", "off",
)  # fmt: skip
SHARED_SENTENCES = ("stop two green yes", "go left nine blue off")

# (word, pinyin with tone digits); pinyin feeds the AISHELL-style lexicon of mini_layouts.
ZH_WORDS = (
    ("一", "yi1"), ("二", "er4"), ("三", "san1"), ("四", "si4"), ("五", "wu3"),
    ("六", "liu4"), ("七", "qi1"), ("八", "ba1"), ("九", "jiu3"), ("十", "shi2"),
    ("北京", "bei3 jing1"), ("上海", "shang4 hai3"), ("今天", "jin1 tian1"),
    ("明天", "ming2 tian1"), ("天气", "tian1 qi4"), ("很好", "hen3 hao3"),
    ("红色", "hong2 se4"), ("蓝色", "lan2 se4"), ("开始", "kai1 shi3"),
    ("停止", "ting2 zhi3"), ("我们", "wo3 men5"), ("电视", "dian4 shi4"),
)  # fmt: skip
JA_WORDS = (
    "あか", "あお", "しろ", "くろ", "みどり", "いち", "に", "さん", "よん", "ご",
    "ろく", "なな", "はち", "きゅう", "みぎ", "ひだり", "うえ", "した", "はい", "いいえ",
)  # fmt: skip

# Per language: (number of speakers, utterances per speaker, voice, rates, pitches).
EN_VOICES = ("en-us", "en-gb", "en-us-nyc", "en-gb-scotland", "en-029", "en-gb-x-rp")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")
RATES = (130, 140, 150, 160, 170, 180, 190)
PITCHES = (30, 35, 40, 45, 50, 55, 60, 65, 70)
N_SPEAKERS = {"en": 16, "zh": 6, "ja": 6}
UTTS_PER_SPEAKER = 15
N_SX_PER_SPEAKER = 5
N_SX_POOL = 20

# TIMIT's 61 phones: stops, closures, affricates, fricatives, nasals, semivowels, vowels, others.
TIMIT_PHONES = (
    "b", "d", "g", "p", "t", "k", "dx", "q",
    "bcl", "dcl", "gcl", "pcl", "tcl", "kcl",
    "jh", "ch",
    "s", "sh", "z", "zh", "f", "th", "v", "dh",
    "m", "n", "ng", "em", "en", "eng", "nx",
    "l", "r", "w", "y", "hh", "hv", "el",
    "iy", "ih", "eh", "ey", "ae", "aa", "aw", "ay", "ah", "ao", "oy", "ow", "uh", "uw", "ux",
    "er", "ax", "ix", "axr", "ax-h",
    "pau", "epi", "h#",
)  # fmt: skip

# espeak-ng English phoneme mnemonics (stress marks removed) -> TIMIT phones.
ESPEAK_TO_TIMIT: dict[str, tuple[str, ...]] = {
    # stops and affricates: closure + release
    "p": ("pcl", "p"), "b": ("bcl", "b"), "t": ("tcl", "t"), "d": ("dcl", "d"),
    "k": ("kcl", "k"), "g": ("gcl", "g"), "t2": ("tcl", "t"), "t[": ("tcl", "t"),
    "d[": ("dcl", "d"), "t#": ("dx",), "d#": ("dx",), "?": ("q",),
    "tS": ("tcl", "ch"), "dZ": ("dcl", "jh"),
    # fricatives
    "f": ("f",), "v": ("v",), "T": ("th",), "D": ("dh",), "s": ("s",), "z": ("z",),
    "S": ("sh",), "Z": ("zh",), "h": ("hh",), "x": ("hh",), "C": ("hh",),
    # nasals and semivowels
    "m": ("m",), "n": ("n",), "N": ("ng",), "n-": ("en",), "m-": ("em",),
    "l": ("l",), "l/": ("l",), "l-": ("el",), "@L": ("el",), "r": ("r",), "r-": ("r",),
    "w": ("w",), "w#": ("w",), "j": ("y",),
    # vowels
    "@": ("ax",), "@2": ("ax",), "@5": ("ax",), "a#": ("ax",), "3": ("axr",), "3:": ("er",),
    "a": ("ae",), "aa": ("aa",), "A:": ("aa",), "A": ("aa",), "A@": ("aa", "r"), "0": ("aa",),
    "E": ("eh",), "e": ("eh",), "e@": ("eh", "r"),
    "I": ("ih",), "I2": ("ix",), "I#": ("ix",), "i": ("iy",), "i:": ("iy",), "i@": ("iy",),
    "i@3": ("iy", "r"), "O": ("ao",), "O:": ("ao",), "O2": ("ao",), "O@": ("ao", "r"),
    "o@": ("ao", "r"), "o@r": ("ao", "r"), "oU": ("ow",), "o": ("ow",),
    "u:": ("uw",), "u": ("uw",), "U": ("uh",), "U@": ("uh", "r"), "V": ("ah",),
    "aI": ("ay",), "aI2": ("ay",), "aI@": ("ay", "er"), "aU": ("aw",), "aU@": ("aw", "er"),
    "eI": ("ey",), "OI": ("oy",),
}  # fmt: skip

_VOWELS = frozenset(TIMIT_PHONES[38:58])
_RELEASES = frozenset(("b", "d", "g", "p", "t", "k", "dx", "q"))
_STRESS_MARKS = str.maketrans("", "", "',=;")  # stress, syllabic and palatal marks


class Speaker(NamedTuple):
    """One synthetic speaker: an espeak-ng voice, variant, rate (words/min) and pitch (0-99)."""

    spk: str
    lang: str
    voice: str
    variant: str
    rate: int
    pitch: int
    sex: str  # "m" or "f", from the variant

    @property
    def espeak_voice(self) -> str:
        """The ``-v`` argument of espeak-ng, e.g. ``en-us+m3``."""
        return f"{self.voice}+{self.variant}"


class Utterance(NamedTuple):
    """One planned utterance: ``words`` are spoken; ``text`` is the transcript written out."""

    uttid: str
    spk: str
    words: tuple[str, ...]
    text: str


class Segment(NamedTuple):
    """A labelled span ``[start, end)`` in samples (16 kHz)."""

    start: int
    end: int
    label: str


# ---------------------------------------------------------------------------------------------
# Planning (text only, a pure function of the seed)
# ---------------------------------------------------------------------------------------------


def make_speakers(lang: str, count: int, first_index: int, rng: random.Random) -> list[Speaker]:
    """Draw ``count`` distinct speakers for ``lang``, alternating male and female variants."""
    voices = EN_VOICES if lang == "en" else (("cmn-latn-pinyin",) if lang == "zh" else ("ja",))
    speakers: list[Speaker] = []
    seen = set()
    for i in range(count):
        sex = "m" if i % 2 == 0 else "f"
        while True:
            voice = voices[i % len(voices)]
            variant = rng.choice(MALE_VARIANTS if sex == "m" else FEMALE_VARIANTS)
            key = (voice, variant, rng.choice(RATES), rng.choice(PITCHES))
            if key not in seen:
                break
        seen.add(key)
        spk = f"s{first_index + i:02d}"
        speakers.append(Speaker(spk, lang, key[0], key[1], key[2], key[3], sex))
    return speakers


def _draw_words(rng: random.Random, vocab: Sequence[str], low: int, high: int) -> tuple[str, ...]:
    return tuple(rng.choice(vocab) for _ in range(rng.randint(low, high)))


def english_sentences(rng: random.Random, n_speakers: int) -> list[list[str]]:
    """Per speaker, shuffled: the two shared sentences, some from a shared pool, unique ones.

    A sentence never plays two roles: pool sentences differ from the shared ones, and the unique
    (SI-like) sentences differ from each other, from the pool and from the shared ones.
    """
    used = set(SHARED_SENTENCES)
    pool: list[str] = []
    while len(pool) < N_SX_POOL:
        sentence = " ".join(_draw_words(rng, EN_WORDS, 3, 5))
        if sentence not in used:
            used.add(sentence)
            pool.append(sentence)
    per_speaker = []
    for i in range(n_speakers):
        sentences = list(SHARED_SENTENCES)
        sentences += [pool[(i * N_SX_PER_SPEAKER + j) % N_SX_POOL] for j in range(N_SX_PER_SPEAKER)]
        while len(sentences) < UTTS_PER_SPEAKER:
            sentence = " ".join(_draw_words(rng, EN_WORDS, 2, 5))
            if sentence not in used:
                used.add(sentence)
                sentences.append(sentence)
        rng.shuffle(sentences)
        per_speaker.append(sentences)
    return per_speaker


def _zh_sentence(rng: random.Random) -> tuple[str, ...]:
    """2-4 Mandarin words of at most 6 characters in all (keeps utterances under 3 s)."""
    vocab = [word for word, _ in ZH_WORDS]
    while True:
        words = _draw_words(rng, vocab, 2, 4)
        if sum(len(w) for w in words) <= 6:
            return words


def _ja_sentence(rng: random.Random) -> tuple[str, ...]:
    """2-4 Japanese words of at most 9 kana in all (keeps utterances under 3 s)."""
    while True:
        words = _draw_words(rng, JA_WORDS, 2, 4)
        if sum(len(w) for w in words) <= 9:
            return words


def plan_corpus(seed: int = 0) -> dict[str, tuple[list[Speaker], list[Utterance]]]:
    """Speakers and utterances of every language; the same seed always gives the same plan."""
    rng = random.Random(seed)
    plan: dict[str, tuple[list[Speaker], list[Utterance]]] = {}
    first_index = 1
    for lang in LANGUAGES:
        speakers = make_speakers(lang, N_SPEAKERS[lang], first_index, rng)
        first_index += len(speakers)
        if lang == "en":
            texts = english_sentences(rng, len(speakers))
            words = [[tuple(t.split()) for t in sentences] for sentences in texts]
        else:
            draw = _zh_sentence if lang == "zh" else _ja_sentence
            words = [[draw(rng) for _ in range(UTTS_PER_SPEAKER)] for _ in speakers]
        joiner = "" if lang == "ja" else " "
        utts = [
            Utterance(f"{spk.spk}-{lang}-{n:04d}", spk.spk, w, joiner.join(w))
            for spk, spk_words in zip(speakers, words, strict=True)
            for n, w in enumerate(spk_words)
        ]
        plan[lang] = (speakers, sorted(utts))
    return plan


# ---------------------------------------------------------------------------------------------
# Synthesis
# ---------------------------------------------------------------------------------------------


def run_espeak(text: str, speaker: Speaker, phonemes: bool = False) -> tuple[np.ndarray, str]:
    """Synthesize ``text`` with espeak-ng; return (int16 samples at 16 kHz, phoneme string).

    The phoneme string is espeak-ng's ``-x --sep=.`` output (words separated by spaces, phonemes
    by dots), or ``""`` when ``phonemes`` is false.
    """
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng not found: install it (Debian package espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "out.wav")
        voice = ["-v", speaker.espeak_voice, "-s", str(speaker.rate), "-p", str(speaker.pitch)]
        cmd = ["espeak-ng", *voice, "-w", wav]
        if phonemes:
            cmd += ["-x", "--sep=."]
        proc = subprocess.run(cmd + ["--", text], capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not os.path.exists(wav):
            raise RuntimeError(f"espeak-ng failed on {text!r} ({' '.join(cmd)}): {proc.stderr}")
        audio, rate = sf.read(wav, dtype="float64")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return resample_to_int16(audio, rate, SAMPLE_RATE), proc.stdout.strip()


def resample_to_int16(audio: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resample float audio in [-1, 1] from ``rate`` to ``target`` Hz (polyphase) and quantize."""
    if rate != target:
        from scipy.signal import resample_poly

        g = gcd(rate, target)
        audio = resample_poly(audio, target // g, rate // g)
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)


def trim_and_pad(audio: np.ndarray, rate: int = SAMPLE_RATE) -> tuple[np.ndarray, int, int]:
    """Cut leading/trailing silence, then pad with digital silence (at least 0.8 s in all).

    Returns (audio, first speech sample, end of speech) in the returned audio's samples.
    """
    frame = rate // 100
    n_frames = len(audio) // frame
    if n_frames == 0:
        raise RuntimeError("espeak-ng produced no audio")
    peaks = np.abs(audio[: n_frames * frame].astype(np.int32)).reshape(n_frames, frame).max(axis=1)
    loud = np.flatnonzero(peaks > max(1, int(peaks.max()) // 50))
    speech = audio[loud[0] * frame : (loud[-1] + 1) * frame]
    lead, tail = int(LEAD_SILENCE * rate), int(TAIL_SILENCE * rate)
    missing = int(MIN_DURATION * rate) + frame - (lead + len(speech) + tail)
    if missing > 0:
        lead, tail = lead + missing // 2, tail + missing - missing // 2
    out = np.concatenate([np.zeros(lead, np.int16), speech, np.zeros(tail, np.int16)])
    return out, lead, lead + len(speech)


# ---------------------------------------------------------------------------------------------
# Phones
# ---------------------------------------------------------------------------------------------


def espeak_word_to_timit(word: str) -> list[str]:
    """Map one espeak-ng ``-x --sep=.`` word (e.g. ``s.'E.v.@.n``) to TIMIT phones."""
    phones: list[str] = []
    for token in word.split("."):
        token = token.translate(_STRESS_MARKS)
        if not token or token.startswith("_"):
            continue
        if token not in ESPEAK_TO_TIMIT:
            raise ValueError(
                f"espeak-ng phoneme {token!r} (in {word!r}) has no TIMIT mapping; "
                "expected one of the keys of ESPEAK_TO_TIMIT"
            )
        for phone in ESPEAK_TO_TIMIT[token]:
            if not (phone == "r" and phones and phones[-1] == "r"):
                phones.append(phone)
    return phones


def phone_weight(phone: str) -> float:
    """Relative duration of a phone class, used to spread phones over the speech."""
    if phone in _VOWELS:
        return 2.0
    if phone in _RELEASES:
        return 0.6
    if phone.endswith("cl"):
        return 0.8
    return 1.2


def align(
    words: Sequence[str], word_phones: Sequence[Sequence[str]], n_samples: int, start: int, end: int
) -> tuple[list[Segment], list[Segment]]:
    """Approximate phone and word segments: ``h#`` outside ``[start, end)``, weights inside."""
    weights = [phone_weight(p) for phones in word_phones for p in phones]
    edges = np.concatenate([[0.0], np.cumsum(weights)]) / sum(weights)
    bounds = np.round(start + edges * (end - start)).astype(int)
    phones = [Segment(0, start, "h#")]
    word_segments = []
    k = 0
    for word, wp in zip(words, word_phones, strict=True):
        word_segments.append(Segment(int(bounds[k]), int(bounds[k + len(wp)]), word))
        for phone in wp:
            phones.append(Segment(int(bounds[k]), int(bounds[k + 1]), phone))
            k += 1
    phones.append(Segment(end, n_samples, "h#"))
    return phones, word_segments


def english_phones(words: Sequence[str], espeak_output: str, speaker: Speaker) -> list[list[str]]:
    """TIMIT phones per word from the sentence's espeak-ng output (word by word if words merged)."""
    groups = espeak_output.split()
    if len(groups) != len(words):
        groups = [run_espeak(w, speaker, phonemes=True)[1] for w in words]
    return [espeak_word_to_timit(g) for g in groups]


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def synthesize_utterance(utt: Utterance, speaker: Speaker, wav_path: Path | None = None):
    """Synthesize one utterance; write it as FLAC when ``wav_path`` is given.

    Returns (int16 audio, phone segments, word segments); the segments are empty lists for
    languages other than English.
    """
    spoken = " ".join(utt.words)
    audio, phonemes = run_espeak(spoken, speaker, phonemes=speaker.lang == "en")
    audio, start, end = trim_and_pad(audio)
    if len(audio) > MAX_DURATION * SAMPLE_RATE:
        raise RuntimeError(
            f"{utt.uttid}: {len(audio) / SAMPLE_RATE:.2f} s is over {MAX_DURATION} s; shorten the sentence plan"
        )
    phones: list[Segment] = []
    words: list[Segment] = []
    if speaker.lang == "en":
        word_phones = english_phones(utt.words, phonemes, speaker)
        phones, words = align(utt.words, word_phones, len(audio), start, end)
    if wav_path is not None:
        sf.write(str(wav_path), audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return audio, phones, words


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _segments_line(uttid: str, segments: Sequence[Segment]) -> str:
    return " ".join([uttid] + [f"{s.start} {s.end} {s.label}" for s in segments])


def write_language(out_dir: Path, lang: str, speakers: list[Speaker], utts: list[Utterance]) -> int:
    """Synthesize and write one language's directory; return the number of utterances."""
    lang_dir = out_dir / lang
    (lang_dir / "wav").mkdir(parents=True, exist_ok=True)
    by_spk = {s.spk: s for s in speakers}
    phone_lines, word_lines = [], []
    for utt in utts:
        _, phones, words = synthesize_utterance(utt, by_spk[utt.spk], lang_dir / "wav" / f"{utt.uttid}.flac")
        if lang == "en":
            phone_lines.append(_segments_line(utt.uttid, phones))
            word_lines.append(_segments_line(utt.uttid, words))
    _write_lines(lang_dir / "text", (f"{u.uttid} {u.text}" for u in utts))
    _write_lines(lang_dir / "utt2spk", (f"{u.uttid} {u.spk}" for u in utts))
    _write_lines(
        lang_dir / "spk2info",
        (f"{s.spk} voice={s.voice} variant={s.variant} rate={s.rate} pitch={s.pitch} sex={s.sex}" for s in speakers),
    )
    if lang == "en":
        _write_lines(lang_dir / "phones", phone_lines)
        _write_lines(lang_dir / "words", word_lines)
    return len(utts)


def generate_corpus(out_dir, seed: int = 0, languages: Sequence[str] = LANGUAGES) -> dict[str, int]:
    """Synthesize the mini corpus into ``out_dir``; return the utterance count per language.

    Existing FLAC files of a language are removed first, so the directory holds exactly the plan.
    """
    out_dir = Path(out_dir)
    plan = plan_corpus(seed)
    counts = {}
    for lang in languages:
        if lang not in plan:
            raise ValueError(f"unknown language {lang!r}; expected one of {LANGUAGES}")
        for old in (out_dir / lang / "wav").glob("*.flac"):
            old.unlink()
        counts[lang] = write_language(out_dir, lang, *plan[lang])
    return counts


# ---------------------------------------------------------------------------------------------
# Reading (used by mini_layouts and the tests)
# ---------------------------------------------------------------------------------------------


class CorpusUtterance(NamedTuple):
    """One utterance of the written corpus."""

    uttid: str
    spk: str
    text: str
    audio: Path  # the FLAC file


def read_table(path) -> dict[str, str]:
    """Read ``<key> <value>`` lines (value may hold spaces) into an ordered dict.

    Raises ValueError naming the file and line when a line has no value or a key repeats.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: expected a '<key> <value>' table, found no such file")
    table: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        key, _, value = line.strip().partition(" ")
        if not key or not value.strip():
            raise ValueError(f"{path}:{lineno}: expected '<key> <value>', found {line!r}")
        if key in table:
            raise ValueError(f"{path}:{lineno}: key {key!r} appears twice")
        table[key] = value.strip()
    return table


def read_segments(path) -> dict[str, list[Segment]]:
    """Read an ``en/phones`` or ``en/words`` file: ``<uttid>`` then ``start end label`` triples."""
    segments: dict[str, list[Segment]] = {}
    for uttid, rest in read_table(path).items():
        fields = rest.split()
        if len(fields) % 3 or not all(f.isdigit() for f in fields[0::3] + fields[1::3]):
            raise ValueError(
                f"{path}: utterance {uttid}: expected 'start end label' triples "
                f"with integer offsets, found {rest[:60]!r}"
            )
        segments[uttid] = [Segment(int(fields[i]), int(fields[i + 1]), fields[i + 2]) for i in range(0, len(fields), 3)]
    return segments


def read_spk2info(path) -> dict[str, dict[str, str]]:
    """Read ``spk2info``: ``<spk> key=value ...`` lines into ``{spk: {key: value}}``."""
    info = {}
    for spk, rest in read_table(path).items():
        pairs = [field.partition("=") for field in rest.split()]
        if any(not sep or not key for key, sep, _ in pairs):
            raise ValueError(f"{path}: speaker {spk}: expected key=value fields, found {rest!r}")
        info[spk] = {key: value for key, _, value in pairs}
    return info


def load_language(corpus_dir, lang: str) -> tuple[dict[str, dict[str, str]], list[CorpusUtterance]]:
    """Read one language of the written corpus: (speaker info, utterances sorted by uttid).

    Raises ValueError naming the file when the text, utt2spk, spk2info and wav/ disagree.
    """
    lang_dir = Path(corpus_dir) / lang
    text = read_table(lang_dir / "text")
    utt2spk = read_table(lang_dir / "utt2spk")
    speakers = read_spk2info(lang_dir / "spk2info")
    if set(text) != set(utt2spk):
        odd = sorted(set(text) ^ set(utt2spk))[:3]
        raise ValueError(
            f"{lang_dir / 'utt2spk'}: expected the uttids of {lang_dir / 'text'}; these are in only one of them: {odd}"
        )
    utts = []
    for uttid in sorted(text):
        spk = utt2spk[uttid]
        audio = lang_dir / "wav" / f"{uttid}.flac"
        if spk not in speakers:
            raise ValueError(f"{lang_dir / 'spk2info'}: expected speaker {spk!r} (of {uttid})")
        if not audio.is_file():
            raise ValueError(f"{audio}: expected the audio of {uttid} listed in {lang_dir / 'text'}")
        utts.append(CorpusUtterance(uttid, spk, text[uttid], audio))
    return speakers, utts


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m tools.mini_corpus --out DIR [--seed N]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory, e.g. egs2/mini/corpus")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sentence generator")
    parser.add_argument("--lang", nargs="+", default=list(LANGUAGES), choices=LANGUAGES)
    args = parser.parse_args(argv)
    counts = generate_corpus(args.out, args.seed, args.lang)
    size = sum(p.stat().st_size for p in Path(args.out).rglob("*") if p.is_file())
    print(f"wrote {counts} to {args.out} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
