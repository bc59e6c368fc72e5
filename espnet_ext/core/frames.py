"""Frame arithmetic of a stack of unpadded 1-D convolutions, given as ``(dim, kernel, stride)`` layers.

One implementation, used by the wav2vec 2.0 feature extractor, the wav2vec 1.0 encoder and the
stage-4 CTC-feasibility filter (:mod:`espnet_ext.data.frames`). Per layer ``L = (L - kernel) // stride + 1``,
0 once the input is shorter than the kernel; frame ``t`` sees samples ``[t * S, t * S + R)`` with ``S``
the total stride and ``R`` the receptive field. Imports neither torch nor numpy: the lengths may be
``int``s or integer tensors (anything with floor division and ``clamp``).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from typing import Any, TypeVar

ConvLayer = tuple[int, int, int]
Lengths = TypeVar("Lengths")

#: fairseq's ``conv_feature_layers`` default for wav2vec 2.0: (dim, kernel, stride) per layer.
WAV2VEC2_CONV_LAYERS: tuple[ConvLayer, ...] = ((512, 10, 5),) + ((512, 3, 2),) * 4 + ((512, 2, 2),) * 2


def conv_output_lengths(lengths: Lengths, conv_layers: Sequence[ConvLayer]) -> Lengths:
    """Frames out of ``conv_layers`` for ``lengths`` input samples.

    Args:
        lengths: an ``int``, or an integer tensor of any shape (e.g. ``(B,)``).
        conv_layers: ``(dim, kernel, stride)`` per layer (fairseq's ``conv_feature_layers``).
    Returns:
        Same type (and shape) as ``lengths``: ``(L - kernel) // stride + 1`` per layer, clamped at 0
        (fairseq's ``_get_feat_extract_output_lengths`` for inputs at least one receptive field long).
    """
    for _, kernel, stride in conv_layers:
        # Once a count is <= 0 it stays <= 0 (kernel >= 1), so one clamp at the end is per-layer clamping.
        lengths = (lengths - kernel) // stride + 1
    return lengths.clamp(min=0) if hasattr(lengths, "clamp") else max(0, lengths)


def receptive_field(conv_layers: Sequence[ConvLayer]) -> int:
    """Samples one output frame sees: the shortest input that yields a frame (400 for fairseq's wav2vec 2.0 stack)."""
    field, jump = 1, 1
    for _, kernel, stride in conv_layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field


def total_stride(conv_layers: Sequence[ConvLayer]) -> int:
    """Samples between consecutive frames (320 for fairseq's wav2vec 2.0 stack, 160 for wav2vec 1.0's)."""
    return math.prod(stride for _, _, stride in conv_layers)


def _eval_layers_expr(node: ast.AST, text: str, source: str) -> Any:
    """Evaluate fairseq's layer string: lists, tuples, integers, ``+`` and ``*`` only (no ``eval``)."""
    if isinstance(node, ast.Expression):
        return _eval_layers_expr(node.body, text, source)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_eval_layers_expr(e, text, source) for e in node.elts]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = _eval_layers_expr(node.left, text, source), _eval_layers_expr(node.right, text, source)
        too_big = isinstance(node.op, ast.Mult) and any(isinstance(x, int) and x > 1000 for x in (left, right))
        try:
            if not too_big:
                return left + right if isinstance(node.op, ast.Add) else left * right
        except TypeError:
            pass
    raise ValueError(f'{source}: {text!r}: unsupported expression; expected e.g. "[(512, 10, 5)] + [(512, 3, 2)] * 4"')


def parse_conv_layers(spec: Any, source: str = "conv_layers") -> list[ConvLayer]:
    """``[[dim, kernel, stride], ...]`` or fairseq's string form -> list of ``(dim, kernel, stride)``.

    Raises:
        ValueError: naming ``source`` when a layer is not three positive integers.
    """
    if isinstance(spec, str):
        try:
            spec = _eval_layers_expr(ast.parse(spec, mode="eval"), spec, source)
        except SyntaxError:
            raise ValueError(f'{source}: cannot parse {spec!r}; expected e.g. "[(512, 10, 5)] * 2"') from None
    layers = []
    for layer in spec if isinstance(spec, (list, tuple)) else [None]:
        if (
            not isinstance(layer, (list, tuple))
            or len(layer) != 3
            or not all(isinstance(x, int) and x > 0 for x in layer)
        ):
            raise ValueError(f"{source}: layer {layer!r}; expected [dim, kernel, stride] of positive integers")
        layers.append(tuple(layer))
    if not layers:
        raise ValueError(f"{source}: no layers; expected at least one [dim, kernel, stride]")
    return layers
