"""The one place that adds this project's classes to ESPnet's ``ClassChoices``.

ESPnet builds models from names (``frontend: wav2vec2``) looked up in module-level
``ClassChoices`` objects of ``espnet2.tasks.asr``, ``espnet2.tasks.ssl`` and
``espnet2.tasks.cls``. Our classes must be added to those objects in every process that
builds a model: training, DDP-spawned workers, inference and packing.

``import espnet_ext`` calls :func:`install`, which declares :data:`espnet_ext.espnet.plugins.PLUGINS`,
registers them at once in task modules already imported and otherwise hooks the import of each
task module, so that importing ``espnet_ext`` stays cheap (no ESPnet, no torch) for the
command-line tools that do not need them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from espnet_ext.espnet.plugins import PLUGINS

# task module -> list of (ClassChoices attribute, choice name, "module:Class")
_PLUGINS: dict[str, list[tuple[str, str, str]]] = {
    "espnet2.tasks.asr": [],
    "espnet2.tasks.ssl": [],
    "espnet2.tasks.cls": [],
}


def add_plugin(task_module: str, choices_attr: str, name: str, target: str) -> None:
    """Declare that ``target`` ("pkg.module:Class") is selectable as ``name`` in
    ``task_module.choices_attr`` (e.g. ``frontend_choices``)."""
    _PLUGINS.setdefault(task_module, []).append((choices_attr, name, target))
    module = sys.modules.get(task_module)
    if module is not None and getattr(module, "__spec__", None) is not None:
        _register_one(module, choices_attr, name, target)


def _load(target: str):
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _register_one(module, choices_attr: str, name: str, target: str) -> None:
    choices = getattr(module, choices_attr, None)
    if choices is None:
        raise RuntimeError(f"{module.__name__} has no ClassChoices named {choices_attr!r}")
    if name in choices.classes:
        return
    cls = _load(target)
    base = getattr(choices, "base_type", None)
    if base is not None and not issubclass(cls, base):
        raise TypeError(f"{target} must subclass {base.__name__} to be a {choices_attr} entry")
    # argparse's `choices=` is built from `classes` when the parser is made, i.e. later.
    choices.classes[name] = cls


def register_task_module(module) -> None:
    for choices_attr, name, target in _PLUGINS.get(module.__name__, []):
        _register_one(module, choices_attr, name, target)


def quiet_nltk(module) -> None:
    """Make ``nltk.download`` quiet: ESPnet imports g2p_en, which calls it at import time for
    cmudict; with no network it prints a screen of errors. The
    download is still attempted; a failure is logged at debug level instead of printed."""
    original = module.download
    if getattr(original, "_espnet_ext_quiet", False):
        return

    def download(*args, **kwargs):
        import io
        import logging

        kwargs.setdefault("quiet", True)
        sink = io.StringIO()
        kwargs.setdefault("print_error_to", sink)
        ok = original(*args, **kwargs)
        if not ok:
            logging.getLogger(__name__).debug("nltk.download%s failed: %s", args, sink.getvalue())
        return ok

    download._espnet_ext_quiet = True
    module.download = download


def _nothing(module) -> None:
    pass


# module name -> function run right after the module is imported
_POST_IMPORT = {name: register_task_module for name in _PLUGINS}
_POST_IMPORT["nltk"] = quiet_nltk
# module name -> a line it prints at import time that users need not see
_IMPORT_NOISE = {
    # printed on every ESPnet import when the optional flash_attn package is absent
    "espnet.nets.pytorch_backend.transformer.attention": "Failed to import Flash Attention",
}
for _name in _IMPORT_NOISE:
    _POST_IMPORT.setdefault(_name, _nothing)


class _Loader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        noise = _IMPORT_NOISE.get(module.__name__)
        if noise is None:
            self.inner.exec_module(module)
        else:
            import contextlib
            import io

            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                self.inner.exec_module(module)
            kept = [line for line in out.getvalue().splitlines(True) if noise not in line]
            sys.stdout.write("".join(kept))
        _POST_IMPORT[module.__name__](module)


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loader of the ESPnet task modules so registration runs right after them."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _POST_IMPORT:
            return None
        # Find the real spec with the other finders, then wrap its loader.
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader)
                return spec
        return None


_installed = False


def install() -> None:
    """Register now for imported task modules and on import for the others (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    for plugin in PLUGINS:
        add_plugin(*plugin)
    for name, callback in _POST_IMPORT.items():
        module = sys.modules.get(name)
        if module is not None:
            callback(module)
    sys.meta_path.insert(0, _Finder())


def registered(task_module: str) -> list[str]:
    """Names this project declares for ``task_module`` (for tests and ``--help`` text)."""
    return [name for _, name, _ in _PLUGINS.get(task_module, [])]
