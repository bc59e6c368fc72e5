"""Save and load wav2vec 1.0 checkpoints: this project's format and fairseq's (``wav2vec_large.pt``).

:func:`load_wav2vec1` dispatches on what the file holds:

* ``{"format": "espnet_ext.wav2vec1", "version": 1, "config": ..., "model": ..., "predictor": ...}``:
  written by :func:`save_wav2vec1` (what the pre-training recipe's ``checkpoints/<N>updates.pth``
  and ``backbone.pth`` are);
* ``{"model": ..., "args": Namespace}`` or ``{"model": ..., "cfg": ...}`` with fairseq's
  ``wav2vec`` architecture: fairseq's ``Wav2VecModel`` state (no fairseq needed). Its
  ``wav2vec_predictions.project_to_steps`` weights become the prediction head.

Files are read with ``torch.load(weights_only=True)`` and the allow-list of
:func:`espnet_ext.wav2vec2.importers.torch_load`. A backbone weight missing, unexpected or of
the wrong shape raises a ValueError naming the keys.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, Union

import torch
from torch import Tensor

from espnet_ext.core.atomic import replacing
from espnet_ext.wav2vec1.config import Wav2Vec1Config
from espnet_ext.wav2vec1.model import Wav2Vec1Model, wav2vec1_model
from espnet_ext.wav2vec2.config import to_plain
from espnet_ext.wav2vec2.importers import map_state, torch_load

FORMAT = "espnet_ext.wav2vec1"
FORMAT_VERSION = 1
PathLike = Union[str, "os.PathLike[str]"]

#: fairseq ``Wav2VecModel`` name -> ours (the module layouts differ only inside the blocks).
FAIRSEQ_RULES = (
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.weight", r"feature_extractor.conv_layers.\1.conv.weight"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.(weight|bias)", r"feature_extractor.conv_layers.\1.norm.\2"),
    (r"feature_aggregator\.conv_layers\.(\d+)\.1\.(weight|bias)", r"feature_aggregator.conv_layers.\1.conv.\2"),
    (r"feature_aggregator\.conv_layers\.(\d+)\.3\.(weight|bias)", r"feature_aggregator.conv_layers.\1.norm.\2"),
    (r"feature_aggregator\.residual_proj\.(\d+)\.weight", r"feature_aggregator.residual_proj.\1.weight"),
)
FAIRSEQ_HEAD_RULES = ((r"wav2vec_predictions\.project_to_steps\.(weight|bias)", r"\1"),)
#: fairseq options whose non-default values this implementation does not have.
FAIRSEQ_UNSUPPORTED = {
    "vq_type": ("none", None),
    "aggregator": ("cnn", None),
    "project_features": ("none", None),
    "cross_sample_negatives": (0, None),
    "sample_distance": (None,),
}


class LoadedWav2Vec1(NamedTuple):
    """``(model, config, predictor_state, source_format)``; the model is in eval mode on the CPU.

    ``predictor_state``: the prediction head (``weight`` ``(K, D, C)``, ``bias`` ``(D,)``), empty if none.
    """

    model: Wav2Vec1Model
    config: Wav2Vec1Config
    predictor_state: dict[str, Tensor]
    source_format: str


def save_wav2vec1(model: Wav2Vec1Model, path: PathLike, predictor_state: Mapping[str, Tensor] | None = None) -> None:
    """Write the backbone (and optionally the prediction head) atomically; loads with ``weights_only=True``."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "predictor": {k: v.detach().cpu() for k, v in (predictor_state or {}).items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        torch.save(payload, tmp)


def _build(config: Wav2Vec1Config, state: Mapping[str, Tensor], unexpected: list, source: str) -> Wav2Vec1Model:
    model = wav2vec1_model(config)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = sorted(unexpected + [k for k in state if k not in expected])
    wrong = [
        f"{k} {tuple(v.shape)} (expected {tuple(expected[k].shape)})"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        raise ValueError(
            f"{source}: cannot map the checkpoint onto a wav2vec 1.0 model: missing keys {missing}; "
            f"unexpected keys {unexpected}; wrong shapes {wrong}"
        )
    model.load_state_dict(state)
    return model.eval()


def fairseq_config(stored: Any, source: str = "checkpoint") -> Wav2Vec1Config:
    """:class:`Wav2Vec1Config` from a fairseq ``args`` Namespace or ``cfg`` (its ``model`` section).

    Raises:
        ValueError: not fairseq's ``wav2vec`` architecture, or options not implemented here.
    """
    values = to_plain(stored)
    values = values.get("model", values) if isinstance(values.get("model"), Mapping) else values
    arch = values.get("arch", values.get("_name"))
    if arch != "wav2vec":
        raise ValueError(f"{source}: expected fairseq's 'wav2vec' architecture (wav2vec 1.0); found {arch!r}")
    bad = {k: values[k] for k, allowed in FAIRSEQ_UNSUPPORTED.items() if k in values and values[k] not in allowed}
    if bad:
        raise ValueError(f"{source}: fairseq options not implemented for wav2vec 1.0 here: {bad}")
    known = {f.name for f in dataclasses.fields(Wav2Vec1Config)}
    fields = {k: v for k, v in values.items() if k in known and v is not None}
    if isinstance(fields.get("offset"), str) and fields["offset"] != "auto":
        fields["offset"] = int(fields["offset"])
    return Wav2Vec1Config(**fields)


def _predictor_from_fairseq(head: Mapping[str, Tensor]) -> dict[str, Tensor]:
    if not head:
        return {}
    # ConvTranspose2d weight (C, D, 1, K) -> (K, D, C)
    return {"weight": head["weight"].squeeze(2).permute(2, 1, 0).contiguous(), "bias": head["bias"]}


def _load_fairseq(path: Path, checkpoint: Mapping[str, Any]) -> LoadedWav2Vec1:
    stored = checkpoint.get("cfg") if checkpoint.get("cfg") is not None else checkpoint.get("args")
    config = fairseq_config(stored, str(path))
    mapped = map_state(checkpoint["model"], FAIRSEQ_RULES, (), FAIRSEQ_HEAD_RULES)
    model = _build(config, mapped.backbone, list(mapped.unexpected), str(path))
    return LoadedWav2Vec1(model, config, _predictor_from_fairseq(mapped.head), "fairseq")


def _load_own(path: Path, checkpoint: Mapping[str, Any]) -> LoadedWav2Vec1:
    if checkpoint.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: {FORMAT} checkpoint: expected version {FORMAT_VERSION}; found {checkpoint.get('version')!r}"
        )
    config = Wav2Vec1Config.from_dict(checkpoint["config"])
    model = _build(config, dict(checkpoint["model"]), [], str(path))
    return LoadedWav2Vec1(model, config, dict(checkpoint.get("predictor") or {}), "espnet_ext")


def _read(path: PathLike, allow_unsafe: bool) -> Mapping[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such wav2vec 1.0 checkpoint")
    checkpoint = torch_load(path, allow_unsafe=allow_unsafe)
    if isinstance(checkpoint, Mapping) and (
        checkpoint.get("format") == FORMAT or ("model" in checkpoint and ("args" in checkpoint or "cfg" in checkpoint))
    ):
        return checkpoint
    found = sorted(map(str, checkpoint)) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
    raise ValueError(
        f"{path}: expected a {FORMAT} checkpoint (key 'format') or a fairseq wav2vec checkpoint "
        f"(keys 'model' and 'args' or 'cfg'); found {found}"
    )


def load_wav2vec1(path: PathLike, *, allow_unsafe: bool = False) -> LoadedWav2Vec1:
    """Load a wav2vec 1.0 model from :func:`save_wav2vec1`'s format or a fairseq checkpoint.

    Args:
        allow_unsafe: ``torch.load(weights_only=False)`` (runs pickled code): trusted files only.
    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: another kind of file, an unsupported fairseq option, or weights that do not map.
    """
    checkpoint = _read(path, allow_unsafe)
    if checkpoint.get("format") == FORMAT:
        return _load_own(Path(path), checkpoint)
    return _load_fairseq(Path(path), checkpoint)


def load_config(path: PathLike, *, allow_unsafe: bool = False) -> Wav2Vec1Config:
    """The model config of a checkpoint :func:`load_wav2vec1` reads (no model is built)."""
    checkpoint = _read(path, allow_unsafe)
    if checkpoint.get("format") == FORMAT:
        return Wav2Vec1Config.from_dict(checkpoint["config"])
    stored = checkpoint.get("cfg") if checkpoint.get("cfg") is not None else checkpoint.get("args")
    return fairseq_config(stored, str(path))
