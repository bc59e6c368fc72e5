"""Opt-in ``torch.compile`` of the Transformer layers.

:func:`compile_layers` compiles the ``forward`` of every :class:`~espnet_ext.wav2vec2.transformer.EncoderLayer`
in a model, in place (:meth:`torch.nn.Module.compile`: parameter names and ``state_dict`` keys
do not change, so checkpoints written and read with it are the same files). Only the layers are
compiled, because only their shapes allow it:

- all layers of a model have the same code and shapes, so one graph serves them all;
- with ``dynamic=True`` the batch size and the number of frames are symbolic: a new batch
  shape (length bucketing gives many) does not recompile;
- what is left eager has data-dependent shapes or host work by design: the conv feature
  extractor's per-utterance lengths, the masks and negatives (drawn per batch), layerdrop's
  per-step draw, the quantizer's straight-through Gumbel-softmax.

Inside a compiled graph the CPU-only fast paths step aside (:class:`~espnet_ext.wav2vec2.dropout.Dropout`
uses ``nn.Dropout``, whose draws the compiler fuses itself; attention with dropout uses
``scaled_dot_product_attention``, as the written-out path's check of the mask would break the graph).

The first step pays the compilation (tens of seconds for BASE on CPU, a C++ compiler is
needed for the ``inductor`` backend on CPU); ``python -m espnet_ext.bench pretrain --compile``
prints that cost and the step time after it.
"""

from __future__ import annotations

from typing import Any, List, Optional

from torch import nn

from espnet_ext.wav2vec2.transformer import EncoderLayer


def compile_layers(model: nn.Module, *, dynamic: bool = True, backend: str = "inductor",
                   mode: Optional[str] = None, fullgraph: bool = False, **options: Any) -> int:
    """Compile every :class:`EncoderLayer` under ``model`` in place; returns how many there are.

    Args:
        model: any module (a :class:`~espnet_ext.wav2vec2.model.Wav2Vec2Model`, a pre-training
            model, an ESPnet frontend or a whole ESPnet model).
        dynamic: symbolic batch size and length (no recompilation per batch shape).
        backend, mode, fullgraph, options: passed to :func:`torch.compile`.
    Raises:
        ValueError: when ``model`` has no Transformer layer.
    """
    layers: List[EncoderLayer] = [m for m in model.modules() if isinstance(m, EncoderLayer)]
    if not layers:
        raise ValueError(f"compile_layers: no EncoderLayer in {type(model).__name__}")
    for layer in layers:
        layer.compile(dynamic=dynamic, backend=backend, mode=mode, fullgraph=fullgraph, **options)
    return len(layers)
