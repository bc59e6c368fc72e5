"""Stage 3: decode every ``wav.scp`` entry, resample, and dump 16-bit PCM files.

Reads ``SRC/{wav.scp,text,utt2spk,spk2utt}`` (a valid data dir, see
:func:`espnet_ext.data.datadir.validate_data_dir`) and writes ``DST/``:

``data/<uttid>.<flac|wav>``  mono 16-bit PCM at ``fs`` (channel 0 of multi-channel audio)
``wav.scp``, ``utt2num_samples``  for the kept utterances
``text``, ``utt2spk``, ``spk2utt``  copied, restricted to the kept utterances
``feats_type`` (``raw``), ``audio_format`` (``flac`` or ``wav``)
``excluded.txt``  ``uttid<TAB>reason`` for every utterance left out (possibly empty)

A ``wav.scp`` value is a path, or a shell command ending in ``|`` that writes audio to its
stdout (run with ``bash -o pipefail``). Audio is decoded with soundfile (WAV, FLAC, NIST
SPHERE, ...) and, failing that, converted by ``sox``. Resampling uses
``scipy.signal.resample_poly`` (output length ``ceil(n * fs / source_fs)``).

Bad audio (a missing file, an undecodable one, zero samples, a failing pipe, a sample rate
outside ``expected_fs``) excludes the utterance; the run goes on and fails only if every
utterance is bad. Re-running overwrites ``DST`` cleanly (stale audio files are removed).
Memory does not grow with the corpus: the data dir is validated and read line by line, the
outputs are written as the results arrive in order, and only the excluded utterances are
held (see ``python -m benchmarks dataprep``). Neither torch nor ESPnet is imported.
"""

from __future__ import annotations

import collections
import io
import itertools
import logging
import math
import multiprocessing
import multiprocessing.pool
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, TypeVar

import numpy as np

from espnet_ext.core.atomic import replacing, write_bytes, write_text
from espnet_ext.data import datadir, kaldi_files

logger = logging.getLogger(__name__)

AUDIO_FORMATS = ("flac", "wav")
MAX_WARNINGS = 20
CHUNK_SIZE = 16  # utterances per task sent to a worker process (nj > 1)
CHUNKS_IN_FLIGHT_PER_JOB = 4  # tasks queued ahead per worker: bounds memory, keeps workers busy

T = TypeVar("T")


class AudioError(Exception):
    """An utterance's audio cannot be used; the message is the reason written to excluded.txt."""


class Job(NamedTuple):
    """One utterance to dump."""

    uttid: str
    entry: str  # the wav.scp value: a path or "command |"
    out_path: str
    fs: int
    audio_format: str
    expected_fs: tuple[int, ...] | None


class Result(NamedTuple):
    """What a worker reports for one utterance (``reason`` is empty when it was written)."""

    uttid: str
    num_samples: int
    reason: str
    channels: int
    source_fs: int
    source: str


def file_name(uttid: str) -> str:
    """A file name for ``uttid`` that cannot escape the output dir (``%`` and ``/`` are escaped)."""
    return uttid.replace("%", "%25").replace("/", "%2F")


def _describe(entry: str) -> str:
    return f"pipe {_pipe_command(entry)!r}" if _pipe_command(entry) is not None else entry


def _pipe_command(entry: str) -> str | None:
    entry = entry.rstrip()
    return entry[:-1].strip() if entry.endswith("|") else None


def _run_pipe(command: str) -> bytes:
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True)
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        detail_text = f": {detail[-1]}" if detail else ""
        raise AudioError(
            f"pipe {command!r} failed with exit status {proc.returncode}{detail_text} "
            "(expected a command that writes audio to stdout)"
        )
    if not proc.stdout:
        raise AudioError(f"pipe {command!r} wrote nothing (expected audio on stdout)")
    return proc.stdout


def _sox_to_wav(source: str, data: bytes | None = None) -> bytes:
    """Convert ``source`` (a path, or ``data`` on stdin) to 32-bit float WAV with sox."""
    args = ["sox", "-V1", source if data is None else "-", "-t", "wav", "-e", "floating-point", "-b", "32", "-"]
    try:
        proc = subprocess.run(args, input=data, capture_output=True)
    except FileNotFoundError:
        raise AudioError("sox is not installed") from None
    if proc.returncode != 0 or not proc.stdout:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AudioError(message[-1] if message else f"sox exited with status {proc.returncode}")
    return proc.stdout


def _decode(source, description: str, sox_source: str | None) -> tuple[np.ndarray, int]:
    """Decode with soundfile, else with sox; ``(frames x channels float64, sample rate)``."""
    import soundfile

    try:
        audio, sr = soundfile.read(source, dtype="float64", always_2d=True)
        return audio, int(sr)
    except (soundfile.LibsndfileError, RuntimeError, ValueError) as e:
        sf_error = str(e)
    if sox_source is None:
        raise AudioError(f"cannot decode {description}: {sf_error} (expected WAV, FLAC or NIST SPHERE audio)")
    try:
        wav = _sox_to_wav(sox_source) if sox_source != "-" else _sox_to_wav("-", source.getvalue())
        audio, sr = soundfile.read(io.BytesIO(wav), dtype="float64", always_2d=True)
        return audio, int(sr)
    except (AudioError, soundfile.LibsndfileError, RuntimeError) as e:
        raise AudioError(
            f"cannot decode {description}: soundfile: {sf_error}; sox: {e} "
            "(expected audio that soundfile or sox can read)"
        ) from None


def load_audio(entry: str) -> tuple[np.ndarray, int]:
    """Decode one ``wav.scp`` value: ``(samples as frames x channels float64, sample rate)``.

    Raises:
        AudioError: the reason the audio cannot be used (naming the file or the pipe).
    """
    command = _pipe_command(entry)
    if command is not None:
        data = _run_pipe(command)
        return _decode(io.BytesIO(data), f"output of pipe {command!r}", "-")
    if not os.path.isfile(entry):
        raise AudioError(f"no such file: {entry} (expected an audio file)")
    return _decode(entry, entry, entry)


def resample(audio: np.ndarray, source_fs: int, fs: int) -> np.ndarray:
    """Resample a 1-D signal with ``resample_poly``; length ``ceil(len * fs / source_fs)``."""
    if source_fs == fs:
        return audio
    from scipy.signal import resample_poly

    g = math.gcd(fs, source_fs)
    return resample_poly(audio, fs // g, source_fs // g)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1) to 16-bit PCM (exact for audio that was 16-bit), clipped."""
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)


def _write_audio(path: str, samples: np.ndarray, fs: int, audio_format: str) -> None:
    import soundfile

    with replacing(path, sync=False) as tmp:  # the directory is swapped in when complete
        soundfile.write(str(tmp), samples, fs, format=audio_format.upper(), subtype="PCM_16")


def process(job: Job) -> Result:
    """Decode, check, resample and write one utterance; never raises for bad audio."""
    source = _describe(job.entry)
    try:
        audio, source_fs = load_audio(job.entry)
        if job.expected_fs is not None and source_fs not in job.expected_fs:
            expected = ", ".join(str(x) for x in job.expected_fs)
            raise AudioError(f"sample rate {source_fs} Hz in {source}, expected one of {expected} Hz")
        if audio.shape[0] == 0:
            raise AudioError(f"zero samples in {source} (expected at least one sample)")
        if not np.all(np.isfinite(audio[:, 0])):
            raise AudioError(f"NaN or infinite samples in {source} (expected finite audio)")
        samples = to_int16(resample(audio[:, 0], source_fs, job.fs))
        if samples.shape[0] == 0:
            raise AudioError(f"no samples left after resampling {source} to {job.fs} Hz")
        _write_audio(job.out_path, samples, job.fs, job.audio_format)
        return Result(job.uttid, int(samples.shape[0]), "", int(audio.shape[1]), source_fs, source)
    except AudioError as e:
        return Result(job.uttid, 0, str(e), 0, 0, source)
    except Exception as e:  # one broken utterance must not stop a corpus-sized run
        return Result(job.uttid, 0, f"unexpected error reading {source}: {type(e).__name__}: {e}", 0, 0, source)


class _Progress:
    """Logs results as they arrive: warnings for the first exclusions, progress every ~10%."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.time()
        self.step = max(1, math.ceil(total / 10))
        self.excluded = 0
        self.multichannel = 0
        self.resampled: dict[int, int] = {}

    def add(self, result: Result, fs: int) -> None:
        """Account for one finished utterance (output rate ``fs``)."""
        self.done += 1
        if result.reason:
            self.excluded += 1
            if self.excluded <= MAX_WARNINGS:
                logger.warning("excluded %s: %s", result.uttid, result.reason)
        else:
            if result.channels > 1:
                if not self.multichannel:
                    logger.info(
                        "%s: %d channels in %s; taking channel 0 (logged once)",
                        result.uttid,
                        result.channels,
                        result.source,
                    )
                self.multichannel += 1
            if result.source_fs != fs:
                self.resampled[result.source_fs] = self.resampled.get(result.source_fs, 0) + 1
        if self.done % self.step == 0 or self.done == self.total:
            logger.info(
                "%d/%d files done (%d%%), elapsed %.1f s",
                self.done,
                self.total,
                100 * self.done // self.total,
                time.time() - self.start,
            )

    def summary(self, fs: int, excluded_path: Path) -> None:
        """Log the totals: exclusions beyond the first warnings, multi-channel, resampled."""
        if self.excluded > MAX_WARNINGS:
            logger.warning("... and %d more excluded", self.excluded - MAX_WARNINGS)
        if self.excluded:
            logger.warning("%d of %d utterance(s) excluded: listed in %s", self.excluded, self.total, excluded_path)
        if self.multichannel:
            logger.info("%d multi-channel utterance(s): took channel 0 of each", self.multichannel)
        for source_fs, count in sorted(self.resampled.items()):
            logger.info("resampled %d utterance(s) from %d Hz to %d Hz", count, source_fs, fs)


def _process_chunk(jobs: list[Job]) -> list[Result]:
    return [process(job) for job in jobs]


def _run_in_order(items: Iterator[tuple[Job, T]], nj: int) -> Iterator[tuple[Job, T, Result]]:
    """``(job, extra, result)`` for each ``(job, extra)`` of ``items``, in their order.

    With ``nj`` > 1 the jobs run in a pool of ``nj`` processes, in chunks of up to
    ``CHUNK_SIZE``, at most ``CHUNKS_IN_FLIGHT_PER_JOB * nj`` chunks ahead of the consumer:
    the memory held does not grow with the number of utterances (``Pool.imap`` would read all
    of ``items`` ahead).
    """
    if nj == 1:
        for job, extra in items:
            yield job, extra, process(job)
        return
    pending: collections.deque[tuple[list[tuple[Job, T]], multiprocessing.pool.AsyncResult]] = collections.deque()
    with multiprocessing.get_context("spawn").Pool(nj) as pool:
        while True:
            while len(pending) < CHUNKS_IN_FLIGHT_PER_JOB * nj:
                chunk = list(itertools.islice(items, CHUNK_SIZE))
                if not chunk:
                    break
                pending.append((chunk, pool.apply_async(_process_chunk, ([job for job, _ in chunk],))))
            if not pending:
                return
            chunk, future = pending.popleft()
            for (job, extra), result in zip(chunk, future.get()):
                yield job, extra, result


def _check_args(src: Path, dst: Path, fs: int, nj: int, audio_format: str) -> None:
    if audio_format not in AUDIO_FORMATS:
        raise ValueError(f"audio_format {audio_format!r}: expected one of {', '.join(AUDIO_FORMATS)}")
    if fs <= 0 or nj <= 0:
        raise ValueError(f"fs={fs}, nj={nj}: expected positive integers")
    if src.resolve() == dst.resolve():
        raise ValueError(f"{dst}: same as the source data dir; expected a separate dump dir")


def _swap_in(new_dir: Path, audio_dir: Path) -> None:
    """Replace ``audio_dir`` by ``new_dir`` (the old one, stale files and all, is deleted)."""
    old_dir = audio_dir.with_name(audio_dir.name + ".old")
    if old_dir.exists():
        shutil.rmtree(old_dir)
    if audio_dir.exists():
        os.replace(audio_dir, old_dir)
    os.replace(new_dir, audio_dir)
    if old_dir.exists():
        shutil.rmtree(old_dir)


def format_wav_scp(
    src: os.PathLike,
    dst: os.PathLike,
    fs: int = 16000,
    nj: int = 1,
    audio_format: str = "flac",
    expected_fs: Sequence[int] | None = None,
) -> dict[str, str]:
    """Dump the audio of data dir ``src`` into ``dst`` (see the module docstring).

    Streams: the data dir's files are read in lockstep and the outputs written line by line,
    so memory does not grow with the number of utterances (only with the excluded ones).
    The audio is written into ``dst/data.new/``, which replaces ``dst/data/`` at the end (a
    failed run leaves the previous dump's audio in place).

    Returns:
        The excluded utterances: uttid -> reason (also in ``dst/excluded.txt``).

    Raises:
        ValueError: an invalid ``src`` data dir, bad arguments, or every utterance excluded.
    """
    src, dst = Path(src), Path(dst)
    _check_args(src, dst, fs, nj, audio_format)
    total = datadir.validate_data_dir(src, require_text=False)
    names = [n for n in datadir.UTT_FILES if (src / n).is_file() and n != "utt2num_samples"]
    audio_dir, new_dir = dst / "data", dst / "data.new"
    if new_dir.exists():
        shutil.rmtree(new_dir)  # left by an interrupted run
    new_dir.mkdir(parents=True)
    expected = tuple(expected_fs) if expected_fs else None
    # per-utterance paths are strings: Python 3.11's pathlib interns every path component
    # (``sys.intern``), which would keep each utterance's file name for the life of the process
    new_prefix, final_prefix = os.path.join(new_dir, ""), os.path.join(audio_dir, "")
    items = (
        (Job(u, values["wav.scp"], f"{new_prefix}{file_name(u)}.{audio_format}", fs, audio_format, expected), values)
        for u, values in datadir.iter_utterances(src, names)
    )
    logger.info(
        "%s: dumping %d utterance(s) to %s at %d Hz as %s with %d job(s)", src, total, dst, fs, audio_format, nj
    )
    progress = _Progress(total)
    excluded: dict[str, str] = {}
    writer = datadir.SortedDataDirWriter(dst, names + ["utt2num_samples"])
    try:
        for job, values, result in _run_in_order(items, max(1, min(nj, total))):
            progress.add(result, fs)
            if result.reason:
                excluded[job.uttid] = result.reason
                continue
            final_path = final_prefix + job.out_path[len(new_prefix) :]
            writer.add(job.uttid, {**values, "wav.scp": final_path, "utt2num_samples": str(result.num_samples)})
    except BaseException:
        writer.abort()
        raise
    excluded_path = dst / "excluded.txt"
    write_text(excluded_path, "".join(f"{u}\t{excluded[u]}\n" for u in kaldi_files.sorted_keys(excluded)))
    progress.summary(fs, excluded_path)
    if not writer.count:
        writer.abort()
        _swap_in(new_dir, audio_dir)
        raise ValueError(
            f"{src}/wav.scp: all {total} utterance(s) excluded (see {excluded_path}); "
            "expected at least one readable audio"
        )
    _swap_in(new_dir, audio_dir)
    writer.close()
    _write_speaker_files(src, dst, writer.speakers, audio_format)
    logger.info("%s: wrote %d utterance(s), excluded %d", dst, writer.count, len(excluded))
    return excluded


def _write_speaker_files(src: Path, dst: Path, speakers: set, audio_format: str) -> None:
    """The per-speaker files (restricted to ``speakers``) and the scalar files of ``dst``."""
    for name in datadir.SPK_FILES:
        if (src / name).is_file():
            mapping = kaldi_files.read_map(src / name)
            kaldi_files.write_map(dst / name, {s: v for s, v in mapping.items() if s in speakers})
        elif (dst / name).exists():
            (dst / name).unlink()
    scalars = {n: (src / n).read_bytes() for n in datadir.SCALAR_FILES if (src / n).is_file()}
    scalars.update(feats_type=b"raw\n", audio_format=f"{audio_format}\n".encode())
    for name in datadir.SCALAR_FILES:
        if name in scalars:
            write_bytes(dst / name, scalars[name])
        elif (dst / name).exists():
            (dst / name).unlink()
    others = sorted(
        p.name
        for p in src.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name not in datadir.KNOWN_FILES
    )
    if others:
        logger.warning("%s: not carried over (unknown to the data-dir tools): %s", dst, ", ".join(others))
