"""Opt-in ``torch.compile`` of the Transformer.

:func:`compile_layers` compiles every :class:`~espnet_ext.wav2vec2.transformer.EncoderLayer` of a
model in place (:meth:`torch.nn.Module.compile`; ``state_dict`` keys unchanged), with dynamic
shapes: one graph for all layers and every batch shape. The rest of the model stays eager;
inside the graph the CPU kernels (:mod:`espnet_ext.wav2vec2.cpu_kernels`) step aside.
``python -m benchmarks pretrain --compile`` times it.

:func:`compile_encoder` compiles every :class:`~espnet_ext.wav2vec2.transformer.TransformerEncoder`
whole (positional convolution, layers, layerdrop drawn in the graph), with static shapes by
default: on the unpadded path (a batch cropped to one length, no mask) its forward pass is one
graph per batch shape, which ``mode="reduce-overhead"`` replays as a CUDA graph on GPUs. Each new
shape compiles (and records) once; ``torch._dynamo.config.recompile_limit`` (8) bounds how many
shapes a function keeps, beyond which it runs eagerly: batches cropped to few lengths suit it.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from espnet_ext.wav2vec2.transformer import EncoderLayer, TransformerEncoder


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
    options.update(dynamic=dynamic, backend=backend, mode=mode, fullgraph=fullgraph)
    return _compile_each(model, EncoderLayer, "compile_layers", options)


def compile_encoder(
    model: nn.Module,
    *,
    dynamic: bool = False,
    backend: str = "inductor",
    mode: str | None = None,
    fullgraph: bool = False,
    **options: Any,
) -> int:
    """Compile every :class:`TransformerEncoder` under ``model`` whole, in place; returns how many.

    Args:
        model: any module holding the encoder (backbone, pre-training model, ESPnet model).
        dynamic: False (the default): static shapes, a graph per batch shape (what CUDA graphs
            need); True: symbolic batch size and length.
        backend, mode, fullgraph, options: passed to :func:`torch.compile` (``mode="reduce-overhead"``:
            CUDA graphs on GPUs). ``fullgraph=True`` holds for unpadded batches; a padded batch on
            the CPU breaks the graph where the attention mask checks its padding.
    Raises:
        ValueError: when ``model`` has no Transformer encoder.
    """
    options.update(dynamic=dynamic, backend=backend, mode=mode, fullgraph=fullgraph)
    return _compile_each(model, TransformerEncoder, "compile_encoder", options)


def _compile_each(model: nn.Module, kind: type[nn.Module], caller: str, options: dict[str, Any]) -> int:
    """``torch.compile`` every ``kind`` module under ``model`` in place; how many there are."""
    targets = [m for m in model.modules() if isinstance(m, kind)]
    if not targets:
        raise ValueError(f"{caller}: no {kind.__name__} in {type(model).__name__}")
    for target in targets:
        target.compile(**options)
    return len(targets)
