"""A mini corpus in RAVDESS's layout, made from the shipped mini corpus, for tests and demos.

What is read: ``<corpus>/en/{text,utt2spk,spk2info,wav/*.flac}`` of the mini corpus
(``egs2/mini/corpus``, 16 synthesized English voices, 16 kHz; see
:mod:`tools.mini_corpus`). What is written::

    <out>/Actor_NN/03-01-EE-01-SS-RR-NN.wav      48 kHz, 16-bit mono, like RAVDESS

for 24 actors, each with ``takes`` files per emotion (8 emotions; statement ``SS`` and
repetition ``RR`` count the takes: 01-01, 02-01, 01-02, 02-02; intensity normal).

Emotions are made learnable by a tiny model in a short CPU run: each emotion has its own
speaking rate (a speed change by resampling, so pitch moves with it), gain and a steady
tone mixed under the speech (:data:`STYLES`). These are stand-ins for what acted emotion
changes (rate, pitch, loudness, timbre), not a model of it.

Actors follow RAVDESS's convention, odd male and even female: actor ``a`` speaks with a
mini-corpus voice of that sex. The train actors of RAVDESS's default split (1-20) share 6
voices per sex; its dev and test actors (21-24) get the remaining 2 voices per sex, which no
other actor uses, so the default split stays speaker-independent.

Command line::

    python -m tools.mini_ravdess --out DIR [--corpus egs2/mini/corpus] [--takes 1]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from espnet_ext.data.corpora.ravdess import (
    AUDIO_ONLY,
    DEFAULT_SPLIT,
    EMOTIONS,
    FIELD_RANGES,
    N_ACTORS,
    NORMAL_INTENSITY,
    SAMPLE_RATE,
    SPEECH,
    RavdessId,
    actor_splits,
    speaker_id,
)
from tools.mini_corpus import SAMPLE_RATE as SOURCE_RATE
from tools.mini_corpus import CorpusUtterance, load_language

logger = logging.getLogger(__name__)

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / "egs2" / "mini" / "corpus"
STATEMENTS = FIELD_RANGES["statement"][1]
MAX_TAKES = STATEMENTS * FIELD_RANGES["repetition"][1]  # (statement, repetition): 01-01, 02-01, 01-02, 02-02
TRAIN_VOICES_PER_SEX = 6  # voices shared by the default split's train actors; the others get one each


class EmotionStyle(NamedTuple):
    """How one emotion changes a neutral utterance."""

    speed: Fraction  # playback speed (>1 faster and higher); resampling, so pitch follows
    gain_db: float  # level change, dB (limited so that the peak stays below full scale)
    tone_hz: float  # a steady tone mixed in at TONE_LEVEL of the speech's RMS, Hz


TONE_LEVEL = 0.25  # tone amplitude relative to the utterance's RMS
PEAK_LIMIT = 0.95  # full scale = 1.0

#: emotion (a name of ravdess.EMOTIONS) -> its style
STYLES: dict[str, EmotionStyle] = {
    "neutral": EmotionStyle(Fraction(1), 0.0, 300.0),
    "calm": EmotionStyle(Fraction(9, 10), -6.0, 450.0),
    "happy": EmotionStyle(Fraction(11, 10), 2.0, 650.0),
    "sad": EmotionStyle(Fraction(17, 20), -8.0, 900.0),
    "angry": EmotionStyle(Fraction(23, 20), 6.0, 1250.0),
    "fearful": EmotionStyle(Fraction(6, 5), -2.0, 1700.0),
    "disgust": EmotionStyle(Fraction(19, 20), -4.0, 2300.0),
    "surprised": EmotionStyle(Fraction(21, 20), 3.0, 3100.0),
}
assert sorted(STYLES) == sorted(EMOTIONS), "one style per RAVDESS emotion"


def apply_style(audio: np.ndarray, style: EmotionStyle) -> np.ndarray:
    """16 kHz float samples -> 48 kHz float samples in the emotion's style."""
    from scipy.signal import resample_poly

    # speed s at 16 kHz, then 16 -> 48 kHz: n samples become n * 3 / s.
    ratio = Fraction(SAMPLE_RATE, SOURCE_RATE) / style.speed
    out = resample_poly(audio, ratio.numerator, ratio.denominator)
    rms = float(np.sqrt(np.mean(out**2))) or 1e-3
    t = np.arange(out.shape[0]) / SAMPLE_RATE
    out = out + TONE_LEVEL * rms * np.sqrt(2.0) * np.sin(2 * np.pi * style.tone_hz * t)
    out = out * 10.0 ** (style.gain_db / 20.0)
    peak = float(np.max(np.abs(out)))
    return out * (PEAK_LIMIT / peak) if peak > PEAK_LIMIT else out


def actor_voices(speakers: dict[str, dict[str, str]]) -> dict[int, str]:
    """Actor number -> mini-corpus speaker of the actor's sex (see the module docstring).

    Raises:
        ValueError: fewer than ``TRAIN_VOICES_PER_SEX + 2`` voices of a sex.
    """
    split = actor_splits(**DEFAULT_SPLIT)
    out = {}
    for sex, parity in (("m", 1), ("f", 0)):  # RAVDESS: odd actors male, even female
        voices = sorted(s for s, info in speakers.items() if info.get("sex") == sex)
        actors = [a for a in range(1, N_ACTORS + 1) if a % 2 == parity]
        train = [a for a in actors if split[a] == "train"]
        held_out = [a for a in actors if split[a] != "train"]
        need = TRAIN_VOICES_PER_SEX + len(held_out)
        if len(voices) < need:
            raise ValueError(
                f"mini corpus: expected at least {need} voices with sex={sex} in en/spk2info, found {len(voices)}"
            )
        out.update({a: voices[k % TRAIN_VOICES_PER_SEX] for k, a in enumerate(train)})
        out.update({a: voices[TRAIN_VOICES_PER_SEX + k] for k, a in enumerate(held_out)})
    return dict(sorted(out.items()))


def _take_fields(take: int) -> tuple:
    """(statement, repetition) of take 0..MAX_TAKES-1."""
    return 1 + take % STATEMENTS, 1 + take // STATEMENTS


def _pick(utts: Sequence[CorpusUtterance], actor: int, emotion: int, take: int) -> CorpusUtterance:
    """A source utterance of the actor's voice; actors sharing a voice read different ones."""
    return utts[(emotion - 1 + len(EMOTIONS) * take + 7 * ((actor - 1) // 12)) % len(utts)]


def write_mini_ravdess(out_dir, corpus_dir=DEFAULT_CORPUS, takes: int = 1) -> int:
    """Write the corpus (see the module docstring); returns the number of files."""
    if not 1 <= takes <= MAX_TAKES:
        raise ValueError(f"takes: expected 1..{MAX_TAKES}, found {takes}")
    speakers, utts = load_language(corpus_dir, "en")
    by_speaker: dict[str, list[CorpusUtterance]] = {}
    for utt in utts:
        by_speaker.setdefault(utt.spk, []).append(utt)
    out_dir = Path(out_dir)
    count = 0
    for actor, voice in actor_voices(speakers).items():
        actor_dir = out_dir / speaker_id(actor)
        actor_dir.mkdir(parents=True, exist_ok=True)
        for emotion in range(1, len(EMOTIONS) + 1):
            for take in range(takes):
                source = _pick(by_speaker[voice], actor, emotion, take)
                audio, rate = sf.read(str(source.audio), dtype="float64")
                if rate != SOURCE_RATE:
                    raise ValueError(f"{source.audio}: expected {SOURCE_RATE} Hz, found {rate} Hz")
                rid = RavdessId(AUDIO_ONLY, SPEECH, emotion, NORMAL_INTENSITY, *_take_fields(take), actor)
                sf.write(
                    str(actor_dir / f"{rid.stem}.wav"),
                    apply_style(audio, STYLES[rid.emotion_name]),
                    SAMPLE_RATE,
                    subtype="PCM_16",
                )
                count += 1
    logger.info("wrote %d files of %d actors to %s", count, N_ACTORS, out_dir)
    return count


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tools.mini_ravdess``."""
    from espnet_ext.core.log import setup_logging

    parser = argparse.ArgumentParser(
        prog="python -m tools.mini_ravdess", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory (gets Actor_01 ... Actor_24)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help=f"mini corpus (default: {DEFAULT_CORPUS})")
    parser.add_argument(
        "--takes", type=int, default=1, help=f"files per actor and emotion, 1..{MAX_TAKES} (default: 1)"
    )
    args = parser.parse_args(argv)
    setup_logging()
    try:
        write_mini_ravdess(args.out, args.corpus, args.takes)
    except ValueError as e:
        logger.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
