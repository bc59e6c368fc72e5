"""Speed perturbation of a Kaldi data dir (stage 2), as sox ``speed`` pipes in wav.scp.

For each factor f other than 1.0, utterance ``u`` of speaker ``s`` becomes ``sp<f>-u`` of
speaker ``sp<f>-s``, its audio ``<source> | sox -t wav - -t wav - speed <f> |`` (speed also
changes the pitch, as in Kaldi and ESPnet recipes). Factor 1.0 keeps the original ids. All
copies are combined into one output dir; text and speakers are copied.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from espnet_ext.data.kaldi_files import read_map, write_map, write_spk2utt


def speed_pipe(entry: str, factor: float) -> str:
    """The wav.scp value for ``entry`` (a path or a ``cmd |`` pipe) played at ``factor``."""
    if entry.rstrip().endswith("|"):
        return f"{entry.rstrip()[:-1].rstrip()} | sox -t wav - -t wav - speed {factor} |"
    return f"sox {shlex.quote(entry)} -t wav - speed {factor} |"


def speed_perturb(src: Path, dst: Path, factors: Sequence[float]) -> int:
    """Write the perturbed copies of ``src`` into ``dst``; returns the utterance count."""
    src, dst = Path(src), Path(dst)
    if not factors or any(f <= 0 for f in factors):
        raise ValueError(f"speed factors must be positive numbers, got {list(factors)}")
    wav, text, utt2spk = (read_map(src / name) for name in ("wav.scp", "text", "utt2spk"))
    out: dict[str, dict[str, str]] = {"wav.scp": {}, "text": {}, "utt2spk": {}}
    for factor in factors:
        prefix = "" if float(factor) == 1.0 else f"sp{factor}-"
        for utt, entry in wav.items():
            new = prefix + utt
            out["wav.scp"][new] = entry if not prefix else speed_pipe(entry, factor)
            if utt in text:
                out["text"][new] = text[utt]
            out["utt2spk"][new] = prefix + utt2spk[utt]
    dst.mkdir(parents=True, exist_ok=True)
    for name, mapping in out.items():
        write_map(dst / name, mapping)
    write_spk2utt(dst / "spk2utt", out["utt2spk"])
    return len(out["wav.scp"])
