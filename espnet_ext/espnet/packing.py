"""Pack a trained model into a zip that loads on a machine without the training's files (stage 14).

The zip has ESPnet's layout (``espnet2.bin.pack``; ``ModelDownloader().unpack_local_file(zip)``
reads it): ``meta.yaml`` naming the training configs and model files, those files, and the
``--option`` files (feature statistics, BPE model, RESULTS.md), each under its path relative to
the working directory (files outside it under their absolute path without the leading ``/``).
What this module adds to ESPnet's packing:

* in each training config, a part built from a pre-training checkpoint (``frontend_conf.path``,
  ``encoder_conf.path``) is built from the architecture the training recorded instead
  (:mod:`espnet_ext.espnet.portable`), read from the checkpoint when the training predates the
  record and the checkpoint is still there (:func:`recorded_parts`); paths to packed files
  become their names in the zip, which unpacking turns into the unpacked files
  (:func:`relinked_config`);
* a config that still names a file of the training machine that inference reads (an absolute
  path, or an existing relative one not in the zip, outside :data:`TRAINING_ONLY_KEYS`) is
  refused with a ValueError naming the key;
* the packed config is checked: the model it builds takes every tensor of the model file,
  names and shapes (ESPnet's own loading is not strict);
* the zip is written beside its final name and renamed (:func:`espnet_ext.core.atomic.replacing`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Union

import yaml

from espnet_ext.core.atomic import replacing
from espnet_ext.espnet.portable import RECORD_KEY, file_parts, portable_config, portable_parts

PathLike = Union[str, "os.PathLike[str]"]

#: config keys that only training reads (data, shapes, output and initialisation); their paths may stay
TRAINING_ONLY_KEYS = frozenset(
    {
        "output_dir",
        "config",
        "train_data_path_and_name_and_type",
        "valid_data_path_and_name_and_type",
        "train_shape_file",
        "valid_shape_file",
        "multiple_iterator",
        "init_param",
        "token_list",
    }
)


def _task_for(yaml_key: str):
    """This project's ESPnet task of a ``--<task>_train_config`` option, or None."""
    from espnet_ext.espnet.tasks import ASRTask, CLSTask, SSLTask

    return {"asr_train_config": ASRTask, "classification_train_config": CLSTask, "ssl_train_config": SSLTask}.get(
        yaml_key
    )


def model_file_key(yaml_key: str) -> str:
    """The model file option paired with a training config option (``asr_train_config`` ->
    ``asr_model_file``, ``train_config`` -> ``model_file``)."""
    return yaml_key[: -len("train_config")] + "model_file"


def archive_name(path: PathLike) -> str:
    """A file's name in the zip: its real path relative to the working directory, else its real
    absolute path without the leading ``/``."""
    real = Path(os.path.realpath(path))
    try:
        return real.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return real.relative_to(real.anchor).as_posix()


# ---------------------------------------------------------------------------- the packed config
def recorded_parts(config: Mapping[str, Any], source: str, task=None) -> dict[str, Any]:
    """The portable options of ``config``'s parts built from files: the training's record, else
    (a training that predates it) read by building the model from ``config`` with ``task``.

    Raises:
        ValueError: a part has no record and its file is gone (or no task can build it).
    """
    recorded = dict(config.get(RECORD_KEY) or {})
    missing = [(part, path) for part, path in file_parts(config) if part.conf_key not in recorded]
    if not missing:
        return recorded
    gone = [path for _, path in missing if not os.path.exists(path)]
    if gone or task is None:
        keys = ", ".join(f"{part.conf_key}.path={path!r}" for part, path in missing)
        raise ValueError(
            f"{source}: the model is built from {keys}, which the packed model cannot carry; "
            f"expected the architecture the training records ({RECORD_KEY}), or the file"
            f"{' (not found: ' + ', '.join(gone) + ')' if gone else ''} to read it from; "
            "train with this version of espnet_ext, or put the file back and pack again"
        )
    logging.info(
        "%s records no %s: reading the architecture from %s", source, RECORD_KEY, ", ".join(path for _, path in missing)
    )
    model = task.build_model(argparse.Namespace(**config))
    return {**recorded, **portable_parts(model)}


def _relink(value: Any, members: Mapping[str, str]) -> Any:
    """``value`` with every string that names a packed file (by real path) replaced by its name in the zip."""
    if isinstance(value, Mapping):
        return {key: _relink(item, members) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_relink(item, members) for item in value]
    if isinstance(value, str) and value not in members.values() and os.path.exists(value):
        return members.get(os.path.realpath(value), value)
    return value


def foreign_paths(value: Any, names: Iterable[str], where: str = "") -> list[tuple[str, str]]:
    """``(key, value)`` of the strings in ``value`` that name a file of this machine and are not
    one of ``names`` (the zip's): absolute paths, and relative paths with a ``/`` that exist."""
    names = set(names)
    if isinstance(value, Mapping):
        return [found for key, item in value.items() for found in foreign_paths(item, names, f"{where}{key}.")]
    if isinstance(value, (list, tuple)):
        return [found for i, item in enumerate(value) for found in foreign_paths(item, names, f"{where}{i}.")]
    if (
        isinstance(value, str)
        and value not in names
        and (os.path.isabs(value) or ("/" in value and os.path.exists(value)))
    ):
        return [(where.rstrip("."), value)]
    return []


def relinked_config(config: Mapping[str, Any], members: Mapping[str, str], source: str) -> dict[str, Any]:
    """``config`` with paths to packed files (``members``: real path -> name in the zip) replaced by
    their names in the zip.

    Raises:
        ValueError: a key that inference reads names a file of this machine that is not packed
            (names the key and the path).
    """
    packed = _relink(config, members)
    inference = {key: value for key, value in packed.items() if key not in TRAINING_ONLY_KEYS}
    foreign = foreign_paths(inference, members.values())
    if foreign:
        listed = "; ".join(f"{key}: {path}" for key, path in foreign)
        raise ValueError(
            f"{source}: expected no file of this machine outside the packed files in the options "
            f"inference reads; found {listed} (pack the file with --option, or change the option)"
        )
    return packed


def check_loads(task, config: Mapping[str, Any], model_file: PathLike, source: str) -> None:
    """Build the model from the portable ``config`` (paths of this machine: before :func:`relinked_config`)
    and load ``model_file`` into it strictly.

    Raises:
        ValueError: the model file holds tensors the model lacks, misses some, or differs in shape.
    """
    from espnet_ext.wav2vec2.importers import torch_load

    model = task.build_model(argparse.Namespace(**config))
    state = torch_load(model_file)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{source}: the packed config does not build the model of {model_file}: {e}") from None


# ---------------------------------------------------------------------------- the zip
def _meta(files: Mapping[str, str], yaml_files: Mapping[str, str]) -> str:
    import espnet
    import torch

    from espnet_ext import __version__

    meta = {
        "files": dict(files),
        "yaml_files": dict(yaml_files),
        "timestamp": datetime.now().timestamp(),
        "python": sys.version,
        "torch": str(torch.__version__),
        "espnet": espnet.__version__,
        "espnet_ext": __version__,
    }
    return yaml.safe_dump(meta)


def _expand(paths: Iterable[PathLike]) -> list[Path]:
    """Files of ``paths``, directories replaced by the files below them (sorted)."""
    out = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory to pack")
        out.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return out


def pack_model(
    yaml_files: Mapping[str, PathLike],
    files: Mapping[str, PathLike],
    outpath: PathLike,
    options: Sequence[PathLike] = (),
) -> Path:
    """Write the zip ``outpath`` (see the module docstring) and return its path.

    Args:
        yaml_files: ``{option: training config}``, e.g. ``{"asr_train_config": "exp/asr_x/config.yaml"}``.
        files: ``{option: model file}``, e.g. ``{"asr_model_file": "exp/asr_x/valid.acc.ave.pth"}``.
        options: further files (or directories) to pack.
    """
    sources = {key: Path(value) for key, value in {**yaml_files, **files}.items()}
    every = _expand(list(sources.values()) + list(options))
    members = {os.path.realpath(path): archive_name(path) for path in every}
    texts = {}
    for key, path in yaml_files.items():
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if not isinstance(config, Mapping):
            raise ValueError(f"{path}: expected a training config (a YAML mapping); found {type(config).__name__}")
        task = _task_for(key)
        portable = portable_config(config, recorded_parts(config, str(path), task), str(path))
        packed = relinked_config(portable, members, str(path))
        model_file = files.get(model_file_key(key))
        if task is not None and model_file is not None:
            check_loads(task, portable, model_file, str(path))
        texts[archive_name(path)] = yaml.safe_dump(packed, allow_unicode=True, sort_keys=False)
    meta = _meta({k: archive_name(v) for k, v in files.items()}, {k: archive_name(v) for k, v in yaml_files.items()})
    outpath = Path(outpath)
    outpath.parent.mkdir(parents=True, exist_ok=True)
    with replacing(outpath) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        archive.writestr("meta.yaml", meta)
        for path in every:
            name = archive_name(path)
            if name in texts:
                archive.writestr(name, texts.pop(name))
            elif name not in archive.namelist():
                archive.write(path, name)
    logging.info("packed %d files into %s", len(every) + 1, outpath)
    return outpath
