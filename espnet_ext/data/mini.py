"""Kaldi data directories from the embedded mini corpus (``egs2/mini/corpus``).

Reads ``<corpus>/<lang>/{text,utt2spk,wav/<uttid>.flac}`` and writes
``<out>/{train,dev,test}/{wav.scp,text,utt2spk,spk2utt}``. The split is by utterance within
each speaker (synthetic voices: the demo measures learning, not speaker generalization):
in each speaker's sorted utterance list, every 10th utterance (index 0, 10, ...) goes to test,
the next one (1, 11, ...) to dev, the rest to train.

A corpus laid out as long recordings (``tools.mini_layouts.write_mini_recordings``) has
``<corpus>/<lang>/segments`` (``<uttid> <recording> <start> <end>``) and
``wav/<recording>.flac`` instead: each data dir then gets the segments of its utterances and a
``wav.scp`` of the recordings they name (a recording may serve several sets).
"""

from __future__ import annotations

from pathlib import Path

from espnet_ext.data.kaldi_files import read_map, write_map, write_spk2utt

SPLITS = ("train", "dev", "test")
LANGS = ("en", "zh", "ja")  # the languages of the mini corpus


def split_of(index_in_speaker: int) -> str:
    """The subset of a speaker's ``index``-th utterance (see the module docstring)."""
    return {0: "test", 1: "dev"}.get(index_in_speaker % 10, "train")


def prepare_mini(corpus_dir: Path, out_dir: Path, lang: str = "en") -> dict[str, int]:
    """Write the train/dev/test data dirs for ``lang``; returns utterance counts per split."""
    root = Path(corpus_dir) / lang
    if not (root / "text").is_file():
        raise ValueError(f"{root}/text not found: expected the mini corpus layout <corpus>/{lang}/text")
    text = read_map(root / "text")
    utt2spk = read_map(root / "utt2spk")
    segments = read_map(root / "segments") if (root / "segments").is_file() else None
    per_speaker: dict[str, list] = {}
    for utt in sorted(text):
        if utt not in utt2spk:
            raise ValueError(f"{root}/utt2spk: no speaker for {utt}")
        per_speaker.setdefault(utt2spk[utt], []).append(utt)
    subsets = {name: {} for name in SPLITS}
    for utts in per_speaker.values():
        for i, utt in enumerate(utts):
            subsets[split_of(i)][utt] = utt
    counts = {}
    for name, utts in subsets.items():
        d = Path(out_dir) / name
        d.mkdir(parents=True, exist_ok=True)
        if segments is None:
            wav = {u: str((root / "wav" / f"{u}.flac").resolve()) for u in utts}
            (d / "segments").unlink(missing_ok=True)  # of an earlier run on the long-recording layout
        else:
            missing = [u for u in utts if u not in segments]
            if missing:
                raise ValueError(f"{root}/segments: no segment for {missing[0]}; expected one for every utterance")
            sub_segments = {u: segments[u] for u in utts}
            write_map(d / "segments", sub_segments)
            recordings = {value.split()[0] for value in sub_segments.values()}
            wav = {r: str((root / "wav" / f"{r}.flac").resolve()) for r in recordings}
        write_map(d / "wav.scp", wav)
        write_map(d / "text", {u: text[u] for u in utts})
        sub_utt2spk = {u: utt2spk[u] for u in utts}
        write_map(d / "utt2spk", sub_utt2spk)
        write_spk2utt(d / "spk2utt", sub_utt2spk)
        counts[name] = len(utts)
    return counts
