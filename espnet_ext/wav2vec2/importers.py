"""Load wav2vec 2.0 backbones from fairseq, Hugging Face and this project's checkpoints.

:func:`load_checkpoint` dispatches on what the path is:

* a **directory** with ``config.json``: a Hugging Face ``Wav2Vec2Model`` (or ``Wav2Vec2ForCTC`` /
  ``Wav2Vec2ForPreTraining``, whose keys start with ``wav2vec2.``), weights in
  ``model.safetensors`` or ``pytorch_model.bin`` (sharded ``*.index.json`` too);
* a **file** holding ``{"format": "espnet_ext.wav2vec2", "config": ..., "model": ...}``: written by
  :func:`save_backbone`;
* a **file** holding ``{"model": ..., "cfg": ...}`` or ``{"model": ..., "args": ...}``: a fairseq
  wav2vec 2.0 checkpoint, pre-trained (``model.*`` keys as fairseq's ``Wav2Vec2Model``) or CTC
  fine-tuned (``w2v_encoder.w2v_model.*``, config in ``cfg.model.w2v_args`` / ``args.w2v_args``).
  fairseq is not needed.

Files are read with ``torch.load(weights_only=True)``, allowing only the globals listed in
:func:`safe_globals` (what fairseq checkpoints hold besides tensors: ``argparse.Namespace``,
omegaconf's containers, numpy scalars in the training statistics). ``allow_unsafe=True`` uses
``weights_only=False``, which runs code pickled in the file: only for files you trust. A truncated
or corrupt file raises a ValueError naming it (:func:`torch_load`, which every reader of torch
files in the project uses).

Weights outside the backbone are returned, not dropped: the pre-training heads (fairseq names:
``quantizer.vars``, ``quantizer.weight_proj.*``, ``project_q.*``, ``final_proj.*``,
``target_glu.*``) in :attr:`CheckpointInfo.pretraining_state`, and a CTC output layer in
:attr:`CheckpointInfo.head_state` (``weight``, ``bias``). Anything else, or a backbone weight
missing or of the wrong shape, raises a ValueError naming the keys.

Whether the backbone was pre-trained on normalised waveforms (fairseq ``task.normalize``: zero
mean, unit variance per utterance) is :attr:`CheckpointInfo.normalize`: this project's files
record it (:func:`save_backbone` ``normalize``), fairseq's in ``cfg.task.normalize`` /
``args.normalize`` (for a fine-tuned one, those of the embedded pre-training config first);
None where the checkpoint does not say (older files of this project, Hugging Face directories,
whose ``do_normalize`` is the feature extractor's setting and true even for BASE).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import logging
import os
import pickle
import re
import typing
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Union

import torch
from torch import Tensor

from espnet_ext.core.atomic import replacing
from espnet_ext.wav2vec2.config import Wav2Vec2Config, to_plain
from espnet_ext.wav2vec2.model import Wav2Vec2Model, wav2vec2_model

logger = logging.getLogger(__name__)

#: ``format`` value of :func:`save_backbone` files.
FORMAT = "espnet_ext.wav2vec2"
FORMAT_VERSION = 1
#: backbone parameters a checkpoint may lack (left at their initialisation, listed in ``info.initialized``):
#: Hugging Face models built with ``mask_time_prob == mask_feature_prob == 0`` have no ``masked_spec_embed``.
OPTIONAL_KEYS = ("mask_emb",)

PathLike = Union[str, "os.PathLike[str]"]
Rules = Sequence[tuple[str, str]]


class CheckpointInfo(NamedTuple):
    """What :func:`load_checkpoint` learned besides the backbone.

    Attributes:
        source_format: ``"fairseq"``, ``"huggingface"`` or ``"espnet_ext"``.
        path: the file or directory read.
        fine_tuned: a CTC fine-tuned checkpoint (fairseq ``w2v_encoder``, Hugging Face ``ForCTC``).
        pretraining_state: pre-training head weights under fairseq's names (empty if none).
        head_state: the CTC output layer, ``{"weight": (V, C), "bias": (V,)}`` (empty if none).
        initialized: backbone parameters absent from the checkpoint, left at their initialisation.
        raw_config: the config as stored, as plain dicts/lists (fairseq ``cfg``/``args``,
            ``config.json``, or :meth:`Wav2Vec2Config.to_dict`).
        context: the options of a downsampling context network pre-trained on top of the
            backbone (its weights are ``context_network.*`` in ``pretraining_state``); None if none.
        normalize: pre-trained on normalised waveforms (fairseq ``task.normalize``); None: not
            recorded (see the module docstring).
    """

    source_format: str
    path: str
    fine_tuned: bool
    pretraining_state: dict[str, Tensor]
    head_state: dict[str, Tensor]
    initialized: tuple[str, ...]
    raw_config: dict[str, Any]
    context: dict[str, Any] | None = None
    normalize: bool | None = None


class LoadedCheckpoint(NamedTuple):
    """``(model, config, info)``; the model is in eval mode on the CPU."""

    model: Wav2Vec2Model
    config: Wav2Vec2Config
    info: CheckpointInfo


class _Mapped(NamedTuple):
    backbone: dict[str, Tensor]
    pretraining: dict[str, Tensor]
    head: dict[str, Tensor]
    unexpected: list[str]


# ---------------------------------------------------------------------------- safe loading
def safe_globals() -> list[Any]:
    """Globals fairseq checkpoints hold besides tensors and builtin containers.

    ``argparse.Namespace`` (``args`` of older checkpoints, ``w2v_args`` of fine-tuned ones);
    omegaconf's ``DictConfig``/``ListConfig``, their metadata and value nodes, and the types
    their metadata names (``typing.Any``, ``dict``, ``list``, ``int``, ...; ``cfg`` of newer
    checkpoints); ``collections.defaultdict``/``OrderedDict``; numpy scalars and arrays with
    their dtype (training statistics in ``extra_state``), under numpy 1's and 2's module names.
    """
    allowed: list[Any] = [
        argparse.Namespace,
        typing.Any,
        collections.defaultdict,
        collections.OrderedDict,
        dict,
        list,
        int,
        float,
        str,
        bool,
    ]
    try:
        from omegaconf import DictConfig, ListConfig, base, nodes

        allowed += [
            DictConfig,
            ListConfig,
            base.ContainerMetadata,
            base.Metadata,
            nodes.AnyNode,
            nodes.StringNode,
            nodes.IntegerNode,
            nodes.FloatNode,
            nodes.BooleanNode,
        ]
    except ImportError:  # then no checkpoint with omegaconf objects can be read anyway
        pass
    allowed += _numpy_globals()
    return allowed


def _numpy_globals() -> list[Any]:
    try:
        import numpy as np
    except ImportError:
        return []
    core = getattr(np, "_core", None) or np.core
    allowed: list[Any] = [np.dtype, np.ndarray]
    for name in ("scalar", "_reconstruct"):
        fn = getattr(core.multiarray, name)
        allowed += [(fn, f"numpy.core.multiarray.{name}"), (fn, f"numpy._core.multiarray.{name}")]
    allowed += [type(np.dtype(code)) for code in "?bhilqBHILQefdgFDG"]
    return allowed


def _refused_globals(path: Path, error: Exception) -> list[str]:
    allowed = {
        g[1] if isinstance(g, tuple) else f"{g.__module__}.{getattr(g, '__qualname__', g)}" for g in safe_globals()
    }
    try:
        refused = [g for g in torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) if g not in allowed]
    except Exception:  # not a zip checkpoint, or an older torch
        refused = []
    return refused or re.findall(r"GLOBAL (\S+) was not an allowed global", str(error))


class UnsafeCheckpointError(ValueError):
    """A checkpoint holds globals outside :func:`safe_globals` (``allow_unsafe=True`` would load it)."""


@contextlib.contextmanager
def reading_checkpoint(path: PathLike, what: str = "PyTorch checkpoint") -> Iterator[None]:
    """Turn what a reader raises on a truncated or corrupt file into a ValueError naming ``path``.

    Torch raises RuntimeError ("PytorchStreamReader failed reading zip archive"), EOFError,
    KeyError, IndexError ... without the file's name. A missing file (OSError) and
    :class:`UnsafeCheckpointError` pass unchanged.
    """
    try:
        yield
    except (OSError, MemoryError, UnsafeCheckpointError):
        raise
    except Exception as error:
        raise ValueError(
            f"{path}: not a readable {what} (truncated or corrupt?): {type(error).__name__}: {error}"
        ) from error


def torch_load(
    path: PathLike, *, allow_unsafe: bool = False, mmap: bool = False, extra_globals: Sequence[Any] = ()
) -> Any:
    """``torch.load`` on the CPU with ``weights_only=True`` and :func:`safe_globals` (+ ``extra_globals``).

    The one place the project reads torch files (backbones, epoch checkpoints, ESPnet's
    ``checkpoint.pth``). ``mmap``: memory-map the tensors of a zip-format file (torch's legacy
    format is read whole).

    Raises:
        UnsafeCheckpointError (a ValueError): the file needs a global outside the list; names it and the opt-in.
        ValueError: the file is not a readable torch file (truncated, corrupt); names it and torch's error.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    mmap = mmap and zipfile.is_zipfile(path)
    with reading_checkpoint(path):
        if allow_unsafe:
            logger.warning(
                "Loading %s with allow_unsafe=True (torch.load weights_only=False): this runs any code "
                "pickled in the file; do it only for files you trust.",
                path,
            )
            return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
        try:
            with torch.serialization.safe_globals(safe_globals() + list(extra_globals)):
                return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as error:  # a refused global, or garbage ("Unsupported operand")
            refused = _refused_globals(path, error)
            if not refused and not any(word in str(error) for word in ("Unsupported global", "allowlisted")):
                raise
            raise UnsafeCheckpointError(
                f"{path}: refused to unpickle global(s) {', '.join(refused) or '(unknown)'}: loading runs with "
                "torch.load(weights_only=True), which only allows tensors, containers and the globals fairseq "
                "checkpoints hold. If you trust this file, pass allow_unsafe=True (weights_only=False; this can "
                "run arbitrary code)."
            ) from error


# ---------------------------------------------------------------------------- key mapping
_LAYER = r"encoder\.layers\.(\d+)\."
_POS = "encoder.pos_conv.conv."
#: fairseq ``Wav2Vec2Model`` name -> ours.
FAIRSEQ_RULES: Rules = (
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.(?:1\.)?(weight|bias)", r"feature_extractor.conv_layers.\1.norm.\2"),
    (r"layer_norm\.(weight|bias)", r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_projection.projection.\1"),
    (r"mask_emb", "mask_emb"),
    (r"encoder\.pos_conv\.0\.bias", _POS + "bias"),
    (r"encoder\.pos_conv\.0\.weight_g", _POS + "parametrizations.weight.original0"),
    (r"encoder\.pos_conv\.0\.weight_v", _POS + "parametrizations.weight.original1"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (_LAYER + r"self_attn\.(q|k|v|out)_proj\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
    (_LAYER + r"self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.attn_layer_norm.\2"),
    (_LAYER + r"(fc1|fc2)\.(weight|bias)", r"encoder.layers.\1.feed_forward.\2.\3"),
    (_LAYER + r"final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
)
FAIRSEQ_PRETRAINING_RULES: Rules = ((r"((?:quantizer|project_q|final_proj|target_glu)\..+)", r"\1"),)
FAIRSEQ_HEAD_RULES: Rules = ((r"w2v_encoder\.proj\.(weight|bias)", r"\1"),)

#: Hugging Face ``Wav2Vec2Model`` name -> ours.
HUGGINGFACE_RULES: Rules = (
    (r"feature_extractor\.conv_layers\.(\d+)\.conv\.(weight|bias)", r"feature_extractor.conv_layers.\1.conv.\2"),
    (r"feature_extractor\.conv_layers\.(\d+)\.layer_norm\.(weight|bias)", r"feature_extractor.conv_layers.\1.norm.\2"),
    (r"feature_projection\.(layer_norm|projection)\.(weight|bias)", r"feature_projection.\1.\2"),
    (r"masked_spec_embed", "mask_emb"),
    (r"encoder\.pos_conv_embed\.conv\.bias", _POS + "bias"),
    (
        r"encoder\.pos_conv_embed\.conv\.(?:weight_g|parametrizations\.weight\.original0)",
        _POS + "parametrizations.weight.original0",
    ),
    (
        r"encoder\.pos_conv_embed\.conv\.(?:weight_v|parametrizations\.weight\.original1)",
        _POS + "parametrizations.weight.original1",
    ),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
    (_LAYER + r"attention\.(q|k|v|out)_proj\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
    (_LAYER + r"layer_norm\.(weight|bias)", r"encoder.layers.\1.attn_layer_norm.\2"),
    (_LAYER + r"feed_forward\.intermediate_dense\.(weight|bias)", r"encoder.layers.\1.feed_forward.fc1.\2"),
    (_LAYER + r"feed_forward\.output_dense\.(weight|bias)", r"encoder.layers.\1.feed_forward.fc2.\2"),
    (_LAYER + r"final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
)
HUGGINGFACE_PRETRAINING_RULES: Rules = (
    (r"quantizer\.codevectors", "quantizer.vars"),
    (r"quantizer\.weight_proj\.(weight|bias)", r"quantizer.weight_proj.\1"),
    (r"project_q\.(weight|bias)", r"project_q.\1"),
    (r"project_hid\.(weight|bias)", r"final_proj.\1"),
)
HUGGINGFACE_HEAD_RULES: Rules = ((r"lm_head\.(weight|bias)", r"\1"),)


def _rename(name: str, rules: Rules) -> str | None:
    for pattern, replacement in rules:
        match = re.fullmatch(pattern, name)
        if match:
            return match.expand(replacement)
    return None


def map_state(
    state: Mapping[str, Tensor], backbone: Rules, pretraining: Rules, head: Rules, backbone_prefix: str = ""
) -> _Mapped:
    """Sort ``state`` into backbone weights (names after ``backbone_prefix`` renamed by ``backbone``),
    pre-training heads (``pretraining``, on the name with or without the prefix), the CTC head
    (``head``, on the full name), and unexpected names."""
    out = _Mapped({}, {}, {}, [])
    for name, tensor in state.items():
        inner = name[len(backbone_prefix) :] if name.startswith(backbone_prefix) else name
        if name.startswith(backbone_prefix) and (new := _rename(inner, backbone)) is not None:
            out.backbone[new] = tensor
        elif (new := _rename(inner, pretraining)) is not None:
            out.pretraining[new] = tensor
        elif (new := _rename(name, head)) is not None:
            out.head[new] = tensor
        else:
            out.unexpected.append(name)
    return out


def _build(config: Wav2Vec2Config, mapped: _Mapped, source: str) -> tuple[Wav2Vec2Model, tuple[str, ...]]:
    """Build the backbone and load ``mapped.backbone`` into it, strictly.

    Raises:
        ValueError: naming missing keys, unexpected keys, and keys whose shapes differ.
    """
    model = wav2vec2_model(config)
    expected = model.state_dict()
    missing = [k for k in expected if k not in mapped.backbone and k not in OPTIONAL_KEYS]
    unexpected = sorted(mapped.unexpected + [k for k in mapped.backbone if k not in expected])
    wrong_shape = [
        f"{k} {tuple(v.shape)} (expected {tuple(expected[k].shape)})"
        for k, v in mapped.backbone.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or wrong_shape:
        raise ValueError(
            f"{source}: cannot map the checkpoint onto a wav2vec 2.0 backbone "
            f"({config.encoder_layers} layers x {config.encoder_embed_dim}): "
            f"missing keys {missing}; unexpected keys {unexpected}; wrong shapes {wrong_shape}"
        )
    model.load_state_dict(mapped.backbone, strict=False)
    initialized = tuple(k for k in OPTIONAL_KEYS if k not in mapped.backbone)
    return model.eval(), initialized


# ---------------------------------------------------------------------------- formats
def fairseq_normalize(stored: Any) -> bool | None:
    """fairseq's ``task.normalize`` from a checkpoint's ``cfg`` (or ``args``): for a fine-tuned
    checkpoint, its embedded pre-training config's (``model.w2v_args`` / ``w2v_args``) first,
    then the fine-tuning task's; None where neither says."""
    plain = to_plain(stored)
    if not isinstance(plain, dict):
        return None
    model = plain.get("model") if isinstance(plain.get("model"), dict) else {}
    candidates = [model.get("w2v_args"), plain.get("w2v_args"), plain]
    for cfg in candidates:
        if not isinstance(cfg, dict):
            continue
        task = cfg.get("task") if isinstance(cfg.get("task"), dict) else {}
        for value in (task.get("normalize"), cfg.get("normalize")):
            if isinstance(value, bool):
                return value
    return None


def _load_fairseq(path: Path, checkpoint: Mapping[str, Any]) -> LoadedCheckpoint:
    stored = checkpoint.get("cfg") if checkpoint.get("cfg") is not None else checkpoint.get("args")
    if stored is None:
        raise ValueError(f"{path}: fairseq checkpoint: expected a config in 'cfg' or 'args'; found neither")
    config = Wav2Vec2Config.from_fairseq(stored)
    state = checkpoint["model"]
    fine_tuned = any(k.startswith("w2v_encoder.") for k in state)
    prefix = "w2v_encoder.w2v_model." if fine_tuned else ""
    mapped = map_state(state, FAIRSEQ_RULES, FAIRSEQ_PRETRAINING_RULES, FAIRSEQ_HEAD_RULES, prefix)
    model, initialized = _build(config, mapped, str(path))
    info = CheckpointInfo(
        "fairseq",
        str(path),
        fine_tuned,
        mapped.pretraining,
        mapped.head,
        initialized,
        to_plain(stored),
        normalize=fairseq_normalize(stored),
    )
    return LoadedCheckpoint(model, config, info)


def _load_own(path: Path, checkpoint: Mapping[str, Any]) -> LoadedCheckpoint:
    version = checkpoint.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: {FORMAT} checkpoint: expected version {FORMAT_VERSION}; found {version!r}")
    if not isinstance(checkpoint.get("config"), Mapping) or not isinstance(checkpoint.get("model"), Mapping):
        raise ValueError(
            f"{path}: {FORMAT} checkpoint: expected 'config' and 'model' mappings; found keys "
            f"{sorted(map(str, checkpoint))}"
        )
    config = Wav2Vec2Config.from_dict(checkpoint["config"])
    mapped = _Mapped(dict(checkpoint["model"]), dict(checkpoint.get("pretraining_state") or {}), {}, [])
    model, initialized = _build(config, mapped, str(path))
    context = checkpoint.get("context")
    normalize = checkpoint.get("normalize")
    info = CheckpointInfo(
        "espnet_ext",
        str(path),
        False,
        mapped.pretraining,
        {},
        initialized,
        dict(checkpoint["config"]),
        dict(context) if context is not None else None,
        normalize=bool(normalize) if normalize is not None else None,
    )
    return LoadedCheckpoint(model, config, info)


def _huggingface_weights(directory: Path, allow_unsafe: bool) -> dict[str, Tensor]:
    for name in (
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
    ):
        if (directory / name).is_file():
            break
    else:
        raise ValueError(
            f"{directory}: Hugging Face model: expected model.safetensors or pytorch_model.bin "
            f"(or a sharded *.index.json); found {sorted(p.name for p in directory.iterdir())}"
        )
    files = [directory / name]
    if name.endswith(".index.json"):
        weight_map = json.loads(files[0].read_text())["weight_map"]
        files = [directory / shard for shard in sorted(set(weight_map.values()))]
    state: dict[str, Tensor] = {}
    for file in files:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            with reading_checkpoint(file, "safetensors file"):
                state.update(load_file(str(file), device="cpu"))
        else:
            state.update(torch_load(file, allow_unsafe=allow_unsafe))
    return state


def _load_huggingface(directory: Path, allow_unsafe: bool) -> LoadedCheckpoint:
    raw = json.loads((directory / "config.json").read_text())
    config = Wav2Vec2Config.from_huggingface(raw)
    state = _huggingface_weights(directory, allow_unsafe)
    prefix = "wav2vec2." if any(k.startswith("wav2vec2.") for k in state) else ""
    mapped = map_state(state, HUGGINGFACE_RULES, HUGGINGFACE_PRETRAINING_RULES, HUGGINGFACE_HEAD_RULES, prefix)
    model, initialized = _build(config, mapped, str(directory))
    info = CheckpointInfo(
        "huggingface", str(directory), bool(mapped.head), mapped.pretraining, mapped.head, initialized, raw
    )
    return LoadedCheckpoint(model, config, info)


def load_checkpoint(path: PathLike, *, allow_unsafe: bool = False) -> LoadedCheckpoint:
    """Load a wav2vec 2.0 backbone from a fairseq ``.pt``, a Hugging Face directory, or :func:`save_backbone`.

    Args:
        path: a file (fairseq or this project's) or a directory with ``config.json``.
        allow_unsafe: read files with ``torch.load(weights_only=False)`` (runs pickled code; logs
            a warning). Only for files you trust that need globals outside :func:`safe_globals`.
    Returns:
        ``(model, config, info)``: see :class:`LoadedCheckpoint` and :class:`CheckpointInfo`.
    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: an unrecognised file, a refused global, an unsupported architecture, or
            weights that do not map onto the backbone (names the keys).
    """
    path = Path(path)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"{path}: expected a Hugging Face model directory with config.json; found none")
        return _load_huggingface(path, allow_unsafe)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file or directory")
    checkpoint = torch_load(path, allow_unsafe=allow_unsafe)
    if isinstance(checkpoint, Mapping) and checkpoint.get("format") == FORMAT:
        return _load_own(path, checkpoint)
    if isinstance(checkpoint, Mapping) and "model" in checkpoint and ("cfg" in checkpoint or "args" in checkpoint):
        return _load_fairseq(path, checkpoint)
    found = sorted(map(str, checkpoint)) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
    raise ValueError(
        f"{path}: expected a fairseq checkpoint (keys 'model' and 'cfg' or 'args'), a "
        f"{FORMAT} checkpoint (key 'format'), or a Hugging Face directory; found {found}"
    )


def save_backbone(
    model: Wav2Vec2Model,
    config: Wav2Vec2Config,
    path: PathLike,
    *,
    pretraining_state: Mapping[str, Tensor] | None = None,
    context: Mapping[str, Any] | None = None,
    num_updates: int | None = None,
    normalize: bool | None = None,
) -> None:
    """Write ``{"format": "espnet_ext.wav2vec2", "version": 1, "config": config.to_dict(), "model": state_dict}``.

    Args:
        pretraining_state: optional pre-training head weights under fairseq's names
            (``quantizer.*``, ``project_q.*``, ``final_proj.*``), and a downsampling context
            network's ``context_network.*``; returned by :func:`load_checkpoint` as
            ``info.pretraining_state``.
        context: the keyword arguments that network was built with (plain values; stored as
            ``"context"``, returned as ``info.context``; the ``w2v2_context`` encoder's ``path``).
        num_updates: pre-training optimizer updates done, stored as ``"num_updates"`` when given
            (the update axis of :mod:`espnet_ext.report.checkpoints`).
        normalize: whether pre-training normalised its waveforms (fairseq ``task.normalize``),
            stored as ``"normalize"`` when given; returned as ``info.normalize`` (the ``wav2vec2``
            frontend follows it and refuses a fine-tuning config that disagrees).
    The file loads with ``torch.load(weights_only=True)``; it is written atomically.
    """
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": config.to_dict(),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "pretraining_state": {k: v.detach().cpu() for k, v in (pretraining_state or {}).items()},
    }
    if context is not None:
        payload["context"] = dict(context)
    if num_updates is not None:
        payload["num_updates"] = int(num_updates)
    if normalize is not None:
        payload["normalize"] = bool(normalize)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        torch.save(payload, tmp)
