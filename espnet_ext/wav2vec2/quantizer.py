"""Gumbel product quantizer of wav2vec 2.0 (fairseq ``GumbelVectorQuantizer``) and its temperature.

A frame's feature vector (``conv_dim`` channels: the LayerNorm-ed extractor output, fairseq's
``unmasked_features``) is mapped by ``weight_proj`` to ``G * V`` logits: ``G`` groups
(``latent_groups``) of ``V`` entries (``latent_vars``). Each group picks one entry of its own
codebook of ``V`` vectors of ``latent_dim / G`` channels (``vars``, shape ``(1, G * V, latent_dim / G)``
as fairseq stores it); the ``G`` picked vectors are concatenated into the ``latent_dim``-channel
quantized vector.

Selection:

* training: hard straight-through Gumbel-softmax (``F.gumbel_softmax(logits, tau, hard=True)``):
  the forward value is the one-hot of ``argmax(logits + Gumbel noise)``, the gradient that of
  the soft ``softmax((logits + noise) / tau)``, so ``weight_proj`` and the features are trained;
* evaluation: the one-hot of ``argmax(logits)`` (no noise, no gradient to the logits).

Perplexities (fairseq's names), over the frames the caller marks valid (the pre-training
objective passes the masked frames, as fairseq quantizes only those and Hugging Face averages
over ``mask_time_indices``; padding frames must never be included):

* ``code_perplexity``: ``sum_g exp(H(mean of one-hot(argmax logits)))``: how many entries are
  actually used (monitoring only);
* ``prob_perplexity``: ``sum_g exp(H(mean of softmax(logits)))``, ``H`` the entropy with fairseq's
  ``+1e-7`` inside the log: the diversity loss maximises it (its maximum is ``G * V``).

The temperature is given by the caller; :func:`gumbel_temperature` is fairseq's schedule
(``latent_temp = (start, end, decay)``, decayed once per optimizer update).

Only torch is imported here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Number = int | float


def gumbel_temperature(
    num_updates: Number | Tensor, start: float = 2.0, end: float = 0.5, decay: float = 0.999995
) -> float | Tensor:
    """fairseq's Gumbel temperature after ``num_updates`` optimizer updates: ``max(end, start * decay ** n)``.

    Args:
        num_updates: updates done so far, a Python number or a tensor (e.g. a model's
            ``num_updates`` buffer, on any device: no host synchronisation).
        start, end, decay: fairseq ``latent_temp`` (BASE ``(2, 0.5, 0.999995)``; LARGE ends at 0.1).
    Returns:
        A float for a number, a float32 tensor (computed in float64) of the same shape for a tensor.
    Raises:
        ValueError: ``start`` or ``end`` not positive, ``decay`` not in (0, 1], ``num_updates`` negative.
    """
    if not (start > 0 and end > 0):
        raise ValueError(f"latent_temp: expected positive start and end temperatures; found {start}, {end}")
    if not 0 < decay <= 1:
        raise ValueError(f"latent_temp: expected a decay in (0, 1]; found {decay}")
    if isinstance(num_updates, Tensor):
        value = start * torch.exp(num_updates.detach().double() * math.log(decay))
        return torch.clamp(value, min=end).float()
    if num_updates < 0:
        raise ValueError(f"num_updates: expected >= 0; found {num_updates}")
    return max(end, start * decay**num_updates)


class QuantizerOutput(NamedTuple):
    """What :class:`GumbelVectorQuantizer` returns.

    Attributes:
        quantized: ``(B, T, latent_dim)`` the concatenated codebook vectors (fairseq ``x``).
        codes: ``(B, T, G)`` long, the entry each group picked (after the Gumbel noise in
            training): equal codes give equal ``quantized`` vectors.
        code_perplexity: scalar, perplexity of the argmax codes over the valid frames.
        prob_perplexity: scalar, perplexity of the mean softmax over the valid frames.
        num_vars: ``G * V`` (fairseq ``num_vars``): the largest possible perplexity.
        temperature: scalar tensor, the temperature used (fairseq ``temp``).
    """

    quantized: Tensor
    codes: Tensor
    code_perplexity: Tensor
    prob_perplexity: Tensor
    num_vars: int
    temperature: Tensor


def perplexity(probs: Tensor, valid: Tensor | None = None) -> Tensor:
    """``sum_g exp(-sum_v p log(p + 1e-7))`` of the mean of ``probs`` over valid frames.

    Args:
        probs: ``(B, T, G, V)`` per-frame distributions (float).
        valid: ``(B, T)`` bool, frames to average over; None: all. No valid frame gives
            the perplexity of an all-zero distribution (1 per group), not NaN.
    """
    if valid is None:
        mean = probs.mean(dim=(0, 1))
    else:
        weights = valid.to(probs.dtype)[..., None, None]
        mean = (probs * weights).sum(dim=(0, 1)) / weights.sum().clamp(min=1.0)
    return torch.exp(-(mean * torch.log(mean + 1e-7)).sum(dim=-1)).sum()


def _one_hot(index: Tensor, size: int, dtype: torch.dtype) -> Tensor:
    """``(N,)`` -> ``(N, size)`` one-hot by scatter (``F.one_hot`` may check the range on the host)."""
    return torch.zeros(index.numel(), size, dtype=dtype, device=index.device).scatter_(1, index.view(-1, 1), 1.0)


class GumbelVectorQuantizer(nn.Module):
    """Product quantizer with Gumbel-softmax selection (fairseq ``GumbelVectorQuantizer``,
    ``combine_groups=False``, ``time_first=True``).

    Args:
        weight_proj: module from ``conv_dim`` channels to ``G * V`` logits (fairseq
            ``weight_proj``: a Linear, or for ``quantizer_depth > 1`` a stack ending in one).
        codevectors: ``(1, G * V, latent_dim / G)`` codebooks, fairseq ``vars`` (Hugging Face
            ``codevectors``).
        groups: ``G`` (fairseq ``latent_groups``).
    """

    def __init__(self, weight_proj: nn.Module, codevectors: nn.Parameter, groups: int) -> None:
        super().__init__()
        if codevectors.dim() != 3 or codevectors.size(0) != 1 or codevectors.size(1) % groups:
            raise ValueError(
                f"codevectors: expected shape (1, G * V, latent_dim / G) with G = {groups}; "
                f"found {tuple(codevectors.shape)}"
            )
        self.weight_proj = weight_proj
        self.vars = codevectors
        self.groups = groups
        self.num_vars = codevectors.size(1) // groups

    @property
    def output_dim(self) -> int:
        """``latent_dim``: channels of the quantized vectors."""
        return self.groups * self.vars.size(-1)

    def forward(self, x: Tensor, temperature: float | Tensor, valid: Tensor | None = None) -> QuantizerOutput:
        """Quantize every frame of ``x``.

        Args:
            x: ``(B, T, conv_dim)`` features.
            temperature: Gumbel-softmax temperature (training only; see :func:`gumbel_temperature`).
            valid: ``(B, T)`` bool, frames the perplexities average over (never padding);
                None: all frames.
        """
        batch, steps, _ = x.shape
        logits = self.weight_proj(x).view(batch * steps * self.groups, self.num_vars)
        hard_codes = logits.argmax(dim=-1)
        if self.training:
            one_hot = F.gumbel_softmax(logits.float(), tau=temperature, hard=True).type_as(logits)
            codes = one_hot.argmax(dim=-1)
        else:
            codes = hard_codes
            one_hot = _one_hot(codes, self.num_vars, logits.dtype)
        one_hot = one_hot.view(batch * steps, self.groups, self.num_vars)
        codebooks = self.vars.view(self.groups, self.num_vars, -1)
        quantized = torch.einsum("ngv,gvd->ngd", one_hot, codebooks).reshape(batch, steps, -1)
        shape = (batch, steps, self.groups, self.num_vars)
        soft = torch.softmax(logits.float().view(shape), dim=-1)
        hard = _one_hot(hard_codes, self.num_vars, torch.float32).view(shape)
        if isinstance(temperature, Tensor):
            temp = temperature.detach().to(device=x.device, dtype=torch.float32)
        else:  # a fill kernel, not a host-to-device copy
            temp = torch.full((), float(temperature), dtype=torch.float32, device=x.device)
        return QuantizerOutput(
            quantized,
            codes.view(batch, steps, self.groups),
            perplexity(hard, valid),
            perplexity(soft, valid),
            self.groups * self.num_vars,
            temp,
        )


def gumbel_vector_quantizer(
    input_dim: int,
    num_vars: int = 320,
    groups: int = 2,
    vq_dim: int = 256,
    weight_proj_depth: int = 1,
    weight_proj_factor: int = 3,
) -> GumbelVectorQuantizer:
    """Build a :class:`GumbelVectorQuantizer` with fairseq's initialisation.

    Args:
        input_dim: channels of the features (the extractor's ``conv_dim``).
        num_vars: ``V`` entries per group (fairseq ``latent_vars``).
        groups: ``G`` (fairseq ``latent_groups``).
        vq_dim: ``latent_dim`` of the quantized vectors (fairseq: ``latent_dim`` if > 0 else
            ``final_dim``); a multiple of ``groups``.
        weight_proj_depth, weight_proj_factor: fairseq ``quantizer_depth`` / ``quantizer_factor``:
            ``depth - 1`` hidden Linear+GELU layers of ``input_dim * factor`` channels before the
            Linear to the logits.
    Codebooks are uniform in [0, 1); a single-layer ``weight_proj`` has normal(0, 1) weights and
    zero bias (fairseq's rule; deeper stacks keep PyTorch's default initialisation, as fairseq).
    """
    for name, value in (
        ("num_vars", num_vars),
        ("groups", groups),
        ("vq_dim", vq_dim),
        ("weight_proj_depth", weight_proj_depth),
        ("weight_proj_factor", weight_proj_factor),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive integer; found {value!r}")
    if vq_dim % groups:
        raise ValueError(f"vq_dim: expected a multiple of groups ({groups}); found {vq_dim}")
    layers, inner = [], input_dim
    for _ in range(weight_proj_depth - 1):
        layers.append(nn.Sequential(nn.Linear(inner, input_dim * weight_proj_factor), nn.GELU()))
        inner = input_dim * weight_proj_factor
    last = nn.Linear(inner, groups * num_vars)
    if weight_proj_depth == 1:
        nn.init.normal_(last.weight, mean=0.0, std=1.0)
        nn.init.zeros_(last.bias)
        weight_proj: nn.Module = last
    else:
        weight_proj = nn.Sequential(*layers, last)
    codevectors = nn.Parameter(torch.empty(1, groups * num_vars, vq_dim // groups).uniform_())
    return GumbelVectorQuantizer(weight_proj, codevectors, groups)
