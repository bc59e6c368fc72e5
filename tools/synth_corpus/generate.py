"""Generate the synthetic open-vocabulary English corpus (deterministic from a seed).

Sentences come from Debian's ``fortunes`` package (``sentences.py``), speech from espeak-ng
(training voices and the voices held out for test set ``test_unseen``) and from flite (test set
``test_other``: a synthesizer that training never hears). Every set has its own sentences: no
sentence of a test or dev set occurs in ``unlabeled`` or ``train``.

Sets (utterance counts are options; the durations in brackets are what the defaults give):

    unlabeled      espeak-ng, seen voices        audio for pre-training (~5 h)
    train          espeak-ng, seen voices        labeled pool (~1.2 h); train_1h and train_10min are its
                                                 first utterances (a seeded order) up to 1 h and 10 min
    dev            espeak-ng, seen voices
    test_seen      espeak-ng, seen voices        unseen sentences
    test_unseen    espeak-ng, held-out voices    (held-out variants, their own rates and pitches)
    test_other     flite voices                  unseen sentences, another synthesizer

Writes, under --out:

    wav/<set>/<uttid>.flac   16 kHz, mono, 16-bit
    manifest.tsv             uttid set spk synth voice variant rate pitch duration path text
    speakers.tsv             spk synth voice variant rate pitch sets
    subsets/<name>           the uttids of train_10min and train_1h
    .done                    the options it was made with; a second run with the same options returns at once,
                             an interrupted run resumes (finished files are kept)

    python3 generate.py --out DIR [--seed 0] [--nj 2] [--n_unlabeled 5000] ...
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sentences as sentence_source  # noqa: E402

FS = 16000
ESPEAK_VOICES = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
SEEN_VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f4",
    "f5",
    "adam",
    "benjamin",
    "belinda",
    "john",
    "paul",
    "robert",
    "travis",
    "aunty",
)
UNSEEN_VARIANTS = ("m4", "m8", "f3", "linda", "steph", "david", "max", "grandma")
FLITE_VOICES = ("slt", "rms", "awb", "kal16")
SETS = ("unlabeled", "train", "dev", "test_seen", "test_unseen", "test_other")
SUBSETS = (("train_10min", 600.0), ("train_1h", 3600.0))


class Speaker(NamedTuple):
    spk: str
    synth: str  # espeak-ng or flite
    voice: str  # espeak-ng language voice, or flite voice
    variant: str  # espeak-ng variant ('-' for flite)
    rate: float  # espeak-ng words per minute, or flite duration stretch
    pitch: float  # espeak-ng pitch 0-99, or flite mean F0 in Hz


class Utterance(NamedTuple):
    uttid: str
    set: str
    speaker: Speaker
    text: str


def make_speakers(rng: random.Random, n_seen: int, n_unseen: int, n_other: int) -> dict[str, list[Speaker]]:
    """Distinct speakers: seen and unseen ones differ in espeak-ng variant; other ones are flite's."""

    def espeak(prefix, n, variants, rates, pitches):
        out, used = [], set()
        while len(out) < n:
            key = (rng.choice(ESPEAK_VOICES), rng.choice(variants), rng.choice(rates), rng.choice(pitches))
            if key in used:
                continue
            used.add(key)
            out.append(Speaker(f"{prefix}{len(out) + 1:03d}", "espeak-ng", *key))
        return out

    other, used = [], set()
    while len(other) < n_other:
        key = (rng.choice(FLITE_VOICES), "-", rng.choice((0.9, 1.0, 1.1, 1.2)), rng.choice((90, 110, 130, 160, 190)))
        if key not in used:
            used.add(key)
            other.append(Speaker(f"o{len(other) + 1:03d}", "flite", *key))
    return {
        "seen": espeak("s", n_seen, SEEN_VARIANTS, range(130, 200, 10), range(25, 80, 5)),
        "unseen": espeak("u", n_unseen, UNSEEN_VARIANTS, range(135, 200, 10), range(27, 80, 5)),
        "other": other,
    }


def plan(
    seed: int, counts: dict[str, int], n_seen: int, n_unseen: int, n_other: int, all_sentences: list[str]
) -> list[Utterance]:
    """Every utterance to synthesize: each set draws its own sentences, speakers in turn."""
    need = sum(counts.values())
    if need > len(all_sentences):
        raise ValueError(f"{need} utterances asked for, but only {len(all_sentences)} distinct sentences")
    rng = random.Random(seed)
    speakers = make_speakers(rng, n_seen, n_unseen, n_other)
    pool = list(all_sentences)
    rng.shuffle(pool)
    group = {"test_unseen": "unseen", "test_other": "other"}
    utts, start = [], 0
    for name in SETS:
        spks = list(speakers[group.get(name, "seen")])
        rng.shuffle(spks)
        for i, text in enumerate(pool[start : start + counts[name]]):
            spk = spks[i % len(spks)]
            utts.append(Utterance(f"{spk.spk}-{name}-{i:06d}", name, spk, text))
        start += counts[name]
    return utts


def synth_command(utt: Utterance, wav_path: str) -> list[str]:
    s = utt.speaker
    if s.synth == "espeak-ng":
        return [
            "espeak-ng",
            "-v",
            f"{s.voice}+{s.variant}",
            "-s",
            str(int(s.rate)),
            "-p",
            str(int(s.pitch)),
            "-w",
            wav_path,
            utt.text,
        ]
    return [
        "flite",
        "-voice",
        s.voice,
        "--setf",
        f"duration_stretch={s.rate}",
        "--setf",
        f"int_f0_target_mean={s.pitch}",
        "-t",
        utt.text,
        "-o",
        wav_path,
    ]


def synthesize(utt: Utterance, out: Path) -> float:
    """Write out/wav/<set>/<uttid>.flac (16 kHz mono) unless there; return its duration in seconds."""
    flac = out / "wav" / utt.set / f"{utt.uttid}.flac"
    if flac.exists():
        return flac_duration(flac)
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "a.wav")
        subprocess.run(synth_command(utt, wav), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        part = os.path.join(tmp, "a.flac")
        # peak-normalised to -1 dBFS (the synthesizers' levels differ by ~3x); -R: repeatable dither
        subprocess.run(["sox", "-R", wav, "-r", str(FS), "-c", "1", "-b", "16", part, "norm", "-1"], check=True)
        os.replace(part, flac)
    return flac_duration(flac)


def flac_duration(path: Path) -> float:
    """Duration from a FLAC file's STREAMINFO block (no decoding)."""
    with open(path, "rb") as f:
        head = f.read(42)
    if head[:4] != b"fLaC":
        raise ValueError(f"{path}: not a FLAC file")
    info = int.from_bytes(head[18:26], "big")  # 20 bits rate, 3 channels, 5 bps, 36 total samples
    rate, total = info >> 44, info & ((1 << 36) - 1)
    return total / rate


def choose_subsets(
    rng: random.Random, train: list[tuple[str, float]], subsets: tuple[tuple[str, float], ...] = SUBSETS
) -> dict[str, list[str]]:
    """Nested subsets of the train set: the first utterances of one seeded order up to each duration."""
    order = sorted(train)
    rng.shuffle(order)
    total = sum(d for _, d in order)
    out = {}
    for name, seconds in subsets:
        if total < seconds:
            raise ValueError(f"{name}: the train set has {total:.0f} s, fewer than {seconds:.0f} s: raise --n_train")
        acc, ids = 0.0, []
        for uttid, dur in order:
            if acc >= seconds:
                break
            ids.append(uttid)
            acc += dur
        out[name] = sorted(ids)
    return out


def generate(
    out: Path,
    seed: int = 0,
    nj: int = 2,
    counts: dict[str, int] | None = None,
    n_seen: int = 40,
    n_unseen: int = 10,
    n_other: int = 8,
    min_words: int = 3,
    max_words: int = 20,
    fortunes_dir: Path = sentence_source.FORTUNES_DIR,
    subset_seconds: tuple[float, float] = (600.0, 3600.0),
    log=print,
) -> dict:
    """Generate (or finish, or reuse) the corpus in ``out``; return the summary written to .done."""
    counts = dict(DEFAULT_COUNTS, **(counts or {}))
    options = dict(
        seed=seed,
        counts=counts,
        n_seen=n_seen,
        n_unseen=n_unseen,
        n_other=n_other,
        min_words=min_words,
        max_words=max_words,
        subset_seconds=list(subset_seconds),
    )
    done = out / ".done"
    if done.exists():
        summary = json.loads(done.read_text())
        if summary.get("options") == options:
            log(f"{out}: complete ({done}), reused")
            return summary
        raise ValueError(f"{out} holds a corpus made with other options ({done}): choose another --out or remove it")
    texts = sentence_source.sentences(fortunes_dir, min_words, max_words)
    utts = plan(seed, counts, n_seen, n_unseen, n_other, texts)
    for name in SETS:
        (out / "wav" / name).mkdir(parents=True, exist_ok=True)
    todo = sum(not (out / "wav" / u.set / f"{u.uttid}.flac").exists() for u in utts)
    log(f"{out}: {len(utts)} utterances, {todo} to synthesize with {nj} jobs")
    t0 = time.time()
    with ThreadPoolExecutor(max_workers=nj) as pool:
        durations = list(pool.map(lambda u: synthesize(u, out), utts))
    elapsed = time.time() - t0
    with open(out / "manifest.tsv", "w") as f:
        f.write("uttid\tset\tspk\tsynth\tvoice\tvariant\trate\tpitch\tduration\tpath\ttext\n")
        for u, d in zip(utts, durations):
            s = u.speaker
            f.write(
                f"{u.uttid}\t{u.set}\t{s.spk}\t{s.synth}\t{s.voice}\t{s.variant}\t{s.rate}\t{s.pitch}\t"
                f"{d:.3f}\twav/{u.set}/{u.uttid}.flac\t{u.text}\n"
            )
    spk_sets: dict[Speaker, set[str]] = {}
    for u in utts:
        spk_sets.setdefault(u.speaker, set()).add(u.set)
    with open(out / "speakers.tsv", "w") as f:
        f.write("spk\tsynth\tvoice\tvariant\trate\tpitch\tsets\n")
        for s in sorted(spk_sets):
            f.write("\t".join(map(str, s)) + "\t" + ",".join(sorted(spk_sets[s])) + "\n")
    subsets = choose_subsets(
        random.Random(seed + 1),
        [(u.uttid, d) for u, d in zip(utts, durations) if u.set == "train"],
        tuple(zip((n for n, _ in SUBSETS), subset_seconds)),
    )
    (out / "subsets").mkdir(exist_ok=True)
    for name, ids in subsets.items():
        (out / "subsets" / name).write_text("".join(i + "\n" for i in ids))
    hours = {name: round(sum(d for u, d in zip(utts, durations) if u.set == name) / 3600, 4) for name in SETS}
    size = sum(p.stat().st_size for p in (out / "wav").rglob("*.flac"))
    summary = dict(
        options=options,
        hours=hours,
        utterances=counts,
        sentences_available=len(texts),
        synthesis_seconds=round(elapsed, 1),
        synthesized=todo,
        nj=nj,
        flac_bytes=size,
        seconds_per_audio_hour=round(elapsed / max(sum(hours.values()), 1e-9), 1) if todo == len(utts) else None,
        mb_per_audio_hour=round(size / 1e6 / max(sum(hours.values()), 1e-9), 1),
    )
    done.write_text(json.dumps(summary, indent=1) + "\n")
    log(f"{out}: {sum(hours.values()):.2f} h in {elapsed:.0f} s with {nj} jobs, {size / 1e6:.0f} MB; hours {hours}")
    return summary


DEFAULT_COUNTS = dict(unlabeled=5000, train=1300, dev=200, test_seen=200, test_unseen=200, test_other=200)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=int, default=2, help="parallel synthesis jobs")
    for name in SETS:
        p.add_argument(f"--n_{name}", type=int, default=DEFAULT_COUNTS[name], help="utterances")
    p.add_argument("--n_seen_speakers", type=int, default=40)
    p.add_argument("--n_unseen_speakers", type=int, default=10)
    p.add_argument("--n_other_speakers", type=int, default=8)
    p.add_argument("--min_words", type=int, default=3)
    p.add_argument("--max_words", type=int, default=20)
    p.add_argument("--fortunes_dir", type=Path, default=sentence_source.FORTUNES_DIR)
    p.add_argument(
        "--subset_seconds",
        type=float,
        nargs=2,
        default=[600.0, 3600.0],
        help="durations of train_10min and train_1h (smaller for tests)",
    )
    a = p.parse_args(argv)
    generate(
        a.out,
        a.seed,
        a.nj,
        {n: getattr(a, f"n_{n}") for n in SETS},
        a.n_seen_speakers,
        a.n_unseen_speakers,
        a.n_other_speakers,
        a.min_words,
        a.max_words,
        a.fortunes_dir,
        tuple(a.subset_seconds),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
