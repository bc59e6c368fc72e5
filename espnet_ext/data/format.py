"""Stage 3: decode every ``wav.scp`` entry, resample, and dump 16-bit PCM files.

Reads ``SRC/{wav.scp,text,utt2spk,spk2utt}`` and ``SRC/segments`` if there is one (a valid
data dir, see :func:`espnet_ext.data.datadir.validate_data_dir`) and writes ``DST/``:

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

With ``segments``, ``wav.scp`` lists recordings and each utterance is the span
``[round(start * sr), round(end * sr))`` of its recording's samples at the recording's rate
``sr`` (channel 0), then resampled to ``fs``: what ESPnet's ``format_wav_scp.sh --segments``
does, with the rounding and the end checks of Kaldi's ``extract-segments``. A segment whose
end lies beyond its recording by less than :data:`MAX_OVERSHOOT` seconds is cut at the
recording's end (counted in the log); one that ends further out, or starts at or after the
end, is excluded with its reason, as is every segment of a recording whose audio is bad. The
output has one audio file per utterance and no ``segments``. The utterances that follow each
other in id order with the same recording are one task (Kaldi's utterance ids start with the
recording id, so usually all of a recording's segments): a recording file is opened once per
task and each segment read by seeking to it (a pipe's output, or audio that only sox decodes,
is decoded whole, once per task). Segments shorter than Kaldi's 0.1 s minimum are kept; the
filter stage that follows removes utterances by duration.
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
from collections.abc import Callable, Iterator, Sequence
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
#: Seconds a segment may end beyond its recording and be cut at the end (Kaldi extract-segments' --max-overshoot).
MAX_OVERSHOOT = 0.5

T = TypeVar("T")
J = TypeVar("J")
R = TypeVar("R")


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


class SegmentJob(NamedTuple):
    """One segment of a :class:`RecordingJob`: the utterance, its span in seconds, its output file."""

    uttid: str
    start: float
    end: float
    out_path: str


class RecordingJob(NamedTuple):
    """Segments of one recording to cut and dump (consecutive utterances in id order)."""

    recording: str
    entry: str  # the recording's wav.scp value
    segments: tuple[SegmentJob, ...]
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
    cut_at_end: bool = False  # a segment that ended a little beyond its recording, cut at its end


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


class Recording:
    """A recording's audio read span by span (frames x channels float64): a seekable sound file,
    or samples decoded whole (a pipe's output, audio that only sox decodes)."""

    def __init__(self, samplerate: int, sound=None, audio: np.ndarray | None = None):
        self.samplerate = samplerate
        self._sound, self._audio = sound, audio
        self.frames = int(sound.frames if sound is not None else audio.shape[0])
        self.channels = int(sound.channels if sound is not None else audio.shape[1])

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start`` to ``stop`` (``0 <= start < stop <= frames``)."""
        if self._sound is None:
            return self._audio[start:stop]
        self._sound.seek(start)
        audio = self._sound.read(stop - start, dtype="float64", always_2d=True)
        if audio.shape[0] != stop - start:
            raise AudioError(f"read {audio.shape[0]} of the {stop - start} samples from sample {start}")
        return audio

    def close(self) -> None:
        """Close the sound file (if one is open)."""
        if self._sound is not None:
            self._sound.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_recording(entry: str) -> Recording:
    """Open one ``wav.scp`` value for reading spans (see :class:`Recording`).

    Raises:
        AudioError: the reason the audio cannot be used (naming the file or the pipe).
    """
    import soundfile

    if _pipe_command(entry) is None and os.path.isfile(entry):
        try:
            sound = soundfile.SoundFile(entry)
        except (soundfile.LibsndfileError, RuntimeError, ValueError):
            sound = None  # load_audio tries again and falls back on sox
        if sound is not None and sound.frames > 0 and sound.seekable():
            return Recording(int(sound.samplerate), sound=sound)
        if sound is not None:
            sound.close()
    audio, sr = load_audio(entry)
    return Recording(sr, audio=audio)


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


def _check_rate(source_fs: int, expected_fs: tuple[int, ...] | None, source: str) -> None:
    if expected_fs is not None and source_fs not in expected_fs:
        expected = ", ".join(str(x) for x in expected_fs)
        raise AudioError(f"sample rate {source_fs} Hz in {source}, expected one of {expected} Hz")


def _dump(audio: np.ndarray, source_fs: int, out_path: str, fs: int, audio_format: str, what: str) -> int:
    """Check channel 0 of ``audio`` (frames x channels), resample it to ``fs`` and write it;
    return the number of samples written. ``what`` names the audio in the errors."""
    if audio.shape[0] == 0:
        raise AudioError(f"zero samples in {what} (expected at least one sample)")
    if not np.all(np.isfinite(audio[:, 0])):
        raise AudioError(f"NaN or infinite samples in {what} (expected finite audio)")
    samples = to_int16(resample(audio[:, 0], source_fs, fs))
    if samples.shape[0] == 0:
        raise AudioError(f"no samples left after resampling {what} to {fs} Hz")
    _write_audio(out_path, samples, fs, audio_format)
    return int(samples.shape[0])


def _unexpected(error: Exception, source: str) -> str:
    return f"unexpected error reading {source}: {type(error).__name__}: {error}"


def process(job: Job) -> Result:
    """Decode, check, resample and write one utterance; never raises for bad audio."""
    source = _describe(job.entry)
    try:
        audio, source_fs = load_audio(job.entry)
        _check_rate(source_fs, job.expected_fs, source)
        num_samples = _dump(audio, source_fs, job.out_path, job.fs, job.audio_format, source)
        return Result(job.uttid, num_samples, "", int(audio.shape[1]), source_fs, source)
    except AudioError as e:
        return Result(job.uttid, 0, str(e), 0, 0, source)
    except Exception as e:  # one broken utterance must not stop a corpus-sized run
        return Result(job.uttid, 0, _unexpected(e, source), 0, 0, source)


def _sample(seconds: float, rate: int) -> int:
    """The sample at ``seconds`` (>= 0), rounded half up as Kaldi's extract-segments rounds."""
    return int(math.floor(seconds * rate + 0.5))


def _cut(job: RecordingJob, segment: SegmentJob, recording: Recording, source: str) -> Result:
    """Cut, check, resample and write one segment of an open recording (see the module docstring)."""
    rate, frames = recording.samplerate, recording.frames
    span = f"segment {segment.start:g}-{segment.end:g} s of recording {job.recording}"
    length = f"{frames / rate:g} s, {source}"
    first, last = _sample(segment.start, rate), _sample(segment.end, rate)
    cut_at_end = False
    if first >= frames:
        raise AudioError(f"{span} starts at or after the recording's end ({length})")
    if last > frames:
        if last - frames >= int(MAX_OVERSHOOT * rate):
            raise AudioError(
                f"{span} ends {(last - frames) / rate:.3f} s beyond the recording's end ({length}); "
                f"expected at most {MAX_OVERSHOOT} s beyond"
            )
        last, cut_at_end = frames, True
    if last <= first:
        raise AudioError(f"{span} holds no sample at {rate} Hz")
    num_samples = _dump(recording.read(first, last), rate, segment.out_path, job.fs, job.audio_format, span)
    return Result(segment.uttid, num_samples, "", recording.channels, rate, source, cut_at_end)


def process_recording(job: RecordingJob) -> list[Result]:
    """Cut and dump every segment of ``job`` (one :class:`Result` each, in order); never raises
    for bad audio: a recording that cannot be used excludes each of its segments."""
    source = _describe(job.entry)

    def excluded(reason: str) -> list[Result]:
        return [Result(s.uttid, 0, f"recording {job.recording}: {reason}", 0, 0, source) for s in job.segments]

    try:
        recording = open_recording(job.entry)
    except AudioError as e:
        return excluded(str(e))
    except Exception as e:
        return excluded(_unexpected(e, source))
    results = []
    with recording:
        try:
            _check_rate(recording.samplerate, job.expected_fs, source)
            if recording.frames == 0:
                raise AudioError(f"zero samples in {source} (expected at least one sample)")
        except AudioError as e:
            return excluded(str(e))
        for segment in job.segments:
            try:
                results.append(_cut(job, segment, recording, source))
            except AudioError as e:
                results.append(Result(segment.uttid, 0, str(e), 0, 0, source))
            except Exception as e:  # one broken segment must not stop a corpus-sized run
                results.append(Result(segment.uttid, 0, _unexpected(e, source), 0, 0, source))
    return results


class _Progress:
    """Logs results as they arrive: warnings for the first exclusions, progress every ~10%."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.time()
        self.step = max(1, math.ceil(total / 10))
        self.excluded = 0
        self.cut_at_end = 0
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
            self.cut_at_end += result.cut_at_end
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
        if self.cut_at_end:
            logger.info(
                "%d segment(s) ended less than %g s beyond their recording: cut at its end",
                self.cut_at_end,
                MAX_OVERSHOOT,
            )
        if self.multichannel:
            logger.info("%d multi-channel utterance(s): took channel 0 of each", self.multichannel)
        for source_fs, count in sorted(self.resampled.items()):
            logger.info("resampled %d utterance(s) from %d Hz to %d Hz", count, source_fs, fs)


def _process_chunk(work: Callable[[J], R], jobs: list[J]) -> list[R]:
    return [work(job) for job in jobs]


def _run_in_order(
    items: Iterator[tuple[J, T]], nj: int, work: Callable[[J], R] | None = None, chunk_size: int | None = None
) -> Iterator[tuple[J, T, R]]:
    """``(job, extra, work(job))`` for each ``(job, extra)`` of ``items``, in their order
    (``work`` is :func:`process` unless given).

    With ``nj`` > 1 the jobs run in a pool of ``nj`` processes, in chunks of up to
    ``chunk_size`` (``CHUNK_SIZE`` unless given), at most ``CHUNKS_IN_FLIGHT_PER_JOB * nj``
    chunks ahead of the consumer: the memory held does not grow with the number of utterances
    (``Pool.imap`` would read all of ``items`` ahead).
    """
    work = process if work is None else work
    chunk_size = CHUNK_SIZE if chunk_size is None else chunk_size
    if nj == 1:
        for job, extra in items:
            yield job, extra, work(job)
        return
    pending: collections.deque[tuple[list[tuple[J, T]], multiprocessing.pool.AsyncResult]] = collections.deque()
    with multiprocessing.get_context("spawn").Pool(nj) as pool:
        while True:
            while len(pending) < CHUNKS_IN_FLIGHT_PER_JOB * nj:
                chunk = list(itertools.islice(items, chunk_size))
                if not chunk:
                    break
                pending.append((chunk, pool.apply_async(_process_chunk, (work, [job for job, _ in chunk]))))
            if not pending:
                return
            chunk, future = pending.popleft()
            for (job, extra), result in zip(chunk, future.get()):
                yield job, extra, result


def _recording_tasks(
    src: Path,
    utterances: Iterator[tuple[str, dict[str, str]]],
    new_prefix: str,
    fs: int,
    audio_format: str,
    expected: tuple[int, ...] | None,
) -> Iterator[tuple[RecordingJob, list[dict[str, str]]]]:
    """``(job, the values of its utterances)`` for each run of utterances (in id order) whose
    segments share a recording; the recordings' ``wav.scp`` lines are looked up as the runs come
    (:class:`~espnet_ext.data.datadir.RecordingIndex`)."""
    index = datadir.RecordingIndex(src / "wav.scp")
    run: list[SegmentJob] = []
    extras: list[dict[str, str]] = []
    recording = ""

    def job() -> RecordingJob:
        entry = index.get(recording)
        if entry is None:  # validate_data_dir checked every segment's recording
            raise ValueError(f"{src}/wav.scp: no recording {recording!r}; expected a valid data dir")
        return RecordingJob(recording, entry, tuple(run), fs, audio_format, expected)

    for uttid, values in utterances:
        segment = datadir.parse_segment(values["segments"])
        if run and segment.recording != recording:
            yield job(), extras
            run, extras = [], []
        recording = segment.recording
        out_path = f"{new_prefix}{file_name(uttid)}.{audio_format}"
        run.append(SegmentJob(uttid, segment.start, segment.end, out_path))
        extras.append(values)
    if run:
        yield job(), extras


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
    segmented = (src / "segments").is_file()
    names = [
        n
        for n in datadir.UTT_FILES
        if (src / n).is_file() and n != "utt2num_samples" and not (segmented and n in datadir.RECORDING_FILES)
    ]
    written = [n for n in names if n != "segments"] + (["wav.scp"] if segmented else []) + ["utt2num_samples"]
    audio_dir, new_dir = dst / "data", dst / "data.new"
    if new_dir.exists():
        shutil.rmtree(new_dir)  # left by an interrupted run
    new_dir.mkdir(parents=True)
    expected = tuple(expected_fs) if expected_fs else None
    # per-utterance paths are strings: Python 3.11's pathlib interns every path component
    # (``sys.intern``), which would keep each utterance's file name for the life of the process
    new_prefix, final_prefix = os.path.join(new_dir, ""), os.path.join(audio_dir, "")
    utterances = datadir.iter_utterances(src, names)
    nj = max(1, min(nj, total))
    if segmented:
        tasks = _recording_tasks(src, utterances, new_prefix, fs, audio_format, expected)
        results = (
            (segment.uttid, segment.out_path, values, result)
            for job, extras, outcomes in _run_in_order(tasks, nj, process_recording, chunk_size=1)
            for segment, values, result in zip(job.segments, extras, outcomes, strict=True)
        )
    else:
        items = (
            (
                Job(u, values["wav.scp"], f"{new_prefix}{file_name(u)}.{audio_format}", fs, audio_format, expected),
                values,
            )
            for u, values in utterances
        )
        results = ((job.uttid, job.out_path, values, result) for job, values, result in _run_in_order(items, nj))
    logger.info(
        "%s: dumping %d utterance(s)%s to %s at %d Hz as %s with %d job(s)",
        src,
        total,
        " (segments of the recordings of wav.scp)" if segmented else "",
        dst,
        fs,
        audio_format,
        nj,
    )
    progress = _Progress(total)
    excluded: dict[str, str] = {}
    writer = datadir.SortedDataDirWriter(dst, written)
    try:
        for uttid, out_path, values, result in results:
            progress.add(result, fs)
            if result.reason:
                excluded[uttid] = result.reason
                continue
            final_path = final_prefix + out_path[len(new_prefix) :]
            values.pop("segments", None)
            writer.add(uttid, {**values, "wav.scp": final_path, "utt2num_samples": str(result.num_samples)})
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
