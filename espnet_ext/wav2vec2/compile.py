"""Opt-in ``torch.compile`` of the Transformer layers.

:func:`compile_layers` compiles every :class:`~espnet_ext.wav2vec2.transformer.EncoderLayer` of a
model in place (:meth:`torch.nn.Module.compile`; ``state_dict`` keys unchanged), with dynamic
shapes: one graph for all layers and every batch shape. The rest of the model stays eager;
inside the graph the CPU kernels (:mod:`espnet_ext.wav2vec2.cpu_kernels`) step aside.
``python -m benchmarks pretrain --compile`` times it.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from espnet_ext.wav2vec2.transformer import EncoderLayer


def compile_layers(
    model: nn.Module,
    *,
    dynamic: bool = True,
    backend: str = "inductor",
    mode: str | None = None,
    fullgraph: bool = False,
    **options: Any,
) -> int:
    """Compile every :class:`EncoderLayer` under ``model`` in place; returns how many there are.

    Args:
        model: any module (a :class:`~espnet_ext.wav2vec2.model.Wav2Vec2Model`, a pre-training
            model, an ESPnet frontend or a whole ESPnet model).
        dynamic: symbolic batch size and length (no recompilation per batch shape).
        backend, mode, fullgraph, options: passed to :func:`torch.compile`.
    Raises:
        ValueError: when ``model`` has no Transformer layer.
    """
    layers: list[EncoderLayer] = [m for m in model.modules() if isinstance(m, EncoderLayer)]
    if not layers:
        raise ValueError(f"compile_layers: no EncoderLayer in {type(model).__name__}")
    for layer in layers:
        layer.compile(dynamic=dynamic, backend=backend, mode=mode, fullgraph=fullgraph, **options)
    return len(layers)
