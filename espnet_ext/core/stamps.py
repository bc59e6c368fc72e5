"""What produced a result: the inputs of a recipe step, recorded beside what the step wrote.

A stage driver describes a step by its inputs: configs (compared by their parsed content, so an
edited comment changes nothing), files (compared by content: SHA-256) and options (strings). The
record of those inputs (:func:`record`) is a small JSON document with a fingerprint over their
values. A step is done when its marker holds a record with the current fingerprint
(:func:`is_done`); otherwise it runs again and :func:`changes` says in one line what differs, e.g.
``config: max_epoch 15 -> 6``. An experiment directory holds its record in ``inputs.json``;
:func:`choose_dir` keeps two experiments that differ out of one directory: the base name stays with
the inputs it was first used with, others get ``<base>_<fingerprint[:8]>``.

Hashing a large file (a 1 GB pre-training checkpoint) costs seconds, so hashes are cached by
path, size and modification time in a JSON file of the driver's (``--cache``), as git's index does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from espnet_ext.core.atomic import write_text

RECORD_NAME = "inputs.json"  # an experiment directory's record of its inputs
FORMAT = 1
MISSING = "missing"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A YAML document as ``{dotted.key: leaf}`` (lists are leaves, shown as written)."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key in sorted(value, key=str):
            flat.update(_flatten(value[key], f"{prefix}{key}."))
        return flat if flat or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1] if prefix else "": json.loads(json.dumps(value, default=str))}


def read_config(path: Path, keys: Iterable[str] | None = None) -> dict[str, Any]:
    """The YAML file at ``path`` as flat ``{dotted.key: value}``, only its top-level ``keys`` when
    given (those a step reads, e.g. ``frontend`` and ``frontend_conf``); ValueError naming the
    file when it cannot be read or parsed."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            document = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: expected a readable YAML config; {e}") from e
    document = document if document is not None else {}
    if keys is not None:
        if not isinstance(document, dict):
            raise ValueError(f"{path}: expected a mapping of options, found {type(document).__name__}")
        document = {k: document[k] for k in keys if k in document}
    return _flatten(document)


class HashCache:
    """SHA-256 of files, reused while a file's path, size and modification time are unchanged."""

    def __init__(self, path: Path | None = None):
        self.path, self.entries, self.changed = path, {}, False
        if path is not None and path.is_file():
            try:
                self.entries = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.entries = {}  # a cache only: rebuilt

    def sha256(self, path: Path) -> str:
        resolved = str(path.resolve())
        stat = path.stat()
        key = [stat.st_size, stat.st_mtime_ns]
        cached = self.entries.get(resolved)
        if cached is not None and cached[:2] == key:
            return cached[2]
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        self.entries[resolved] = key + [digest.hexdigest()]
        self.changed = True
        return digest.hexdigest()

    def save(self) -> None:
        if self.path is not None and self.changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.path, json.dumps(self.entries, sort_keys=True))


def _file_value(path: Path, cache: HashCache) -> str:
    """The file's SHA-256; for a directory (a Hugging Face model), one over its files' relative
    names and hashes (hidden files left out); :data:`MISSING` when there is neither."""
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            relative = item.relative_to(path)
            if not any(part.startswith(".") for part in relative.parts):
                digest.update(f"{relative.as_posix()}\0{cache.sha256(item)}\n".encode())
        return digest.hexdigest()
    return cache.sha256(path) if path.is_file() else MISSING


def record(
    configs: Mapping[str, Any] = {},
    files: Mapping[str, Path] = {},
    options: Mapping[str, str] = {},
    cache: HashCache | None = None,
) -> dict[str, Any]:
    """The record of a step's inputs: ``{"format", "fingerprint", "inputs": {name: {kind, value[, path]}}}``.
    ``configs`` map names to YAML paths, each optionally ``PATH@key,key`` (:func:`config_spec`). A
    file that does not exist is recorded as ``"missing"`` (a later run that finds it differs)."""
    cache = cache or HashCache()
    inputs: dict[str, dict[str, Any]] = {}
    for name, spec in configs.items():
        path, keys = config_spec(str(spec))
        inputs[name] = {"kind": "config", "path": path, "value": read_config(Path(path), keys)}
    for name, path in files.items():
        inputs[name] = {"kind": "file", "path": str(path), "value": _file_value(Path(path), cache)}
    for name, value in options.items():
        inputs[name] = {"kind": "option", "value": str(value)}
    return {"format": FORMAT, "fingerprint": fingerprint(inputs), "inputs": inputs}


def config_spec(spec: str) -> tuple[str, list[str] | None]:
    """``"conf/x.yaml@frontend,frontend_conf"`` -> the path and the top-level keys (None: all)."""
    path, sep, keys = spec.rpartition("@") if "@" in spec else (spec, "", "")
    return (path, [k for k in keys.split(",") if k]) if sep else (spec, None)


def fingerprint(inputs: Mapping[str, Mapping[str, Any]]) -> str:
    """SHA-256 over the inputs' names, kinds and values (not their paths: a moved file with the
    same content is the same input)."""
    canonical = json.dumps(
        {name: [entry["kind"], entry["value"]] for name, entry in inputs.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read_record(path: Path) -> dict[str, Any] | None:
    """The record in ``path``; None when the file is missing, empty (a marker made before inputs
    were recorded) or not a record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "fingerprint" in data and "inputs" in data else None


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text if text else "''"
    return text if len(text) <= width else text[: width - 3] + "..."


def _config_changes(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 4) -> str:
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k, MISSING) != new.get(k, MISSING)]
    shown = [
        f"{k or '(document)'} {_short(old.get(k, '(unset)'))} -> {_short(new.get(k, '(unset)'))}" for k in keys[:limit]
    ]
    more = f", and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(shown) + more


def changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[str]:
    """What differs between two records, one phrase per input, e.g. ``config: max_epoch 15 -> 6``."""
    if old is None:
        return ["no record of the inputs it was made with"]
    before, after = old.get("inputs", {}), new["inputs"]
    found = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a is None or b is None:
            found.append(f"{name} {'added' if a is None else 'removed'}")
        elif (a["kind"], a["value"]) != (b["kind"], b["value"]):
            if a["kind"] == b["kind"] == "config":
                found.append(f"{name}: {_config_changes(a['value'], b['value'])}")
            elif b["kind"] == "option":
                found.append(f"{name} {_short(a['value'])} -> {_short(b['value'])}")
            else:
                found.append(
                    f"{name} changed ({b.get('path', '')})"
                    if MISSING not in (a["value"], b["value"])
                    else f"{name} {'appeared' if a['value'] == MISSING else 'is missing'} ({b.get('path', '')})"
                )
    return found


def is_done(marker: Path, current: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether ``marker`` records ``current``'s inputs, and when not, why (one line)."""
    if not marker.exists():
        return False, "not done yet"
    old = read_record(marker)
    if old is not None and old["fingerprint"] == current["fingerprint"]:
        return True, "already done"
    return False, "; ".join(changes(old, current)) or "inputs changed"


def choose_dir(base: Path, current: Mapping[str, Any]) -> tuple[Path, str]:
    """The directory for a result with inputs ``current``: ``base`` when it is new (absent, or holds
    nothing) or was made with the same inputs, else ``<base>_<fingerprint[:8]>``. Returns the
    directory and, when it is not ``base``, a line saying why."""
    if not base.exists() or not any(base.iterdir()):
        return base, ""
    old = read_record(base / RECORD_NAME)
    if old is not None and old["fingerprint"] == current["fingerprint"]:
        return base, ""
    other = base.with_name(f"{base.name}_{current['fingerprint'][:8]}")
    return other, f"{base} was made with other inputs ({'; '.join(changes(old, current))}): using {other}"


def write_record(path: Path, data: Mapping[str, Any]) -> Path:
    """``data`` into ``path`` (atomically), as JSON a user can read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def parse_assignments(values: Iterable[str], flag: str) -> dict[str, str]:
    """``["name=value", ...]`` as a dict (the value may contain '='); ValueError naming ``flag``."""
    parsed: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"{flag}: expected NAME=VALUE, found {item!r}")
        if name in parsed:
            raise ValueError(f"{flag}: {name} given twice")
        parsed[name] = value
    return parsed
