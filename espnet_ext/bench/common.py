"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import platform
import time
from typing import Callable, Dict, List, NamedTuple

import torch


class Timing(NamedTuple):
    median_s: float
    times_s: List[float]


def time_steps(step: Callable[[], None], warmup: int, repeats: int, device: str) -> Timing:
    """Median wall time of ``step()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return Timing(sorted(times)[len(times) // 2], times)


def time_interleaved(steps: Dict[str, Callable[[], None]], repeats: int, device: str) -> Dict[str, List[float]]:
    """One warm-up step each, then ``repeats`` rounds of one timed step each, alternating."""
    for step in steps.values():
        step()
    times: Dict[str, List[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name] += time_steps(step, warmup=0, repeats=1, device=device).times_s
    return times


def compiled_summary(compile_s: float, compiled_s: float, ours_s: float, reference_s: float) -> str:
    """The ``--compile`` line: the compiling first step's seconds, and the compiled median against both."""
    return (f"  compiled: first step (compilation included) {compile_s:.1f} s; ratio compiled/ours "
            f"{compiled_s / ours_s:.3f}, compiled/reference {compiled_s / reference_s:.3f} (of medians)")


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
            f"{gpu}, torch {torch.__version__}")
