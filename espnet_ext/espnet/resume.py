"""Training state that survives a kill at any moment: atomic saves, and a resume that outlives a bad file.

Saving. While :class:`~espnet_ext.espnet.trainer.Trainer` runs, :func:`atomic_torch_saves` routes
every ``torch.save`` to a file path (``checkpoint.pth``, ``<N>epoch.pth``, ESPnet's n-best
averages, ...) through :func:`espnet_ext.core.atomic.replacing`: a kill leaves the previous file or
the new one, never a torn one. ``checkpoint.pth`` is replaced keeping the one before as
``checkpoint.prev.pth``, so an intact earlier state always lies beside the current one. A write
that fails (disk full) logs the file and the cause and stops the run, the previous files intact.

Resuming. :func:`newest_intact_state` picks what a run resumes from: ``checkpoint.pth``; when it
is unreadable (a torn file from before these saves, a disk fault), it is moved aside
(``checkpoint.pth.bad-<time>``, never deleted) with an error naming it and the cause, and the run
resumes from ``checkpoint.prev.pth`` (the full state one epoch earlier: the epoch is trained again,
bit for bit as the first time), else from the newest readable ``<N>epoch.pth``: model weights only
(the optimizer's moments, the schedulers' state and the reporter's history are lost, and the log
says so); training goes on at epoch N + 1. Never silently from scratch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import torch

from espnet_ext.core.atomic import is_temporary, replacing

CHECKPOINT = "checkpoint.pth"
PREVIOUS = "checkpoint.prev.pth"
_EPOCH_FILE = re.compile(r"^(\d+)epoch\.pth$")
_STATE_KEYS = ("model", "reporter", "optimizers", "schedulers")


class UnreadableState(Exception):
    """A state file that torch cannot load, or that is not what its name says."""


@contextlib.contextmanager
def atomic_torch_saves() -> Iterator[None]:
    """Within the block, ``torch.save(obj, path)`` writes ``path`` atomically (``checkpoint.pth``
    keeping its previous version as ``checkpoint.prev.pth``); file objects and the temporary files
    of :func:`~espnet_ext.core.atomic.replacing` are written as given."""
    original = torch.save

    def save(obj, f, *args, **kwargs):
        if not isinstance(f, (str, os.PathLike)) or is_temporary(f):
            return original(obj, f, *args, **kwargs)
        path = Path(f)
        keep = path.with_name(PREVIOUS) if path.name == CHECKPOINT else None
        try:
            with replacing(path, keep_previous=keep) as tmp:
                original(obj, tmp, *args, **kwargs)
        except Exception as error:
            logging.error(
                "Could not write %s: %s: %s. The previous %s (if any) is left as it was; the training "
                "stops here and resumes from the last state written when run again.",
                path,
                type(error).__name__,
                error,
                path.name,
            )
            raise
        return None

    torch.save = save
    try:
        yield
    finally:
        torch.save = original


def load_state(path: Path, map_location: str) -> Any:
    """``torch.load`` of a file the training wrote (``weights_only=False``, as ESPnet reads it).

    Raises:
        UnreadableState: torch cannot load it (truncated, corrupt) or it is missing; names the file and the cause.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:
        raise UnreadableState(f"{path}: {type(error).__name__}: {error}") from error


def move_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.bad-<time>`` beside it (never deleted); returns the new path."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.bad-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.bad-{stamp}-{n}")
    os.replace(path, target)
    return target


def epoch_files(exp_dir: Path) -> dict[int, Path]:
    """``{N: <N>epoch.pth}`` in ``exp_dir``, ascending."""
    found = {int(m.group(1)): p for p in Path(exp_dir).iterdir() if (m := _EPOCH_FILE.match(p.name))}
    return dict(sorted(found.items()))


class ResumeState(NamedTuple):
    """What a run resumes from: a full state (``states``, ESPnet's checkpoint dict) or only the
    model weights of ``epoch`` (``weights``); ``source`` is the file read."""

    source: Path
    states: dict[str, Any] | None = None
    weights: dict[str, torch.Tensor] | None = None
    epoch: int = 0


def _read_full(path: Path, map_location: str) -> dict[str, Any]:
    states = load_state(path, map_location)
    if not isinstance(states, dict) or any(key not in states for key in _STATE_KEYS):
        found = sorted(states) if isinstance(states, dict) else type(states).__name__
        raise UnreadableState(
            f"{path}: expected ESPnet's training state (keys {', '.join(_STATE_KEYS)}); found {found}"
        )
    return states


def _set_aside(path: Path, error: UnreadableState, move: bool) -> None:
    if move and path.exists():
        moved = move_aside(path)
        logging.error("Cannot resume from %s (%s); moved it to %s.", path, error, moved.name)
    else:
        logging.error("Cannot resume from %s (%s).", path, error)


def newest_intact_state(exp_dir: Path, map_location: str = "cpu", move: bool = True) -> ResumeState | None:
    """The newest state of ``exp_dir`` that loads: ``checkpoint.pth``, ``checkpoint.prev.pth``, then the
    ``<N>epoch.pth`` files from the last one down (weights only). Each unreadable one is logged and,
    with ``move`` (the process that writes), moved aside. None when there is nothing to resume from.
    """
    exp_dir = Path(exp_dir)
    for name in (CHECKPOINT, PREVIOUS):
        path = exp_dir / name
        if not path.exists():
            continue
        try:
            return ResumeState(path, states=_read_full(path, map_location))
        except UnreadableState as error:
            _set_aside(path, error, move)
    for epoch, path in reversed(epoch_files(exp_dir).items()):
        try:
            weights = load_state(path, map_location)
        except UnreadableState as error:
            _set_aside(path, error, move)
            continue
        if isinstance(weights, dict) and all(isinstance(v, torch.Tensor) for v in weights.values()):
            return ResumeState(path, weights=weights, epoch=epoch)
        _set_aside(path, UnreadableState(f"{path}: expected a model state dict"), move)
    return None


def restore_missing_checkpoint(exp_dir: Path) -> None:
    """``checkpoint.pth`` missing beside ``checkpoint.prev.pth`` (a kill between the two renames of a
    file system without hard links): the previous state becomes the current one again. Refuses
    (ValueError) to start over in a directory that holds epoch files but no state to resume from."""
    exp_dir = Path(exp_dir)
    current, previous = exp_dir / CHECKPOINT, exp_dir / PREVIOUS
    if current.exists():
        return
    if previous.exists():
        with contextlib.suppress(FileExistsError):  # another DDP rank did it first
            os.link(previous, current)
        logging.warning("%s is missing; resuming from %s", current, previous.name)
        return
    epochs = epoch_files(exp_dir) if exp_dir.is_dir() else {}
    if epochs:
        raise ValueError(
            f"{exp_dir}: expected {CHECKPOINT} or {PREVIOUS} to resume from beside "
            f"{', '.join(p.name for p in epochs.values())}; found neither. Training from scratch would "
            f"overwrite those epoch files: move them away to start over, or restore a checkpoint."
        )


def apply_full_state(
    states: dict[str, Any], model, reporter, optimizers, schedulers, scaler, strict: bool = True
) -> None:
    """Load ESPnet's checkpoint dict into the training objects (what ESPnet's own resume restores)."""
    model.load_state_dict(states["model"], strict=strict)
    reporter.load_state_dict(states["reporter"])
    for optimizer, state in zip(optimizers, states["optimizers"]):
        optimizer.load_state_dict(state)
    for scheduler, state in zip(schedulers, states["schedulers"]):
        if scheduler is not None:
            scheduler.load_state_dict(state)
    if scaler is not None:
        if states.get("scaler") is None:
            logging.warning("%s holds no gradient scaler state: the scaler starts afresh", CHECKPOINT)
        else:
            scaler.load_state_dict(states["scaler"])


def keep_earlier_epochs(exp_dir: Path, upto: int) -> Path | None:
    """Hard links (copies where links fail) of ``<N>epoch.pth``, N <= ``upto``, in
    ``<exp_dir>/epochs_before_resume-<time>/``: after a weights-only resume ESPnet's n-best pruning
    no longer knows their scores and removes them. Returns the directory, None when there is none."""
    files = [p for n, p in epoch_files(exp_dir).items() if n <= upto]
    if not files:
        return None
    keep = Path(exp_dir) / f"epochs_before_resume-{time.strftime('%Y%m%dT%H%M%S')}"
    keep.mkdir(exist_ok=True)
    for path in files:
        try:
            os.link(path, keep / path.name)
        except FileExistsError:
            pass
        except OSError:
            import shutil

            shutil.copy2(path, keep / path.name)
    return keep


def log_weights_only(state: ResumeState, kept: Path | None) -> None:
    """The error a weights-only resume logs: what is lost, and what the run does."""
    lines = [
        f"No intact {CHECKPOINT} or {PREVIOUS}: resuming from {state.source.name}, the model weights "
        f"after epoch {state.epoch} only; training goes on at epoch {state.epoch + 1}.",
        "Lost with the checkpoint: the optimizer's state (e.g. Adam's moments: they restart from zero), the "
        "schedulers' state (the learning-rate schedule restarts from its first step, warmup included), the "
        "gradient scaler's state, and the reporter's history (the scores of epochs 1.."
        f"{state.epoch}: best-model links, n-best averaging and early stopping see only the epochs trained from "
        "now on). The result differs from an uninterrupted run.",
    ]
    if kept is not None:
        lines.append(f"The earlier epoch files (which ESPnet's n-best pruning would now remove) are kept in {kept}.")
    logging.error(" ".join(lines))


def relink(link: Path, target: str) -> None:
    """Point the symbolic link ``link`` at ``target`` (a name in its directory), atomically."""
    if link.is_symlink() and os.readlink(link) == target:
        return
    tmp = link.with_name(f"{link.name}.tmp.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    os.replace(tmp, link)


def repair_epoch_outputs(exp_dir: Path, states: dict[str, Any], reporter, criteria: list) -> list[str]:
    """After resuming from a checkpoint of epoch N: what ESPnet writes right after ``checkpoint.pth``
    and a kill may have cut short. ``<N>epoch.pth`` (the model of the checkpoint), ``latest.pth``
    and the ``<phase>.<key>.best.pth`` links. Returns the names written."""
    exp_dir, epoch = Path(exp_dir), reporter.get_epoch()
    if epoch < 1:
        return []
    written = []
    epoch_file = exp_dir / f"{epoch}epoch.pth"
    if not epoch_file.exists():
        with replacing(epoch_file) as tmp:
            torch.save(states["model"], tmp)
        written.append(epoch_file.name)
    links = {"latest.pth": epoch}
    for phase, key, mode in criteria:
        if reporter.has(phase, key):
            links[f"{phase}.{key}.best.pth"] = reporter.get_best_epoch(phase, key, mode)
    for name, best in links.items():
        link, target = exp_dir / name, f"{best}epoch.pth"
        if (exp_dir / target).exists() and not (link.is_symlink() and os.readlink(link) == target):
            relink(link, target)
            written.append(name)
    if written:
        logging.warning(
            "Resumed after a kill that cut epoch %d's saving short: wrote %s again", epoch, ", ".join(written)
        )
    return written
