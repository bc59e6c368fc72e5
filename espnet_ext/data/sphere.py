"""NIST SPHERE audio files (the format of TIMIT's ``.WAV`` files): a small writer and reader.

A SPHERE file is an ASCII header followed by the samples. The header starts with the lines
``NIST_1A`` and the header size (``   1024``), then one ``name -type value`` field a line
(``-i`` integer, ``-r`` real, ``-sN`` string of N bytes), then ``end_head``; it is padded with
spaces to its size. Only uncompressed PCM is handled: 16-bit samples (``sample_n_bytes -i 2``)
in little-endian (``sample_byte_format -s2 01``) or big-endian (``-s2 10``) order; TIMIT is
16 kHz, mono, little-endian. Shorten-compressed files (``sample_coding -s…
pcm,embedded-shorten…``) are rejected with a ValueError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping, NamedTuple, Optional, Union

import numpy as np

HEADER_SIZE = 1024
MAGIC = b"NIST_1A"

FieldValue = Union[int, float, str]


class SphereAudio(NamedTuple):
    """Samples (``int16``, shape ``(n,)`` or ``(n, channels)``), rate and all header fields."""

    samples: np.ndarray
    sample_rate: int
    header: Dict[str, FieldValue]


def format_header(fields: Mapping[str, FieldValue], size: int = HEADER_SIZE) -> bytes:
    """Encode ``fields`` as a ``size``-byte SPHERE header (ints ``-i``, floats ``-r``, ``-sN``)."""
    lines = [MAGIC.decode(), f"{size:7d}"]
    for name, value in fields.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"SPHERE field {name!r}: expected int, float or str, found {value!r}")
        if isinstance(value, int):
            lines.append(f"{name} -i {value}")
        elif isinstance(value, float):
            lines.append(f"{name} -r {value}")
        else:
            lines.append(f"{name} -s{len(value.encode('ascii'))} {value}")
    header = ("\n".join(lines) + "\nend_head\n").encode("ascii")
    if len(header) > size:
        raise ValueError(f"SPHERE header of {len(header)} bytes does not fit in {size} bytes")
    return header + b" " * (size - len(header))


def write_sphere(
    path,
    samples: np.ndarray,
    sample_rate: int,
    extra_fields: Optional[Mapping[str, FieldValue]] = None,
) -> None:
    """Write 16-bit PCM ``samples`` (``(n,)`` or ``(n, channels)``) as a little-endian SPHERE file.

    ``extra_fields`` (e.g. ``database_id``, ``utterance_id``) come before the sample fields.
    """
    samples = np.asarray(samples)
    if samples.dtype != np.int16:
        raise ValueError(f"{path}: expected int16 samples, found {samples.dtype}")
    if samples.ndim not in (1, 2):
        raise ValueError(
            f"{path}: expected samples of shape (n,) or (n, channels), found {samples.shape}"
        )
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    fields: Dict[str, FieldValue] = dict(extra_fields or {})
    fields.update(
        channel_count=channels,
        sample_count=samples.shape[0],
        sample_rate=int(sample_rate),
        sample_min=int(samples.min()) if samples.size else 0,
        sample_max=int(samples.max()) if samples.size else 0,
        sample_n_bytes=2,
        sample_byte_format="01",
        sample_sig_bits=16,
        sample_coding="pcm",
    )
    with open(path, "wb") as f:
        f.write(format_header(fields))
        f.write(samples.astype("<i2").tobytes())


def _parse_value(path, kind: str, raw: str) -> FieldValue:
    try:
        if kind == "-i":
            return int(raw)
        if kind == "-r":
            return float(raw)
    except ValueError:
        raise ValueError(f"{path}: SPHERE field of type {kind} has a bad value {raw!r}") from None
    if kind.startswith("-s"):
        return raw
    raise ValueError(f"{path}: expected a SPHERE field type -i, -r or -sN, found {kind!r}")


def read_header(path) -> Dict[str, FieldValue]:
    """Parse the header of the SPHERE file at ``path``; field ``header_size`` is added."""
    with open(path, "rb") as f:
        start = f.read(16)
        if not start.startswith(MAGIC + b"\n"):
            raise ValueError(
                f"{path}: expected a NIST SPHERE file starting with 'NIST_1A', found {start[:8]!r}"
            )
        size_text = start[8:16].split(b"\n")[0].strip()
        if not size_text.isdigit():
            raise ValueError(f"{path}: expected the header size on line 2, found {size_text!r}")
        size = int(size_text)
        f.seek(0)
        text = f.read(size).decode("ascii", errors="replace")
    lines = text.split("\n")
    header: Dict[str, FieldValue] = {"header_size": size}
    for line in lines[2:]:
        line = line.strip()
        if line == "end_head":
            return header
        if not line or line.startswith(";"):
            continue
        parts = line.split(None, 2)
        if len(parts) != 3:
            raise ValueError(
                f"{path}: expected 'name -type value' in the SPHERE header, found {line!r}"
            )
        header[parts[0]] = _parse_value(path, parts[1], parts[2])
    raise ValueError(f"{path}: expected 'end_head' within the {size}-byte SPHERE header")


def read_sphere(path) -> SphereAudio:
    """Read a 16-bit PCM SPHERE file; ValueError (naming the file) for anything else."""
    header = read_header(path)
    coding = str(header.get("sample_coding", "pcm"))
    if coding != "pcm":
        raise ValueError(
            f"{path}: expected sample_coding 'pcm', found {coding!r} (decompress shorten first)"
        )
    if header.get("sample_n_bytes", 2) != 2:
        raise ValueError(
            f"{path}: expected 2-byte samples, found sample_n_bytes {header['sample_n_bytes']}"
        )
    order = {"01": "<i2", "10": ">i2"}.get(str(header.get("sample_byte_format", "01")))
    if order is None:
        raise ValueError(
            f"{path}: expected sample_byte_format 01 or 10, found {header['sample_byte_format']!r}"
        )
    for name in ("sample_rate", "sample_count"):
        if not isinstance(header.get(name), int):
            raise ValueError(f"{path}: expected an integer {name} field in the SPHERE header")
    channels = int(header.get("channel_count", 1))
    data = Path(path).read_bytes()[int(header["header_size"]) :]
    expected = int(header["sample_count"]) * channels * 2
    if len(data) < expected:
        raise ValueError(f"{path}: header says {expected} bytes of samples, found {len(data)}")
    samples = np.frombuffer(data[:expected], dtype=order).astype(np.int16)
    if channels > 1:
        samples = samples.reshape(-1, channels)
    return SphereAudio(samples, int(header["sample_rate"]), header)
