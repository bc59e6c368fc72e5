"""Count optimizer updates on a module, in a buffer saved with the model.

fairseq schedules things per *optimizer update* (``set_num_updates``): the Gumbel temperature
of wav2vec 2.0 pre-training, ``freeze_finetune_updates`` in fine-tuning. ESPnet's trainer has
no such counter, and counting ``forward`` calls is wrong twice over: validation batches and
the micro-batches of gradient accumulation are not updates. So updates are counted where they
happen, by a global ``torch.optim`` post-step hook
(:func:`torch.optim.optimizer.register_optimizer_step_post_hook`):

    from espnet_ext.espnet.updates import count_updates
    count_updates(module)         # registers the long buffer ``module.num_updates`` (0)
    ...
    optimizer.step()              # module.num_updates += 1, if the optimizer updates module

A step counts for every registered module that has at least one parameter in that
optimizer's parameter groups (checked once per optimizer and number of groups, by parameter
identity, so DDP wrapping does not matter); an optimizer holding none of them (another
model's) does not count. A step skipped by AMP's ``GradScaler`` (inf/NaN gradients) or by
ESPnet's non-finite gradient check never calls ``step()`` and does not count, as in fairseq.
The increment is an in-place add on the buffer's device (no host synchronisation). Being a
buffer, the count is saved in checkpoints and restored on resume, and DDP broadcasts it.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_post_hook

#: name of the buffer :func:`count_updates` registers.
BUFFER = "num_updates"

_COUNTED: weakref.WeakSet[nn.Module] = weakref.WeakSet()
# optimizer -> (number of param groups when checked, {module: owns one of its parameters})
_OWNERSHIP: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_HOOK = None


def _owns(optimizer: torch.optim.Optimizer, module: nn.Module) -> bool:
    groups = len(optimizer.param_groups)
    cached = _OWNERSHIP.get(optimizer)
    if cached is None or cached[0] != groups:
        cached = (groups, weakref.WeakKeyDictionary())
        _OWNERSHIP[optimizer] = cached
    owned: dict = cached[1]
    if module not in owned:
        ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
        owned[module] = any(id(p) in ids for p in module.parameters())
    return owned[module]


def _after_step(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    for module in list(_COUNTED):
        if _owns(optimizer, module):
            with torch.no_grad():
                getattr(module, BUFFER).add_(1)


def count_updates(module: nn.Module) -> nn.Module:
    """Register ``module.num_updates`` (a 0-dim long buffer, 0) and count optimizer updates into it.

    Idempotent. The module must own parameters (only optimizers that update them count).
    Returns ``module``.
    Raises:
        ValueError: ``module`` already has a ``num_updates`` attribute that is not a long buffer.
    """
    global _HOOK
    existing = getattr(module, BUFFER, None)
    if existing is None:
        module.register_buffer(BUFFER, torch.zeros((), dtype=torch.long))
    elif not (isinstance(existing, torch.Tensor) and existing.dtype == torch.long and existing.dim() == 0):
        raise ValueError(
            f"{type(module).__name__}.{BUFFER}: expected a 0-dim long buffer to count into; "
            f"found {type(existing).__name__}"
        )
    _COUNTED.add(module)
    if _HOOK is None:
        _HOOK = register_optimizer_step_post_hook(_after_step)
    return module


def updates_done(module: nn.Module) -> int:
    """``int(module.num_updates)`` (a host synchronisation: for logging and checkpoint names)."""
    return int(getattr(module, BUFFER))
