"""Average model checkpoints: the last N epochs (Mandarin-Wav2Vec2's choice) or given files.

Floating-point tensors are averaged in float64 and cast back to their dtype. Integer and
boolean tensors (e.g. BatchNorm's ``num_batches_tracked``) are not averaged and never
summed: the value from the most recent checkpoint is kept, and a differing value is logged.

Epoch checkpoints are ESPnet's ``exp/<tag>/{epoch}epoch.pth`` (model state dicts); train
with ``--keep_last_epochs N`` (see :mod:`espnet_ext.espnet.trainer`) so the last N are kept.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from espnet_ext.core.atomic import replacing
from espnet_ext.wav2vec2.importers import torch_load

_EPOCH_FILE = re.compile(r"^(\d+)epoch\.pth$")
_LAST_N = re.compile(r"^last(\d+)\.ave\.pth$")


def epoch_checkpoints(exp_dir: Path) -> dict[int, Path]:
    """``{epoch: path}`` of the ``{epoch}epoch.pth`` files in ``exp_dir``."""
    found = {}
    for path in Path(exp_dir).iterdir():
        match = _EPOCH_FILE.match(path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def last_n_checkpoints(exp_dir: Path, n: int) -> list[Path]:
    """The ``n`` most recent epoch checkpoints, oldest first.

    Raises ValueError when fewer than ``n`` exist or when they are not the ``n`` consecutive
    last epochs (an epoch file was deleted, e.g. training ran without --keep_last_epochs).
    """
    if n < 1:
        raise ValueError(f"the number of checkpoints to average must be >= 1, got {n}")
    found = epoch_checkpoints(exp_dir)
    if not found:
        raise ValueError(f"{exp_dir}: no {{epoch}}epoch.pth checkpoint found")
    last = max(found)
    wanted = list(range(last - n + 1, last + 1))
    missing = [e for e in wanted if e not in found]
    if wanted[0] < 1 or missing:
        raise ValueError(
            f"{exp_dir}: averaging the last {n} epochs needs {wanted[0]}..{last}epoch.pth; "
            f"found epochs {sorted(found)}; train with --keep_last_epochs {n}"
        )
    return [found[e] for e in wanted]


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    state = torch_load(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a model state dict (name -> tensor)")
    return state


def average_state_dicts(paths: Sequence[Path]) -> dict[str, torch.Tensor]:
    """Average the state dicts stored in ``paths`` (see the module docstring)."""
    if not paths:
        raise ValueError("no checkpoint to average")
    sums: dict[str, torch.Tensor] = {}
    dtypes: dict[str, torch.dtype] = {}
    latest: dict[str, torch.Tensor] = {}  # integer/bool tensors: the most recent value
    reference_keys = None
    for path in paths:
        state = _load_state(Path(path))
        if reference_keys is None:
            reference_keys = list(state)
        elif set(state) != set(reference_keys):
            diff = sorted(set(state) ^ set(reference_keys))
            raise ValueError(f"{path}: parameters differ from {paths[0]}: {diff[:10]}")
        for key, value in state.items():
            if value.is_floating_point():
                dtypes[key] = value.dtype
                acc = value.to(torch.float64)
                sums[key] = acc if key not in sums else sums[key] + acc
            else:
                if key in latest and not torch.equal(latest[key], value):
                    logging.debug("%s differs between checkpoints; keeping the latest", key)
                latest[key] = value.clone()
    averaged = {key: (total / len(paths)).to(dtypes[key]) for key, total in sums.items()}
    return {key: averaged[key] if key in averaged else latest[key] for key in reference_keys}


def average_last(exp_dir: Path, n: int, out: Path = None) -> Path:
    """Write the average of the last ``n`` epochs to ``out`` (default ``last{n}.ave.pth``)."""
    exp_dir = Path(exp_dir)
    paths = last_n_checkpoints(exp_dir, n)
    out = Path(out) if out is not None else exp_dir / f"last{n}.ave.pth"
    logging.info("Averaging %d checkpoints: %s", n, ", ".join(p.name for p in paths))
    return save_average(paths, out)


def save_average(paths: Sequence[Path], out: Path) -> Path:
    """Write the average of the state dicts in ``paths`` to ``out``, atomically; returns ``out``."""
    out = Path(out)
    averaged = average_state_dicts(paths)
    with replacing(out) as tmp:
        torch.save(averaged, tmp)
    return out


# ESPnet's default --best_model_criterion (espnet2.tasks.abs_task), when a config sets none
_ESPNET_DEFAULT_CRITERIA = [
    ["train", "loss", "min"],
    ["valid", "loss", "min"],
    ["train", "acc", "max"],
    ["valid", "acc", "max"],
]


def best_average_name(config: dict) -> str:
    """The ESPnet best-N average to decode for a training config: ``<phase>.<metric>.ave.pth``.

    ESPnet's trainer writes one such average per ``best_model_criterion`` entry. ESPnet's
    recipes decode ``valid.acc.ave.pth``, which exists only when the criteria include
    ``valid acc`` (attention models); a CTC-only config that judges by ``valid loss`` gets
    ``valid.loss.ave.pth``. So: ``valid.acc`` when listed, else the first ``valid`` criterion,
    else the first criterion.
    """
    criteria = config.get("best_model_criterion") or _ESPNET_DEFAULT_CRITERIA
    criteria = [list(c) for c in criteria]
    for phase, metric, _ in criteria:
        if (phase, metric) == ("valid", "acc"):
            return "valid.acc.ave.pth"
    valid = [c for c in criteria if c[0] == "valid"]
    phase, metric, _ = (valid or criteria)[0]
    return f"{phase}.{metric}.ave.pth"


def parse_last_n(model_name: str):
    """``"last10.ave.pth"`` -> 10; None for other names."""
    match = _LAST_N.match(Path(model_name).name)
    return int(match.group(1)) if match else None
