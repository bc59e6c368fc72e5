"""Learning-rate curves of ESPnet's schedulers (and fairseq's ``polynomial_decay``), over optimizer updates.

Each builder returns a :class:`Schedule` whose ``lr(u)`` is the learning rate of optimizer update
``u`` (1-based) as ESPnet's scheduler sets it: ESPnet steps a batch scheduler once after every
optimizer update, and the scheduler's constructor has already made one step, so update ``u`` runs
at the scheduler's step ``u`` (``last_epoch + 1``). The curves are written from the formulas of
``espnet2/schedulers/*.py`` (ESPnet 202511); ``tests/report/test_schedules.py`` checks them against
ESPnet's scheduler classes, stepped update by update, on the recipes' own configs among others.
fairseq's ``polynomial_decay`` (``fairseq/optim/lr_scheduler/polynomial_decay_schedule.py``) is
here for fairseq's pre-training recipes, which the planner puts beside ours.

numpy only (``np.interp``, as ESPnet's ``PiecewiseLinearWarmupLR`` uses it): no torch, no ESPnet.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

#: ESPnet's scheduler names (``scheduler:`` in a training config) that :func:`schedule_of` models
ESPNET_SCHEDULERS = ("tristagelr", "warmuplr", "piecewiselinearwarmuplr", "cosineannealingwarmuprestarts")


class Schedule(NamedTuple):
    """A learning-rate curve over optimizer updates (``lr(u)``: the LR of update ``u``, 1-based)."""

    shape: str  # in words, comparable across ESPnet's and fairseq's schedulers
    warmup: int
    hold: int
    decay: int
    end: int | None  # the update where the scheduler's own curve ends (None: never)
    lr: Callable[[int], float]
    note: str = ""


def tristage_lr(lr: float, conf: Mapping[str, Any], max_steps: int) -> Schedule:
    """ESPnet's ``TristageLR`` (fairseq ``tri_stage``): linear warmup from ``init_lr_scale x lr``,
    hold, exponential decay to ``final_lr_scale x lr`` at ``max_steps``, then constant."""
    warmup = int(max_steps * float(conf.get("warmup_ratio", 0.1)))
    hold = int(max_steps * float(conf.get("hold_ratio", 0.4)))
    decay = max_steps - warmup - hold
    init, final = float(conf.get("init_lr_scale", 0.01)), float(conf.get("final_lr_scale", 0.01))
    factor = -math.log(final) / decay if decay else 0.0

    def at(u: int) -> float:
        step = min(u, max_steps)
        if step < warmup:
            return init * lr + (lr - init * lr) / warmup * step
        if step < warmup + hold:
            return lr
        return lr * math.exp(-factor * (step - warmup - hold))

    return Schedule("tri-stage: linear, hold, exponential", warmup, hold, decay, max_steps, at)


def warmup_lr(lr: float, conf: Mapping[str, Any], total: int) -> Schedule:
    """ESPnet's ``WarmupLR``: linear to ``lr`` at ``warmup_steps``, then ``lr x sqrt(w / u)``."""
    w = float(conf.get("warmup_steps", 25000))
    return Schedule(
        "linear warmup, inverse square root decay",
        int(w),
        0,
        max(total - int(w), 0),
        None,
        lambda u: lr * w**0.5 * min(u**-0.5, u * w**-1.5),
    )


def piecewise_linear_warmup_lr(lr: float, conf: Mapping[str, Any], total: int) -> Schedule:
    """ESPnet's ``PiecewiseLinearWarmupLR``: ``np.interp`` over ``(warmup_steps_list,
    warmup_lr_list)``; past the last step ESPnet returns ``lr x sqrt(last / u)``, not the last LR."""
    steps = [float(s) for s in conf.get("warmup_steps_list", [0, 25000])]
    lrs = [float(v) for v in conf.get("warmup_lr_list", [0.0, 0.001])]
    peak = max(lrs)
    first = steps[lrs.index(peak)]
    last = steps[len(lrs) - 1 - lrs[::-1].index(peak)]

    def at(u: int) -> float:
        return float(np.interp(u, steps, lrs, right=lr * steps[-1] ** 0.5 * u**-0.5))

    note = ""
    if total > steps[-1]:
        note = (
            f"after update {int(steps[-1])} the LR jumps to lr x sqrt({int(steps[-1])} / u) "
            f"= {at(int(steps[-1]) + 1):.3g} (ESPnet's 'right' branch)"
        )
    shape = "piecewise linear"
    if len(lrs) == 3 and lrs[0] == 0.0 and lrs[2] == 0.0:
        shape = "linear warmup from 0, linear decay to 0"
    return Schedule(shape, int(first), int(last - first), int(steps[-1] - last), int(steps[-1]), at, note)


def cosine_annealing_warmup_restarts(conf: Mapping[str, Any], total: int) -> Schedule:
    """ESPnet's ``CosineAnnealingWarmupRestarts`` (``cycle_mult`` 1, ``gamma`` 1): linear from
    ``min_lr`` to ``max_lr`` over ``warmup_steps``, cosine to ``min_lr`` at ``first_cycle_steps``,
    then the cycle restarts. The first update runs at ``min_lr`` whatever ``warmup_steps`` is: the
    constructor sets every parameter group's LR to ``min_lr`` after its own first step."""
    cycle, w = int(conf["first_cycle_steps"]), int(conf.get("warmup_steps", 0))
    high, low = float(conf.get("max_lr", 0.1)), float(conf.get("min_lr", 0.001))
    if float(conf.get("cycle_mult", 1.0)) != 1.0 or float(conf.get("gamma", 1.0)) != 1.0:
        raise ValueError(
            "scheduler_conf: the planner handles cycle_mult 1 and gamma 1 only; "
            f"found {conf.get('cycle_mult')}, {conf.get('gamma')}"
        )

    def at(u: int) -> float:
        if u == 1:
            return low
        s = (u - 1) % cycle
        if s < w:
            return (high - low) * s / w + low
        return low + (high - low) * (1 + math.cos(math.pi * (s - w) / (cycle - w))) / 2

    note = f"restarts every {cycle} updates" if total > cycle else ""
    return Schedule("linear warmup, cosine decay", w, 0, cycle - w, cycle, at, note)


def polynomial_decay(lr: float, conf: Mapping[str, Any], max_update: int) -> Schedule:
    """fairseq's ``polynomial_decay``: linear warmup from 0, then ``(lr - end) (1 - progress)^power + end``."""
    w, end, power = int(conf["warmup_updates"]), float(conf["end_lr"]), float(conf["power"])

    def at(u: int) -> float:
        if u <= w:
            return lr * u / w
        return end + (lr - end) * max(1 - (u - w) / (max_update - w), 0.0) ** power

    shape = f"linear warmup from 0, polynomial decay (power {power:g}) to {end:g}"
    if power == 1.0 and end == 0.0:
        shape = "linear warmup from 0, linear decay to 0"
    return Schedule(shape, w, 0, max_update - w, max_update, at)


def schedule_of(config: Mapping[str, Any], total: int | None, source: str) -> tuple[Schedule, int]:
    """The config's LR schedule and the updates it is drawn over (``total`` if known, else where
    the scheduler itself ends). Raises ``ValueError`` naming ``source`` for a scheduler the
    planner does not know."""
    name = config.get("scheduler")
    conf = config.get("scheduler_conf") or {}
    lr = float((config.get("optim_conf") or {}).get("lr", 1e-3))  # ESPnet's optimizers: lr default 1e-3
    name = name.lower() if isinstance(name, str) else name
    if name == "tristagelr":
        steps = int(float(conf.get("max_steps", 25000)))
        return tristage_lr(lr, conf, steps), total or steps
    if name == "warmuplr":
        return warmup_lr(lr, conf, total or 0), total or int(conf.get("warmup_steps", 25000))
    if name == "piecewiselinearwarmuplr":
        end = int(float((conf.get("warmup_steps_list") or [0, 25000])[-1]))
        return piecewise_linear_warmup_lr(lr, conf, total or end), total or end
    if name == "cosineannealingwarmuprestarts":
        return cosine_annealing_warmup_restarts(conf, total or 0), total or int(conf["first_cycle_steps"])
    if name in (None, "none"):
        return Schedule("constant", 0, total or 0, 0, None, lambda u: lr), total or 0
    raise ValueError(f"{source}: scheduler {name!r}: the planner knows {', '.join(ESPNET_SCHEDULERS)} or none")
