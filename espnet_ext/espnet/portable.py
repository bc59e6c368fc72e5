"""What a packed model's config holds instead of the checkpoints its parts were built from.

A part of an ESPnet model built from a file (the ``wav2vec2`` and ``wav2vec1`` frontends, the
``w2v2_context`` encoder, each with ``path``) gives ``portable_conf()``: the options that build
the same network without that file (its architecture, and what the file decided: dropouts,
waveform normalization). The trained weights of the whole network are in the experiment's
model file, which ESPnet loads after building the model, so a config with these options in
place of ``path`` rebuilds the trained model anywhere.

:func:`record_portable_conf` stores them in the training's arguments under :data:`RECORD_KEY`
(ESPnet writes the arguments to ``exp/<tag>/config.yaml`` after building the model), so that
packing does not need the pre-training checkpoint, which may be gone by then; the record sits
beside ``frontend_conf``, which keeps ``path`` (what the experiment was fine-tuned from).
:func:`portable_config` applies a record to a training config (:mod:`espnet_ext.espnet.packing`).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any, NamedTuple

from torch import nn

#: top-level key of ``config.yaml`` holding ``{conf key: portable options}`` (e.g. ``frontend_conf``)
RECORD_KEY = "portable_conf"
#: options of a part built from a file that its portable options replace
FILE_OPTIONS = ("path", "preset", "allow_unsafe")


class FilePart(NamedTuple):
    """A part of an ESPnet model that can be built from a file: the config key naming its class,
    its options' key, the class names (as registered) that read ``path``."""

    name_key: str
    conf_key: str
    names: tuple[str, ...]


FILE_PARTS: tuple[FilePart, ...] = (
    FilePart("frontend", "frontend_conf", ("wav2vec2", "wav2vec1")),
    FilePart("encoder", "encoder_conf", ("w2v2_context",)),
)


def portable_parts(model: nn.Module) -> dict[str, dict[str, Any]]:
    """``{conf key: portable options}`` for each part of ``model`` built from a file."""
    parts = {}
    for part in FILE_PARTS:
        module = getattr(model, part.name_key, None)
        if getattr(module, "path", None) is not None and hasattr(module, "portable_conf"):
            parts[part.conf_key] = module.portable_conf()
    return parts


def record_portable_conf(args: argparse.Namespace, model: nn.Module) -> None:
    """Store :func:`portable_parts` of ``model`` as ``args.portable_conf`` (nothing when no part
    was built from a file)."""
    parts = portable_parts(model)
    if parts:
        setattr(args, RECORD_KEY, parts)


def file_parts(config: Mapping[str, Any]) -> list[tuple[FilePart, str]]:
    """The parts ``config`` builds from a file, with the file's path."""
    found = []
    for part in FILE_PARTS:
        conf = config.get(part.conf_key) or {}
        if config.get(part.name_key) in part.names and isinstance(conf, Mapping) and conf.get("path") is not None:
            found.append((part, str(conf["path"])))
    return found


def portable_config(
    config: Mapping[str, Any], recorded: Mapping[str, Any] | None = None, source: str = "config"
) -> dict[str, Any]:
    """``config`` with each part built from a file built from ``recorded`` options instead
    (default: ``config``'s own :data:`RECORD_KEY`), which replace :data:`FILE_OPTIONS`; the record
    itself is left out.

    Raises:
        ValueError: a part is built from a file and ``recorded`` holds nothing for it (names
            ``source``, the option and the file).
    """
    recorded = (config.get(RECORD_KEY) or {}) if recorded is None else recorded
    out = {key: value for key, value in config.items() if key != RECORD_KEY}
    for part, path in file_parts(config):
        options = recorded.get(part.conf_key)
        if not isinstance(options, Mapping):
            raise ValueError(
                f"{source}: {part.conf_key}.path is {path!r}, and no architecture was recorded "
                f"for it ({RECORD_KEY}.{part.conf_key}): expected the record training writes"
            )
        kept = {key: value for key, value in out[part.conf_key].items() if key not in FILE_OPTIONS}
        out[part.conf_key] = {**kept, **options}
    return out
