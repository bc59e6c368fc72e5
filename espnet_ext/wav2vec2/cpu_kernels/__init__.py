"""CPU kernels for the wav2vec 2.0 modules: the plain modules' numbers, computed faster on CPU.

Opt-in: :func:`enable` (or the block of :func:`enabled`) registers them in
:data:`espnet_ext.wav2vec2.modules.KERNELS`, through which the plain modules call them; importing
a module of :mod:`espnet_ext.wav2vec2`, this one included, registers nothing. :func:`disable` and
:func:`disabled` remove them (the plain modules then run as written). ESPnet training switches
them with ``--cpu_kernels`` (:mod:`espnet_ext.espnet.kernel_option`: on by default on CPU); the
benchmarks enable them.

=============================  =========================================================  ================
``KERNELS`` name               replaces, where it applies                                 module
=============================  =========================================================  ================
``conv_feature_extractor``     ``ConvFeatureExtractor.forward``, float32 CPU input          :mod:`.extractor`
                               outside autocast (channels-last GEMMs, fused GELUs and
                               GroupNorm; equal up to float32 summation order)
``dropout``                    ``Dropout`` in training on CPU (other draws, same           :mod:`.dropout`
                               distribution)
``attention``                  ``scaled_dot_product_attention`` with dropout on CPU        :mod:`.attention`
=============================  =========================================================  ================

Each kernel returns None where it does not apply (other devices or dtypes, inside
``torch.compile``), and the plain code runs. Timings: ``python -m benchmarks extractor``
and ``docs/benchmarks.md``; equality with the plain modules: ``tests/wav2vec2/test_cpu_kernels.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from torch import Tensor

from espnet_ext.wav2vec2.cpu_kernels.attention import attention_kernel
from espnet_ext.wav2vec2.cpu_kernels.dropout import dropout_kernel
from espnet_ext.wav2vec2.cpu_kernels.extractor import extractor_kernel
from espnet_ext.wav2vec2.modules import KERNELS

#: The CPU kernels, by their ``KERNELS`` name.
CPU_KERNELS: dict[str, Callable[..., Tensor | None]] = {
    "conv_feature_extractor": extractor_kernel,
    "dropout": dropout_kernel,
    "attention": attention_kernel,
}


def _names(names: tuple) -> tuple:
    unknown = [name for name in names if name not in CPU_KERNELS]
    if unknown:
        raise ValueError(f"CPU kernels: expected names from {sorted(CPU_KERNELS)}; found {unknown}")
    return names or tuple(CPU_KERNELS)


def enable(*names: str) -> None:
    """Register the CPU kernels ``names`` (all when none is given)."""
    for name in _names(names):
        KERNELS[name] = CPU_KERNELS[name]


def disable(*names: str) -> None:
    """Unregister the CPU kernels ``names`` (all when none is given)."""
    for name in _names(names):
        if KERNELS.get(name) is CPU_KERNELS[name]:
            del KERNELS[name]


@contextlib.contextmanager
def enabled(*names: str) -> Iterator[None]:
    """Run a block with the CPU kernels ``names`` (all when none is given), then restore the registry."""
    saved = {name: KERNELS[name] for name in _names(names) if name in KERNELS}
    enable(*names)
    try:
        yield
    finally:
        disable(*names)
        KERNELS.update(saved)


@contextlib.contextmanager
def disabled(*names: str) -> Iterator[None]:
    """Run a block without the CPU kernels ``names`` (all when none is given), then restore them."""
    saved = {name: KERNELS[name] for name in _names(names) if name in KERNELS}
    disable(*names)
    try:
        yield
    finally:
        KERNELS.update(saved)
