"""Speed perturbation of a Kaldi data dir (stage 2), as sox ``speed`` pipes in wav.scp.

For each factor f other than 1.0, utterance ``u`` of speaker ``s`` becomes ``sp<f>-u`` of
speaker ``sp<f>-s``, its audio ``<source> | sox -t wav - -t wav - speed <f> |`` (speed also
changes the pitch, as in Kaldi and ESPnet recipes). Factor 1.0 keeps the original ids. All
copies are combined into one output dir; text and speakers are copied.

With a ``segments`` file, the recordings are perturbed as ESPnet's
``scripts/utils/perturb_data_dir_speed.sh`` does: recording ``r`` becomes ``sp<f>-r`` (its
``wav.scp`` line the sox pipe) and each segment's start and end are divided by ``f``, so that
stage 3 cuts the same speech out of the faster or slower recording. Times are written to 0.1 µs
(ESPnet rounds them to 10 ms); no segment is dropped (ESPnet drops those shorter than 10 ms after
the division; stage 4 filters by duration).
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from espnet_ext.data.datadir import parse_segment
from espnet_ext.data.kaldi_files import read_map, write_map, write_spk2utt


def speed_pipe(entry: str, factor: float) -> str:
    """The wav.scp value for ``entry`` (a path or a ``cmd |`` pipe) played at ``factor``."""
    if entry.rstrip().endswith("|"):
        return f"{entry.rstrip()[:-1].rstrip()} | sox -t wav - -t wav - speed {factor} |"
    return f"sox {shlex.quote(entry)} -t wav - speed {factor} |"


def _seconds(value: float) -> str:
    """``value`` seconds to 0.1 µs, without trailing zeros (``1.5``, ``0.0000625``)."""
    return f"{value:.7f}".rstrip("0").rstrip(".")


def speed_perturb(src: Path, dst: Path, factors: Sequence[float]) -> int:
    """Write the perturbed copies of ``src`` into ``dst``; returns the utterance count."""
    src, dst = Path(src), Path(dst)
    if not factors or any(f <= 0 for f in factors):
        raise ValueError(f"speed factors must be positive numbers, got {list(factors)}")
    wav, text, utt2spk = (read_map(src / name) for name in ("wav.scp", "text", "utt2spk"))
    segments = read_map(src / "segments") if (src / "segments").is_file() else None
    out: dict[str, dict[str, str]] = {"wav.scp": {}, "text": {}, "utt2spk": {}}
    if segments is not None:
        out["segments"] = {}
    for factor in factors:
        prefix = "" if float(factor) == 1.0 else f"sp{factor}-"
        for key, entry in wav.items():  # utterances, or recordings when there are segments
            out["wav.scp"][prefix + key] = entry if not prefix else speed_pipe(entry, factor)
        for utt, spk in utt2spk.items():
            new = prefix + utt
            if segments is not None:
                try:
                    segment = parse_segment(segments[utt])
                except (KeyError, ValueError) as e:
                    raise ValueError(f"{src}/segments: utterance {utt!r}: {e}; expected a valid data dir") from None
                out["segments"][new] = (
                    f"{prefix}{segment.recording} {_seconds(segment.start / factor)} {_seconds(segment.end / factor)}"
                    if prefix
                    else segments[utt]
                )
            if utt in text:
                out["text"][new] = text[utt]
            out["utt2spk"][new] = prefix + spk
    dst.mkdir(parents=True, exist_ok=True)
    for name, mapping in out.items():
        write_map(dst / name, mapping)
    if segments is None and (dst / "segments").exists():
        (dst / "segments").unlink()  # of an earlier run on a source with segments
    write_spk2utt(dst / "spk2utt", out["utt2spk"])
    return len(out["utt2spk"])
