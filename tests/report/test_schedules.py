"""The planner's LR curves (espnet_ext.report.schedules) against ESPnet's scheduler classes
(espnet2.schedulers), which are what trains: each scheduler is built on a dummy optimizer with the
config's values and stepped as ESPnet's trainer steps a batch scheduler (once after every optimizer
update; the constructor's own first step gives update 1's LR). The planner's ``lr(u)`` must equal
the optimizer's LR during update ``u``, at every update checked."""

from __future__ import annotations

import glob
import math
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from espnet2.schedulers.cosine_anneal_warmup_restart import CosineAnnealingWarmupRestarts
from espnet2.schedulers.piecewise_linear_warmup_lr import PiecewiseLinearWarmupLR
from espnet2.schedulers.tristage_lr import TristageLR
from espnet2.schedulers.warmup_lr import WarmupLR

from espnet_ext.report import plan, schedules

ROOT = Path(__file__).resolve().parents[2]
#: ESPnet's classes by the names a config gives (espnet2/tasks/abs_task.py: the class name, lower case)
ESPNET = {
    cls.__name__.lower(): cls for cls in (TristageLR, WarmupLR, PiecewiseLinearWarmupLR, CosineAnnealingWarmupRestarts)
}
#: recipes' schedules: every update up to here, then windows around the curve's boundaries
EVERY_UPDATE_UP_TO = 5000
WINDOW = 100


def espnet_lrs(name: str, conf: dict, lr: float, updates: list[int]) -> list[float]:
    """The optimizer's LR during each of ``updates`` (ascending, from 1) under ESPnet's scheduler
    ``name`` built with ``conf`` on an optimizer of learning rate ``lr``. Consecutive updates are
    stepped one by one; a gap is crossed with ``step(update - 1)``, which sets the scheduler's
    step (ESPnet's schedulers compute their LR from the step alone, the cosine one from the step
    and cycle it derives from it)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = ESPNET[name](optimizer, **conf)
    optimizer.step()  # as in training, the scheduler steps after the optimizer
    group = optimizer.param_groups[0]
    current, lrs = 1, []
    for u in updates:
        if u == current + 1:
            scheduler.step()
        elif u != current:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch deprecates step(epoch) in favour of stepping
                scheduler.step(u - 1)
        current = u
        lrs.append(group["lr"])
    return lrs


def assert_same_curve(name: str, conf: dict, lr: float, updates: list[int], where: str) -> None:
    schedule, _ = schedules.schedule_of(
        {"scheduler": name, "scheduler_conf": conf, "optim_conf": {"lr": lr}}, max(updates), where
    )
    theirs = espnet_lrs(name, conf, lr, updates)
    for u, espnet in zip(updates, theirs):
        ours = schedule.lr(u)
        assert math.isclose(ours, espnet, rel_tol=1e-12, abs_tol=1e-18), (
            f"{where}: update {u}: the planner's LR {ours!r}, ESPnet's {espnet!r}"
        )


TRISTAGE = {"warmup_ratio": 0.1, "hold_ratio": 0.4, "decay_ratio": 0.5, "init_lr_scale": 0.01, "final_lr_scale": 0.05}
#: (scheduler, scheduler_conf, optimizer lr, updates): each checked at every update from 1
CASES = [
    ("tristagelr", dict(TRISTAGE, max_steps=200), 3e-5, 260),  # the fine-tuning recipes' ratios
    ("tristagelr", {"max_steps": 203, "warmup_ratio": 0.15, "hold_ratio": 0.35, "decay_ratio": 0.5}, 5e-5, 260),
    ("tristagelr", {"max_steps": 300.0, "warmup_ratio": 0.5, "hold_ratio": 0.5, "decay_ratio": 0.0}, 1e-4, 320),
    ("tristagelr", {}, 1e-3, 25_100),  # ESPnet's defaults: max_steps 25000, final_lr_scale 0.01
    ("warmuplr", {"warmup_steps": 100}, 2e-3, 500),
    ("warmuplr", {"warmup_steps": 150.0}, 1e-3, 400),
    ("warmuplr", {}, 1e-3, 26_000),  # warmup_steps 25000
    ("piecewiselinearwarmuplr", {"warmup_steps_list": [0, 32, 400], "warmup_lr_list": [0.0, 5e-4, 0.0]}, 5e-4, 450),
    (
        "piecewiselinearwarmuplr",
        {"warmup_steps_list": [0, 10, 50, 100], "warmup_lr_list": [1e-5, 1e-3, 1e-3, 1e-4]},
        1e-3,
        150,
    ),
    ("piecewiselinearwarmuplr", {}, 1e-3, 26_000),  # [0, 25000] -> [0, 0.001], then lr x sqrt(25000 / u)
    (
        "cosineannealingwarmuprestarts",
        {"first_cycle_steps": 100, "warmup_steps": 5, "max_lr": 5e-3, "min_lr": 1e-6},
        5e-3,
        350,
    ),
    (  # no warmup: update 1 still runs at min_lr (the constructor sets it), each restart at max_lr
        "cosineannealingwarmuprestarts",
        {"first_cycle_steps": 50, "warmup_steps": 0, "max_lr": 1e-3, "min_lr": 1e-5},
        1e-3,
        160,
    ),
    ("cosineannealingwarmuprestarts", {"first_cycle_steps": 40}, 1e-3, 100),  # max_lr 0.1, min_lr 0.001
]


def test_a_gap_crossed_with_step_equals_stepping_through_it():
    """espnet_lrs' jump over a gap (step(update - 1)) lands where stepping one by one does."""
    for name, conf, lr, count in CASES:
        every = espnet_lrs(name, conf, lr, list(range(1, count + 1)))
        sparse = [1, 2, count // 3, count // 3 + 1, count // 2, count - 1, count]
        assert espnet_lrs(name, conf, lr, sparse) == [every[u - 1] for u in sparse], (name, conf)


def test_every_scheduler_the_planner_models_is_checked():
    assert {case[0] for case in CASES} == set(schedules.ESPNET_SCHEDULERS) <= set(ESPNET)


@pytest.mark.parametrize("name, conf, lr, updates", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_schedule_equals_espnet_at_every_update(name, conf, lr, updates):
    assert_same_curve(name, conf, lr, list(range(1, updates + 1)), f"{name} {conf}")


def _recipe_schedules() -> dict[tuple, str]:
    """(scheduler, scheduler_conf, lr) -> the first config that uses it, over the recipes' configs."""
    found: dict[tuple, str] = {}
    for path in sorted(glob.glob(str(ROOT / "egs2/*/*/conf/tuning/*.yaml"))):
        config = plan.load_config(path)
        name = config.get("scheduler")
        if name is None:
            continue
        lr = float((config.get("optim_conf") or {}).get("lr", 1e-3))
        key = (name.lower(), yaml.safe_dump(config.get("scheduler_conf") or {}, sort_keys=True), lr)
        found.setdefault(key, str(Path(path).relative_to(ROOT)))
    return found


RECIPES = _recipe_schedules()


def checked_updates(schedule: schedules.Schedule) -> list[int]:
    """Every update up to :data:`EVERY_UPDATE_UP_TO`, then windows around the warmup's end, the
    hold's end, the curve's end and past it, and between them."""
    end = schedule.end or 4 * schedule.warmup
    horizon = end + max(1000, end // 10)
    updates = set(range(1, min(horizon, EVERY_UPDATE_UP_TO) + 1))
    marks = {schedule.warmup, schedule.warmup + schedule.hold, end, horizon}
    marks |= {end * k // 4 for k in (1, 2, 3)}
    for mark in marks:
        updates |= set(range(max(1, mark - WINDOW), mark + WINDOW + 1))
    return sorted(updates)


def test_every_recipe_scheduler_is_modelled():
    assert RECIPES, "no recipe config names a scheduler"
    assert {name for name, _, _ in RECIPES} <= set(schedules.ESPNET_SCHEDULERS)


@pytest.mark.parametrize("key", list(RECIPES), ids=[f"{RECIPES[k]}" for k in RECIPES])
def test_recipe_schedule_equals_espnet(key):
    name, conf_yaml, lr = key
    conf = yaml.safe_load(conf_yaml)
    schedule, _ = schedules.schedule_of({"scheduler": name, "scheduler_conf": conf, "optim_conf": {"lr": lr}}, None, "")
    assert_same_curve(name, conf, lr, checked_updates(schedule), RECIPES[key])


def test_ssl_configs_reproduce_fairseqs_polynomial_decay():
    """The ssl1 BASE and LARGE configs write fairseq's polynomial_decay (power 1 to 0) as ESPnet's
    PiecewiseLinearWarmupLR; stepped by ESPnet, it gives fairseq's curve (at the updates
    :func:`checked_updates` picks, up to fairseq's max_update)."""
    for config, reference in (
        ("train_ssl_w2v2_base.yaml", "pretrain_base"),
        ("train_ssl_w2v2_large.yaml", "pretrain_large"),
    ):
        cfg = plan.load_config(ROOT / "egs2/librispeech/ssl1/conf/tuning" / config)
        ref = plan.REFERENCES[reference]
        fairseq = schedules.polynomial_decay(ref.lr, ref.scheduler[1], ref.max_update)
        updates = checked_updates(fairseq)
        updates = [u for u in updates if u <= ref.max_update]
        theirs = espnet_lrs(cfg["scheduler"], cfg["scheduler_conf"], cfg["optim_conf"]["lr"], updates)
        for u, espnet in zip(updates, theirs):
            assert espnet == pytest.approx(fairseq.lr(u), rel=1e-9, abs=1e-15), (config, u)
