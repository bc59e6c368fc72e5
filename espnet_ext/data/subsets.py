"""Data dirs derived from others: subset, split, combine, exclude.

Each tool reads its source(s) with :func:`~espnet_ext.data.datadir.load_valid_data_dir`, so a
source that :func:`~espnet_ext.data.datadir.validate_data_dir` rejects is refused (nothing is
lost unnoticed), and writes the result with :func:`~espnet_ext.data.datadir.write_data_dir`.
Command line: ``python -m espnet_ext.bin.datadir subset|split|combine|filter``. Imports neither
torch nor ESPnet.

A ``segments`` file is carried along: each derived directory's ``wav.scp`` holds the recordings
of its segments (see :meth:`~espnet_ext.data.datadir.DataDir.subset`).
"""

from __future__ import annotations

import logging
import os
import random
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from espnet_ext.core.atomic import write_text
from espnet_ext.data.datadir import (
    RECORDING_FILES,
    SCALAR_FILES,
    SPK_FILES,
    UTT_FILES,
    DataDir,
    load_valid_data_dir,
    write_data_dir,
)
from espnet_ext.data.kaldi_files import read_id_list, sort_key, sorted_keys, utt2spk_to_spk2utt

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike


# ----------------------------------------------------------------------------- subset


def select_utts(
    data: DataDir,
    utt_list: Sequence[str] | None = None,
    first: int | None = None,
    last: int | None = None,
    random_n: int | None = None,
    seed: int = 0,
    spk_list: Sequence[str] | None = None,
) -> list[str]:
    """The utterances one of the selectors picks (exactly one must be given), C-locale order.

    Ids in ``utt_list``/``spk_list`` that the data dir lacks are logged as a warning.

    Raises:
        ValueError: not exactly one selector, or ``N`` larger than the number of utterances.
    """
    given = [x is not None for x in (utt_list, first, last, random_n, spk_list)]
    if sum(given) != 1:
        raise ValueError("expected exactly one of utt_list, first, last, random_n, spk_list")
    utts = data.utts
    count = first if first is not None else last if last is not None else random_n
    if count is not None and not 0 < count <= len(utts):
        raise ValueError(f"asked for {count} utterances; expected 1 to {len(utts)} (the data dir's size)")
    if first is not None:
        return utts[:first]
    if last is not None:
        return utts[len(utts) - last :]
    if random_n is not None:
        return sorted_keys(random.Random(seed).sample(utts, random_n))
    if utt_list is not None:
        _warn_unknown("utterance", utt_list, data.utt2spk)
        return sorted_keys(set(utt_list) & set(utts))
    spk2utt = utt2spk_to_spk2utt(data.utt2spk)
    _warn_unknown("speaker", spk_list, spk2utt)
    return sorted_keys(u for spk in set(spk_list) if spk in spk2utt for u in spk2utt[spk])


def _warn_unknown(kind: str, ids: Sequence[str], known: Mapping[str, object]) -> None:
    unknown = sorted_keys({i for i in ids if i not in known})
    if unknown:
        logger.warning(
            "%d %s id(s) of the list are not in the data dir (ignored), e.g. %s",
            len(unknown),
            kind,
            ", ".join(unknown[:5]),
        )


def subset_data_dir(src: PathLike, dst: PathLike, **selector) -> int:
    """Write the subset of ``src`` picked by ``selector`` (see :func:`select_utts`) to ``dst``."""
    if Path(src).resolve() == Path(dst).resolve():
        raise ValueError(f"{dst}: same as the source; expected a different output directory")
    data = load_valid_data_dir(src)
    utts = select_utts(data, **selector)
    if not utts:
        raise ValueError(f"{src}: the selection is empty; expected at least one utterance")
    write_data_dir(data.subset(utts), dst)
    logger.info("%s: wrote %d of %d utterance(s) of %s", dst, len(utts), len(data.utt2spk), src)
    return len(utts)


# ----------------------------------------------------------------------------- split


def partition_utts(data: DataDir, num: int, by_speaker: bool = False) -> list[list[str]]:
    """Split the utterances into ``num`` non-empty parts.

    By utterance: contiguous runs in C-locale order whose sizes differ by at most one.
    By speaker: every speaker's utterances stay in one part; speakers are assigned largest
    first to the part with the fewest utterances so far (ties: the lower part number).

    Raises:
        ValueError: ``num`` < 1 or more parts than utterances (or speakers).
    """
    utts = data.utts
    if not by_speaker:
        if not 1 <= num <= len(utts):
            raise ValueError(f"cannot split {len(utts)} utterances into {num} parts; expected 1 to {len(utts)}")
        base, extra = divmod(len(utts), num)
        bounds = [i * base + min(i, extra) for i in range(num + 1)]
        return [utts[bounds[i] : bounds[i + 1]] for i in range(num)]
    spk2utt = utt2spk_to_spk2utt(data.utt2spk)
    if not 1 <= num <= len(spk2utt):
        raise ValueError(f"cannot split {len(spk2utt)} speakers into {num} parts; expected 1 to {len(spk2utt)}")
    parts: list[list[str]] = [[] for _ in range(num)]
    for spk in sorted(spk2utt, key=lambda s: (-len(spk2utt[s]), sort_key(s))):
        smallest = min(range(num), key=lambda i: (len(parts[i]), i))
        parts[smallest].extend(spk2utt[spk])
    return [sorted_keys(part) for part in parts]


def _split_up_to_date(path: Path, split_dir: Path, num: int, mode: str) -> bool:
    marker = split_dir / ".done"
    if not marker.is_file() or marker.read_text().strip() != mode:
        return False
    if not all((split_dir / str(i) / "utt2spk").is_file() for i in range(1, num + 1)):
        return False
    done = marker.stat().st_mtime
    return all(p.stat().st_mtime <= done for p in path.iterdir() if p.is_file())


def split_data_dir(path: PathLike, num: int, by_speaker: bool = False) -> list[Path]:
    """Write ``DIR/split{num}/{1..num}/``, each a full data dir; return their paths.

    Reuses an existing split made the same way when it is newer than every file of
    ``DIR`` (a ``.done`` marker holding the mode is written last); otherwise rebuilds it.

    Raises:
        ValueError: an invalid ``DIR`` (see :func:`~espnet_ext.data.datadir.validate_data_dir`), or too many parts.
    """
    path = Path(path)
    split_dir = path / f"split{num}"
    mode = "speaker" if by_speaker else "utterance"
    parts_dirs = [split_dir / str(i) for i in range(1, num + 1)]
    if _split_up_to_date(path, split_dir, num, mode):
        logger.info("%s: up to date (split by %s), reused", split_dir, mode)
        return parts_dirs
    data = load_valid_data_dir(path)
    parts = partition_utts(data, num, by_speaker)
    if data.others:
        logger.warning("%s: not carried into the splits: %s", path, ", ".join(data.others))
        data.others = []
    if split_dir.exists():
        shutil.rmtree(split_dir)
    for part, part_dir in zip(parts, parts_dirs):
        write_data_dir(data.subset(part), part_dir)
    write_text(split_dir / ".done", mode + "\n")
    sizes = [len(p) for p in parts]
    logger.info("%s: %d parts by %s, %d to %d utterances each", split_dir, num, mode, min(sizes), max(sizes))
    return parts_dirs


# ----------------------------------------------------------------------------- combine, exclude


def _combined_scalars(srcs: Sequence[Path], datas: Sequence[DataDir]) -> dict[str, bytes]:
    scalars: dict[str, bytes] = {}
    for name in SCALAR_FILES:
        values = {d.scalars.get(name) for d in datas}
        if len(values) == 1 and None not in values:
            scalars[name] = values.pop()
        elif name == "feats_type" and values != {None}:
            raise ValueError(f"{name} differs between {', '.join(map(str, srcs))}; expected the same feature type")
        elif values != {None}:
            logger.warning("%s differs between (or is missing from some of) the sources: not written", name)
    return scalars


def combine_data_dirs(dst: PathLike, srcs: Sequence[PathLike]) -> int:
    """Write the union of the data dirs ``srcs`` to ``dst``; return its number of utterances.

    A per-utterance file is combined only if every source has it (otherwise it is left out,
    with a warning); ``wav.scp`` and ``utt2spk`` must be in all. Sources with a ``segments``
    file combine their recordings too: a recording in several sources (the same recording cut
    into several sets) must have the same ``wav.scp`` line in each.

    Raises:
        ValueError: an utterance id in two sources (naming both), a missing required file, a
            ``segments`` file in some sources only, a recording with different lines.
    """
    srcs = [Path(s) for s in srcs]
    if not srcs:
        raise ValueError("no source data dirs given; expected at least one")
    if any(s.resolve() == Path(dst).resolve() for s in srcs):
        raise ValueError(f"{dst}: also a source; expected a different output directory")
    datas = [load_valid_data_dir(s) for s in srcs]
    owner: dict[str, Path] = {}
    for src, data in zip(srcs, datas):
        for utt in data.utt2spk:
            if utt in owner:
                raise ValueError(f"utterance {utt!r} is in both {owner[utt]} and {src}; expected unique utterance ids")
            owner[utt] = src
    segmented = [src for src, data in zip(srcs, datas) if "segments" in data.utt_maps]
    if segmented and len(segmented) < len(srcs):
        whole = [str(s) for s, d in zip(srcs, datas) if "segments" not in d.utt_maps]
        raise ValueError(
            f"{segmented[0]}/segments exists but {whole[0]} has none; expected a segments file in all "
            "sources or in none"
        )
    combined = DataDir(scalars=_combined_scalars(srcs, datas))
    if segmented:
        combined.reco_maps = {name: _combined_recordings(name, srcs, datas) for name in RECORDING_FILES}
    for name in UTT_FILES:
        if segmented and name in RECORDING_FILES:
            continue
        lacking = [str(s) for s, d in zip(srcs, datas) if name not in d.utt_maps]
        if lacking and name in ("wav.scp", "utt2spk"):
            raise ValueError(f"{lacking[0]}/{name}: missing; expected it in every source")
        if lacking and len(lacking) < len(srcs):
            logger.warning("%s is missing from %s: left out of %s", name, ", ".join(lacking), dst)
        if not lacking:
            combined.utt_maps[name] = {u: v for d in datas for u, v in d.utt_maps[name].items()}
    for name in SPK_FILES:
        if all(name in d.spk_maps for d in datas):
            combined.spk_maps[name] = {s: v for d in datas for s, v in d.spk_maps[name].items()}
    write_data_dir(combined, dst)
    logger.info("%s: combined %d utterance(s) from %d data dir(s)", dst, len(owner), len(srcs))
    return len(owner)


def _combined_recordings(name: str, srcs: Sequence[Path], datas: Sequence[DataDir]) -> dict[str, str]:
    """The union of the sources' recording file ``name``; a recording's lines must agree."""
    combined: dict[str, str] = {}
    owner: dict[str, Path] = {}
    for src, data in zip(srcs, datas):
        for recording, value in data.reco_maps[name].items():
            if recording in combined and combined[recording] != value:
                raise ValueError(
                    f"recording {recording!r} differs between {owner[recording]}/{name} and {src}/{name}; "
                    "expected the same line for a recording in several sources"
                )
            combined.setdefault(recording, value)
            owner.setdefault(recording, src)
    return combined


def exclude_utts(src: PathLike, dst: PathLike, exclude_file: PathLike) -> int:
    """Write ``src`` without the utterances whose ids are the first column of ``exclude_file``.

    Return the number of utterances removed; ids that ``src`` lacks are logged as a warning.

    Raises:
        ValueError: nothing would be left.
    """
    if Path(src).resolve() == Path(dst).resolve():
        raise ValueError(f"{dst}: same as the source; expected a different output directory")
    data = load_valid_data_dir(src)
    exclude = set(read_id_list(exclude_file))
    _warn_unknown("utterance", sorted_keys(exclude), data.utt2spk)
    keep = [u for u in data.utts if u not in exclude]
    if not keep:
        raise ValueError(f"{exclude_file}: excludes every utterance of {src}; expected some to be left")
    write_data_dir(data.subset(keep), dst)
    removed = len(data.utt2spk) - len(keep)
    logger.info("%s: removed %d utterance(s) listed in %s, kept %d", dst, removed, exclude_file, len(keep))
    return removed
