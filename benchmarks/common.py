"""Timing helpers shared by the benchmarks, and the CPU kernels they measure with."""

from __future__ import annotations

import argparse
import contextlib
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from statistics import median
from typing import NamedTuple

import torch


class Timing(NamedTuple):
    median_s: float
    times_s: list[float]


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


def time_interleaved(steps: dict[str, Callable[[], None]], repeats: int, device: str) -> dict[str, list[float]]:
    """One warm-up step each, then ``repeats`` rounds of one timed step each, alternating."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name] += time_steps(step, warmup=0, repeats=1, device=device).times_s
    return times


def compiled_summary(compile_s: float, compiled_s: float, ours_s: float, reference_s: float) -> str:
    """The ``--compile`` line: the compiling first step's seconds, and the compiled median against both."""
    return (
        f"  compiled: first step (compilation included) {compile_s:.1f} s; ratio compiled/ours "
        f"{compiled_s / ours_s:.3f}, compiled/reference {compiled_s / reference_s:.3f} (of medians)"
    )


def enable_cpu_kernels() -> None:
    """Register the wav2vec 2.0 CPU kernels (:mod:`espnet_ext.wav2vec2.cpu_kernels`) for the rest of
    the process: our CPU figures are those of the recipes, whose training and decoding on CPU run
    them (``--cpu_kernels auto``). They compute CPU tensors only: a GPU run is the same with them."""
    from espnet_ext.wav2vec2 import cpu_kernels

    cpu_kernels.enable()


def machine() -> str:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"{gpu}, torch {torch.__version__}"
    )


def padded_noise_batch(batch: int, seconds: float, device: str):
    """Zero-padded noise ``(B, L)``, lengths ``(B,)`` from ``seconds`` down to 0.6x, attention mask
    ``(B, L)`` (1 on samples); seeded, so every benchmark times the same batch."""
    torch.manual_seed(1)
    samples = int(seconds * 16000)
    lengths = torch.linspace(samples, samples * 0.6, batch).long()
    attention_mask = (torch.arange(samples) < lengths.unsqueeze(1)).long()
    speech = torch.randn(batch, samples) * 0.1 * attention_mask
    return speech.to(device), lengths.to(device), attention_mask.to(device)


def cropped_noise_batch(batch: int, seconds: float, device: str):
    """Noise ``(B, L)`` of one length (a batch cropped to its shortest utterance), its lengths
    ``(B,)`` (all ``L``) and attention mask (all 1); seeded as :func:`padded_noise_batch`."""
    torch.manual_seed(1)
    samples = int(seconds * 16000)
    speech = torch.randn(batch, samples) * 0.1
    lengths = torch.full((batch,), samples, dtype=torch.long)
    return speech.to(device), lengths.to(device), torch.ones(batch, samples, dtype=torch.long, device=device)


class PeakMemory:
    """``step`` that, on CUDA, keeps the most memory one call allocated above what was allocated
    before it (``peak_bytes``; the first call, which creates optimizer state, is left out; None
    on other devices)."""

    def __init__(self, step: Callable[[], None], device: str) -> None:
        self.step, self.cuda = step, device.startswith("cuda")
        self.calls, self.peak_bytes = 0, None

    def __call__(self) -> None:
        self.calls += 1
        if not self.cuda or self.calls == 1:
            self.step()
            return
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        self.step()
        self.peak_bytes = max(self.peak_bytes or 0, torch.cuda.max_memory_allocated() - before)


class StepFigures(NamedTuple):
    """One model's timed steps and, on CUDA, its peak step memory in bytes."""

    times_s: list[float]
    peak_bytes: int | None

    @property
    def median_s(self) -> float:
        return median(self.times_s)


def time_compared(
    steps: dict[str, Callable[[], None]], repeats: int, device: str, compiling: Sequence[str] = ()
) -> tuple[dict[str, StepFigures], dict[str, float]]:
    """The first step of each name in ``compiling`` timed apart (it compiles), then
    :func:`time_interleaved`; returns each step's figures and those first-step seconds."""
    tracked = {name: PeakMemory(step, device) for name, step in steps.items()}
    first_s = {name: time_steps(tracked[name], warmup=0, repeats=1, device=device).median_s for name in compiling}
    times = time_interleaved(tracked, repeats, device)
    return {name: StepFigures(times[name], tracked[name].peak_bytes) for name in steps}, first_s


def autocast(device: str, bf16: bool):
    """bfloat16 autocast on ``device``'s type when ``bf16``, else nothing."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def step_args(
    argv: Sequence[str] | None, description: str, sizes: Iterable[str], compile_help: str
) -> argparse.Namespace:
    """The options of the training-step benchmarks (pretrain, finetune), parsed from ``argv``:
    ``--size --batch --seconds --repeats --device --bf16 --compile``; exit 2 with a message for
    a batch, length or repeat count below 1 (length: not positive)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(sizes), default="tiny")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0, help="longest utterance, seconds")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast in the forward pass")
    parser.add_argument("--compile", action="store_true", help=compile_help)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.seconds <= 0 or args.repeats < 1:
        parser.error(
            f"expected --batch >= 1, --seconds > 0, --repeats >= 1; found {args.batch}, {args.seconds}, {args.repeats}"
        )
    return args
