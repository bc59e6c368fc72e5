"""The pre-training set (ssl1 stage 2): other sets' sentences left out, consecutive utterances
joined, a random share held out for validation.

Mandarin-Wav2Vec2 (https://github.com/kehanlu/Mandarin-Wav2Vec2) prepares AISHELL-2 for
pre-training in three steps, which :func:`prepare_pretrain_set` makes options for any data dir:
it removes the files whose transcripts are sentences of AISHELL-1's dev and test sets,
concatenates 6 consecutive wav files, unshuffled, into one (lengths close to LibriSpeech's, and
fewer, longer utterances to load), and holds out a random 1 % for validation. Each step is
optional; they run in that order, on the source data dir read in utterance-id order:

1. **Leave out other sets' sentences** (``exclude_texts_of``): an utterance whose transcript,
   normalised by :func:`normalize_text` (white space removed: what the AISHELL-1 and AISHELL-2
   readers write as text), equals one of the given data dirs' transcripts is left out and
   listed in ``excluded.txt`` with the set and utterance it matches. Empty transcripts match
   nothing. The source needs a ``text`` file; the reference sets are held in memory.
2. **Concatenate** (``concat`` N, or ``concat_seconds`` S): consecutive utterances of one
   speaker in id order form a group, N at a time, or as many as fit in S seconds (a longer one
   alone); a group never spans two speakers, nor a change of sample rate or channel count (sox
   cannot join those), and the last group of a run keeps what remains (shorter). Utterances
   of one speaker that are not contiguous in id order (ids not prefixed by the speaker, as
   Kaldi asks) are joined run by run (logged). Each member's audio header is read first
   (soundfile): one that cannot be read, or a missing or empty file, is left out and listed.
   A group of one keeps its id and audio; a larger one is named ``<first id>+<last id>`` and
   its audio is, by ``audio``:

   ``files``  written once, 16-bit mono WAV (channel 0), to ``<audio_dir>/<speaker>/<id>.wav``;
   ``pipes``  the command ``sox <member> ... -t wav - |`` in ``wav.scp`` (ESPnet's convention for
              a command that writes audio), run by whatever reads the data dir (stage 3, once).

   ``members.txt`` lists each group's members (``<id> <member> ...``) and ``utt2dur`` its
   duration, the sum of the members' (read from their headers). ``text``, when the source has
   one, holds the members' transcripts joined by a space. Members in ``wav.scp`` as commands
   (``... |``) cannot be joined here: ValueError.
3. **Hold out** (``valid_percent`` P, ``seed``): ``round(n * P / 100)`` (at least 1) of the n
   utterances (groups) drawn at random (``random.Random(seed).sample``, so the same seed and
   set draw the same ones) form ``valid_dir``; the rest ``train_dir``.

``train_dir/excluded.txt`` lists every source utterance left out (``uttid<TAB>reason``);
``valid_dir`` gets an empty one. The source is streamed: memory holds the reference
transcripts, the utterances left out, the speakers' names, one group and, with a held-out
share, the drawn positions, not the set; audio is read and written one member at a time. Neither torch nor
ESPnet is imported.

Command line (what ``egs2/TEMPLATE/ssl1/ssl.sh`` stage 2 runs): ``python -m
espnet_ext.bin.pretrain_set SRC TRAIN_DIR [--valid_dir DIR --valid_percent P --seed S]
[--exclude_texts_of DIR ...] [--concat N | --concat_seconds S] [--concat_audio files|pipes
--audio_dir DIR]``.
"""

from __future__ import annotations

import logging
import os
import random
import shlex
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from espnet_ext.core.atomic import replacing
from espnet_ext.data import datadir, kaldi_files
from espnet_ext.data.corpora.splits import write_excluded
from espnet_ext.data.format import file_name

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

CONCAT_AUDIO = ("files", "pipes")
GROUP_SEPARATOR = "+"  # between the first and last member ids of a group's id
MEMBERS = "members.txt"
AUDIO_MARKER = ".pretrain_set_audio"  # marks an audio_dir this module wrote (and may empty)


class Summary(NamedTuple):
    """What :func:`prepare_pretrain_set` wrote: source utterances read and left out, utterances
    (groups) written, and how many of them went to the training and validation dirs."""

    read: int
    excluded: int
    utterances: int
    train: int
    valid: int


@dataclass(slots=True)
class Member:
    """One source utterance as the concatenation sees it. (A class, not a tuple: CPython keeps up
    to 2,000 freed tuples of each small size for reuse, which would read as memory growing with the
    set in the tests' measurements.)"""

    utt: str
    speaker: str
    entry: str  # the wav.scp value: an audio file
    text: str | None
    frames: int
    rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


def normalize_text(text: str) -> str:
    """The transcript as compared by ``exclude_texts_of``: white space removed (the AISHELL readers'
    text: words joined, character tokens)."""
    return "".join(text.split())


def read_reference_texts(dirs: Sequence[PathLike]) -> dict[str, tuple[str, str]]:
    """``normalised transcript -> (data dir, first utterance with it)`` over the ``text`` files of ``dirs``.

    Raises:
        ValueError: a data dir without a ``text`` file, naming it.
    """
    refs: dict[str, tuple[str, str]] = {}
    for directory in dirs:
        path = Path(directory) / "text"
        if not path.is_file():
            raise ValueError(f"{path}: not found; expected the transcripts of {directory} (--exclude_texts_of)")
        for entry in kaldi_files.iter_entries(path, allow_empty_value=True):
            key = normalize_text(entry.value)
            if key:
                refs.setdefault(key, (str(directory), entry.key))
    return refs


def probe(entry: str) -> tuple[int, int, int]:
    """``(frames, sample rate, channels)`` from an audio file's header (soundfile).

    Raises:
        ValueError: ``entry`` is a command (``... |``), which cannot be joined here.
        OSError: the reason the file cannot be used (missing, empty, unreadable header, no samples).
    """
    import soundfile

    if entry.rstrip().endswith("|"):
        raise ValueError(
            f"wav.scp entry {entry!r} is a command; concatenation joins audio files (write the commands' "
            "audio to files first, or leave concatenation off)"
        )
    if not os.path.isfile(entry):
        raise OSError(f"no audio file {entry}")
    if os.stat(entry).st_size == 0:
        raise OSError(f"empty audio file {entry}")
    try:
        info = soundfile.info(entry)
    except (soundfile.LibsndfileError, RuntimeError) as err:
        raise OSError(f"cannot read the audio header of {entry}: {err}") from None
    if info.frames <= 0:
        raise OSError(f"no samples in {entry}")
    return int(info.frames), int(info.samplerate), int(info.channels)


def iter_groups(members: Iterable[Member], concat: int = 0, seconds: float = 0.0) -> Iterator[list[Member]]:
    """Groups of consecutive members: ``concat`` at a time, or as many as fit in ``seconds`` (a
    longer member alone); a group ends where the speaker, the sample rate or the channel count changes."""
    group: list[Member] = []
    total = 0.0
    for member in members:
        if group:
            last = group[-1]
            same = (member.speaker, member.rate, member.channels) == (last.speaker, last.rate, last.channels)
            full = len(group) >= concat if concat else total + member.seconds > seconds
            if full or not same:
                yield group
                group, total = [], 0.0
        group.append(member)
        total += member.seconds
    if group:
        yield group


def group_id(group: Sequence[Member]) -> str:
    """A group's utterance id: its member's id when alone, else ``<first>+<last>``."""
    return group[0].utt if len(group) == 1 else f"{group[0].utt}{GROUP_SEPARATOR}{group[-1].utt}"


def sox_command(group: Sequence[Member]) -> str:
    """The ``wav.scp`` command that writes the group's audio, joined, as WAV to stdout."""
    return f"sox {' '.join(shlex.quote(m.entry) for m in group)} -t wav - |"


def _fresh_audio_dir(audio_dir: Path) -> None:
    """Empty ``audio_dir`` if this module wrote it (its marker is there); refuse another's."""
    if audio_dir.exists() and any(audio_dir.iterdir()):
        if not (audio_dir / AUDIO_MARKER).is_file():
            raise ValueError(
                f"{audio_dir}: not empty and not written by espnet_ext.data.pretrain_set (no {AUDIO_MARKER}); "
                "expected a new directory for the concatenated audio"
            )
        shutil.rmtree(audio_dir)
    audio_dir.mkdir(parents=True, exist_ok=True)
    (audio_dir / AUDIO_MARKER).write_text("concatenated audio of espnet_ext.data.pretrain_set\n", encoding="utf-8")


def write_group_audio(group: Sequence[Member], path: str, excluded: dict[str, str]) -> list[Member]:
    """Write ``group``'s audio, joined, to ``path`` (16-bit mono WAV, channel 0), one member at a
    time; return the members written (one that fails to decode is left out, listed in ``excluded``;
    with none written, no file is left)."""
    import soundfile

    written = []
    with soundfile.SoundFile(path, "w", group[0].rate, 1, "PCM_16", format="WAV") as out:
        for member in group:
            try:
                samples = soundfile.read(member.entry, dtype="int16", always_2d=True)[0]
            except (soundfile.LibsndfileError, RuntimeError, OSError) as err:
                excluded[member.utt] = f"cannot decode {member.entry}: {err}"
                continue
            out.write(samples[:, 0])
            member.frames = len(samples)
            written.append(member)
    if not written:
        os.unlink(path)
    return written


def _check_options(concat: int, seconds: float, audio: str, audio_dir, valid_percent: float, valid_dir) -> None:
    if concat < 0 or seconds < 0 or (concat and seconds):
        raise ValueError(f"concat {concat}, concat_seconds {seconds}: expected at most one of them, positive (0: off)")
    if audio not in CONCAT_AUDIO:
        raise ValueError(f"concat_audio: expected one of {', '.join(CONCAT_AUDIO)}, found {audio!r}")
    if (concat or seconds) and audio == "files" and audio_dir is None:
        raise ValueError("audio_dir: expected a directory for the concatenated audio (concat_audio files)")
    if not 0 <= valid_percent < 100:
        raise ValueError(f"valid_percent: expected 0 (off) up to below 100, found {valid_percent}")
    if bool(valid_percent) != (valid_dir is not None):
        raise ValueError("valid_percent and valid_dir: expected both (a held-out share and where it goes) or neither")


class _Source:
    """The streaming pass over the source data dir: exclusion, then the members of concatenation."""

    def __init__(self, src: Path, refs: dict, excluded: dict[str, str]):
        self.src, self.refs, self.excluded = src, refs, excluded
        self.has_text = (src / "text").is_file()
        self.names = ["wav.scp", "utt2spk"] + (["text"] if self.has_text else [])
        self.read = 0

    def kept(self) -> Iterator[tuple[str, dict[str, str]]]:
        """``(utt, {file: value})`` of the utterances whose transcript no reference set has."""
        for utt, values in datadir.iter_utterances(self.src, self.names):
            self.read += 1
            if self.refs:
                match = self.refs.get(normalize_text(values["text"]))
                if match is not None:
                    self.excluded[utt] = f"same transcript (white space ignored) as {match[1]} in {match[0]}"
                    continue
            yield utt, values

    def members(self) -> Iterator[Member]:
        """The kept utterances whose audio header reads, as :class:`Member`; runs of a speaker logged."""
        runs, speakers, last = 0, set(), None
        for utt, values in self.kept():
            try:
                frames, rate, channels = probe(values["wav.scp"])
            except OSError as err:
                self.excluded[utt] = str(err)
                continue
            speaker = values["utt2spk"]
            if speaker != last:
                runs, last = runs + 1, speaker
                speakers.add(speaker)
            yield Member(utt, speaker, values["wav.scp"], values.get("text"), frames, rate, channels)
        if runs > len(speakers):
            logger.warning(
                "%s: the utterances of %d speakers come in %d runs in id order (ids not prefixed by their "
                "speaker): groups end where a run ends",
                self.src,
                len(speakers),
                runs,
            )


def _join(source: _Source, writer, members, concat: int, seconds: float, audio_dir: Path | None) -> None:
    """Write the groups of ``source`` (see step 2) to ``writer`` and their members to ``members``."""
    made: set = set()
    for group in iter_groups(source.members(), concat, seconds):
        utt, speaker = group_id(group), group[0].speaker
        if len(group) == 1:
            entry = group[0].entry
        elif audio_dir is None:
            entry = sox_command(group)
        else:
            # names as strings: Python 3.11's pathlib interns every path component it sees
            directory = f"{audio_dir}/{file_name(speaker)}"
            if speaker not in made:
                os.makedirs(directory, exist_ok=True)
                made.add(speaker)
            entry = f"{directory}/{file_name(utt)}.wav"
            group = write_group_audio(group, entry, source.excluded)
            if not group:
                continue
            if group_id(group) != utt:  # a first or last member failed to decode: named by those written
                utt = group_id(group)
                os.replace(entry, f"{directory}/{file_name(utt)}.wav")
                entry = f"{directory}/{file_name(utt)}.wav"
        values = {
            "wav.scp": entry,
            "utt2spk": speaker,
            "utt2dur": f"{sum(m.frames for m in group) / group[0].rate:.4f}",
        }
        if source.has_text:
            values["text"] = " ".join(m.text for m in group if m.text)
        writer.add(utt, values)
        members.write(f"{utt} {' '.join(m.utt for m in group)}\n")


def _write_all(source: _Source, out: Path, concat: int, seconds: float, audio_dir: Path | None) -> int:
    """The source, left out and joined, into the data dir ``out``; return its utterance count."""
    joining = bool(concat or seconds)
    names = ["wav.scp", "utt2spk"] + (["text"] if source.has_text else []) + (["utt2dur"] if joining else [])
    writer = datadir.SortedDataDirWriter(out, names)
    try:
        if joining:
            with replacing(out / MEMBERS) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as members:
                _join(source, writer, members, concat, seconds, audio_dir)
        else:
            for utt, values in source.kept():
                writer.add(utt, values)
    except BaseException:
        writer.abort()
        raise
    if not writer.count:
        writer.abort()
        reasons = "; ".join(f"{u}: {r}" for u, r in list(source.excluded.items())[:3])
        raise ValueError(f"{source.src}: no utterance left for pre-training{' (' + reasons + ')' if reasons else ''}")
    if not joining and (out / MEMBERS).exists():
        (out / MEMBERS).unlink()
    return writer.close()


def hold_out(all_dir: Path, train_dir: Path, valid_dir: Path, count: int, percent: float, seed: int) -> int:
    """Split the data dir ``all_dir`` (``count`` utterances) into ``train_dir`` and ``valid_dir``
    (see step 3), streaming; return the size of ``valid_dir``."""
    k = max(1, round(count * percent / 100))
    if k >= count:
        raise ValueError(
            f"{all_dir}: {percent} % of {count} utterances leaves none for training; expected more "
            "utterances or a smaller valid_percent"
        )
    drawn = set(random.Random(seed).sample(range(count), k))
    names = [n for n in ("wav.scp", "utt2spk", "text", "utt2dur") if (all_dir / n).is_file()]
    dirs = (train_dir, valid_dir)
    writers = [datadir.SortedDataDirWriter(d, names) for d in dirs]
    with_members = (all_dir / MEMBERS).is_file()
    try:
        member_lines = kaldi_files.iter_entries(all_dir / MEMBERS) if with_members else None
        with replacing(train_dir / MEMBERS) as tmp0, replacing(valid_dir / MEMBERS) as tmp1:
            outs = [open(tmp, "w", encoding="utf-8", newline="\n") for tmp in (tmp0, tmp1)]
            try:
                for index, (utt, values) in enumerate(datadir.iter_utterances(all_dir, names)):
                    held = int(index in drawn)
                    writers[held].add(utt, values)
                    if member_lines is not None:
                        line = next(member_lines)
                        if line.key != utt:
                            raise ValueError(f"{all_dir / MEMBERS}:{line.lineno}: expected {utt}, found {line.key}")
                        outs[held].write(f"{utt} {line.value}\n")
            finally:
                for out in outs:
                    out.close()
    except BaseException:
        for writer in writers:
            writer.abort()
        raise
    for writer in writers:
        writer.close()
    if not with_members:
        for d in dirs:
            (d / MEMBERS).unlink()
    return k


def prepare_pretrain_set(
    src: PathLike,
    train_dir: PathLike,
    valid_dir: PathLike | None = None,
    exclude_texts_of: Sequence[PathLike] = (),
    concat: int = 0,
    concat_seconds: float = 0.0,
    concat_audio: str = "files",
    audio_dir: PathLike | None = None,
    valid_percent: float = 0.0,
    seed: int = 0,
) -> Summary:
    """Write the pre-training set of ``src`` into ``train_dir`` (and ``valid_dir``): see the module docstring.

    Raises:
        ValueError: bad options, a source that is not a valid data dir (or has no ``text`` to
            compare), a reference set without ``text``, a command in ``wav.scp`` with
            concatenation, no utterance left, none left for training.
    """
    src, train_dir = Path(src), Path(train_dir)
    _check_options(concat, concat_seconds, concat_audio, audio_dir, valid_percent, valid_dir)
    outputs = [train_dir] + ([Path(valid_dir)] if valid_dir is not None else [])
    if any(src.resolve() == d.resolve() for d in outputs):
        raise ValueError(f"{src}: also an output directory; expected new directories for the pre-training set")
    if (src / "segments").exists():
        raise ValueError(f"{src}/segments: expected one recording per utterance (cut the segments first)")
    datadir.validate_data_dir(src, require_text=bool(exclude_texts_of))
    refs = read_reference_texts(exclude_texts_of)
    joining = bool(concat or concat_seconds)
    files_dir = Path(audio_dir).resolve() if joining and concat_audio == "files" else None
    if files_dir is not None:
        _fresh_audio_dir(files_dir)
    excluded: dict[str, str] = {}
    source = _Source(src, refs, excluded)
    valid = 0
    if not valid_percent:
        count = _write_all(source, train_dir, concat, concat_seconds, files_dir)
    else:
        train_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{train_dir.name}.", dir=train_dir.parent))
        try:
            count = _write_all(source, staging, concat, concat_seconds, files_dir)
            valid = hold_out(staging, train_dir, Path(valid_dir), count, valid_percent, seed)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        write_excluded(Path(valid_dir) / "excluded.txt", {})
    write_excluded(train_dir / "excluded.txt", excluded)
    summary = Summary(source.read, len(excluded), count, count - valid, valid)
    logger.info(
        "%s: %d utterances read, %d left out (listed in %s), %d written%s: %d to %s%s",
        src,
        summary.read,
        summary.excluded,
        train_dir / "excluded.txt",
        summary.utterances,
        f" (groups of {concat})" if concat else f" (groups of up to {concat_seconds} s)" if concat_seconds else "",
        summary.train,
        train_dir,
        f", {summary.valid} to {valid_dir} ({valid_percent} %, seed {seed})" if valid_percent else "",
    )
    return summary
