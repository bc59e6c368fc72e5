"""The nine sections of ``python -m benchmarks gpu`` (see :mod:`benchmarks.gpu`).

Each section runs in its own process (:func:`run_here`) and calls into the other benchmarks'
building blocks (:mod:`~benchmarks.pretrain`, :mod:`~benchmarks.finetune`,
:mod:`~benchmarks.decode`) or the real recipe (``egs2/mini/ssl1``). A section records
each measurement as soon as it has it (:class:`Section`): a row of the Markdown table and a
dict of numbers for the JSON file, both written to its result file at once, so that a
section killed at its time limit keeps what it measured. A measurement that raises is
recorded as a failed row and the section goes on with the next one; the section then fails.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import shlex
import signal
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
MINI_SSL1 = ROOT / "egs2" / "mini" / "ssl1"
TRAIN_LOG = "recipe_train.log"  # the recipe's train.log, copied under --out
BF16_TARGET_AUDIO_PER_S = 1000.0  # BASE bf16 pre-training, one H100/H200-class GPU
SPEEDUP_TARGET = 1.5  # ours against transformers.Wav2Vec2ForPreTraining, same GPU and batch


class Plan(NamedTuple):
    """Sizes of one run: full (BASE, a few minutes on a GPU) or quick (tiny, any device)."""

    size: str  # "base" or "tiny": pretrain, finetune, decode and compile sections
    seconds: float  # longest utterance of the timed batches (down to 0.6x)
    pretrain_batches: tuple[int, int]
    finetune_batch: int
    compile_batch: int
    decode_utts: int  # mini-corpus English utterances decoded
    decode_batches: tuple[int, int]
    repeats: int  # timed steps per model, after one warm-up step
    step_batch: int  # cropped and ablation sections: utterances per batch
    big_batch: int  # the ablation's larger batch
    step_repeats: int  # cropped and ablation sections: timed steps per variant, interleaved
    profile_steps: int  # steps under torch.profiler
    recipe_config: str  # egs2/mini/ssl1 config
    recipe_ssl_args: str  # extra training options (--ssl_args)
    recipe_options: tuple[str, ...]  # more run.sh options
    train_s: float  # stage 11 is stopped after this many seconds if still running
    limits: dict[str, float]  # seconds per section
    budget_s: float  # all sections together
    compile_backend: str  # torch.compile's backend in the compile section
    beside: tuple[str, ...]  # sections started first, running beside the others (not timed alone)
    fork: bool = False  # the other sections forked from the runner, which imports their modules once


FULL = Plan(
    size="base",
    seconds=8.0,
    pretrain_batches=(8, 32),
    finetune_batch=8,
    compile_batch=8,
    decode_utts=32,
    decode_batches=(1, 32),
    repeats=3,
    step_batch=32,
    big_batch=64,
    step_repeats=10,
    profile_steps=3,
    recipe_config="conf/tuning/train_ssl_w2v2_mini.yaml",
    recipe_ssl_args="--max_epoch 200 --use_amp true",
    recipe_options=("--local_data_opts", "--synth_utts 0"),
    train_s=60.0,
    limits=dict(
        env=15, pretrain=70, cropped=50, ablation=90, profile=35, finetune=35, decode=40, compile=100, recipe=130
    ),
    budget_s=420.0,
    compile_backend="inductor",
    beside=(),
)
QUICK = Plan(
    size="tiny",
    seconds=1.0,
    pretrain_batches=(1, 2),
    finetune_batch=2,
    compile_batch=2,
    decode_utts=4,
    decode_batches=(1, 32),
    repeats=1,
    step_batch=2,
    big_batch=4,
    step_repeats=2,
    profile_steps=1,
    recipe_config="conf/tuning/train_ssl_w2v2_tiny.yaml",
    recipe_ssl_args=(
        "--max_epoch 2 --num_iters_per_epoch 3 --batch_bins 100000 --use_amp true --scheduler_conf warmup_steps=3"
    ),
    recipe_options=("--local_data_opts", "--langs en --synth_utts 0", "--nj", "1"),
    train_s=120.0,
    limits=dict(
        env=60, pretrain=120, cropped=90, ablation=120, profile=60, finetune=120, decode=150, compile=150, recipe=300
    ),
    budget_s=900.0,
    compile_backend="inductor",
    beside=(),
)
#: ``--quick`` on a CPU, the test suite's run, under a minute on 2 cores: its timings mean nothing,
#: so the recipe (mostly ESPnet process start-ups) runs beside the other sections, those are
#: forked from the runner once it has imported torch, transformers and ESPnet (:data:`IMPORTS`)
#: instead of each importing them (no CUDA there: a process that has used CUDA cannot be forked),
#: and the compile section's backend traces and differentiates the layers as inductor does but
#: generates no C++ (inductor's C++ build alone takes about a minute on 2 cores).
QUICK_CPU = QUICK._replace(compile_backend="aot_eager", beside=("recipe",), fork=True)


def plan_for(quick: bool, device: str) -> Plan:
    """The plan of a run: :data:`FULL`, or :data:`QUICK` (:data:`QUICK_CPU` off CUDA)."""
    if not quick:
        return FULL
    return QUICK if device.startswith("cuda") else QUICK_CPU


class Row(NamedTuple):
    """One line of the Markdown table (the section and its status are added by the runner)."""

    measurement: str
    ours: str = ""
    reference: str = ""
    comparison: str = ""  # ours against the reference
    target: str = ""


class Section:
    """What a section's code gets: the plan and device, and where its measurements go.

    Args:
        result_path: the JSON file the runner reads: ``{"rows", "results", "errors"}``,
            rewritten after every measurement.
        deadline: ``time.monotonic()`` after which no new measurement is started.
    """

    def __init__(self, name: str, plan: Plan, device: str, out_dir: Path, result_path: Path, deadline: float) -> None:
        self.name, self.plan, self.device, self.out_dir = name, plan, device, out_dir
        self.result_path, self.deadline = result_path, deadline
        self.rows: list[Row] = []
        self.results: list[dict[str, Any]] = []
        self.errors: list[str] = []

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def add(self, row: Row, **numbers: Any) -> None:
        """Record a measurement: its table row and its numbers."""
        print(f"[{self.name}] {' | '.join(row)}", flush=True)
        self.rows.append(row)
        self.results.append(dict(measurement=row.measurement, **numbers))
        self.save()

    def fail(self, measurement: str, error: str) -> None:
        """Record a failed measurement; the section will fail."""
        self.errors.append(f"{measurement}: {error}")
        self.add(Row(measurement, f"FAILED: {error}"), error=error)

    def save(self) -> None:
        tmp = self.result_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(rows=self.rows, results=self.results, errors=self.errors), indent=1))
        os.replace(tmp, self.result_path)

    def time_left(self) -> float:
        return self.deadline - time.monotonic()

    def attempt(self, measurement: str, measure: Callable[[], None]) -> bool:
        """Run ``measure`` (which calls :meth:`add`); an exception, or no time left, is recorded as
        a failed ``measurement`` and the section goes on. Returns whether it succeeded."""
        if self.time_left() <= 0:
            self.fail(measurement, "not started: the section's time limit was reached")
            return False
        try:
            measure()
            return True
        except Exception as e:  # noqa: BLE001  (recorded; the next measurement runs)
            traceback.print_exc()
            self.fail(measurement, one_line(e))
            if self.cuda:
                import torch

                torch.cuda.empty_cache()
            return False


def one_line(error: BaseException, limit: int = 300) -> str:
    """``Type: message (at file:line in function)`` on one line, at most ``limit`` characters; the
    place is the innermost frame of this project's code (where a sync check fired, say)."""
    ours = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if f.filename.startswith(str(ROOT)) and "/.venv/" not in f.filename
    ]
    where = f" (at {Path(ours[-1].filename).relative_to(ROOT)}:{ours[-1].lineno} in {ours[-1].name})" if ours else ""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    text = text if len(text) + len(where) <= limit else text[: limit - len(where) - 3] + "..."
    return text + where


def number(x: float) -> str:
    """Three significant figures or so: ``1,234``, ``56.7``, ``0.0123``."""
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if x >= 10 else f"{x:.3g}"


def step_cell(audio_s: float, seconds: float, peak_bytes: int | None) -> str:
    """``1,234 audio-s/s (0.041 s/step, 3.2 GiB)``."""
    memory = f", {peak_bytes / 2**30:.1f} GiB" if peak_bytes is not None else ""
    return f"{number(audio_s / seconds)} audio-s/s ({seconds:.3g} s/step{memory})"


def step_numbers(audio_s: float, figures) -> dict[str, Any]:
    """A :class:`~benchmarks.common.StepFigures` as JSON numbers."""
    return dict(
        s_per_step=figures.median_s,
        times_s=figures.times_s,
        audio_per_s=audio_s / figures.median_s,
        peak_step_memory_bytes=figures.peak_bytes,
    )


def batch_label(batch: int, seconds: float) -> str:
    return f"batch {batch} × {seconds:g}–{0.6 * seconds:g} s" if batch > 1 else f"batch 1 × {seconds:g} s"


# ----------------------------------------------------------------------------- (6) environment


def env_section(s: Section) -> None:
    """Python, torch, CUDA, cuDNN, the GPU and its driver, package versions, the commit."""
    import importlib.metadata

    import torch

    info: dict[str, Any] = dict(
        python=platform.python_version(),
        machine=platform.machine(),
        cpus=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        torch_cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version(),
        commit=git_commit(),
    )
    for package in ("transformers", "espnet", "s3prl"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    packages = ", ".join(f"{p} {info[p] or 'missing'}" for p in ("torch", "transformers", "espnet"))
    s.add(
        Row(
            "software",
            f"Python {info['python']}, {packages}; CUDA {info['torch_cuda'] or 'none'}, "
            f"cuDNN {info['cudnn'] or 'none'}; commit {info['commit'] or 'unknown'}",
        ),
        **info,
    )
    if not s.cuda:
        threads = f"{info['torch_threads']} torch thread{'s' * (info['torch_threads'] != 1)}"
        s.add(Row("GPU", f"none (device {s.device}): {info['cpus']} CPUs, {threads}"), gpu=None)
        return
    props = torch.cuda.get_device_properties(0)
    gpu = dict(
        gpu=props.name,
        capability=f"{props.major}.{props.minor}",
        memory_gib=props.total_memory / 2**30,
        multiprocessors=props.multi_processor_count,
        bf16=torch.cuda.is_bf16_supported(),
        driver=nvidia_driver(),
        sdpa_enabled=dict(
            flash=torch.backends.cuda.flash_sdp_enabled(),
            mem_efficient=torch.backends.cuda.mem_efficient_sdp_enabled(),
            math=torch.backends.cuda.math_sdp_enabled(),
        ),
    )
    s.add(
        Row(
            "GPU",
            f"{gpu['gpu']}, {gpu['memory_gib']:.0f} GiB, sm {gpu['capability']}, "
            f"{gpu['multiprocessors']} SMs, driver {gpu['driver'] or 'unknown'}, bf16 "
            f"{'yes' if gpu['bf16'] else 'no'}; {info['cpus']} CPUs",
        ),
        **gpu,
    )


def git_commit() -> str | None:
    """The project's commit, ``+`` when the tree has changes; None without git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+" if dirty else "")


def nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


# ----------------------------------------------------------------------------- (1) pre-training


def pretrain_section(s: Section) -> None:
    """BASE pre-training step, ours against ``transformers.Wav2Vec2ForPreTraining`` on the same
    weights and batch: bf16 autocast and fp32, two batch sizes; then which SDPA kernels our
    bf16 step can use."""
    from benchmarks import pretrain

    models = pretrain.build_models(s.plan.size, s.device)
    for bf16 in (True, False):
        for batch in s.plan.pretrain_batches:
            precision = "bf16" if bf16 else "fp32"
            label = f"{s.plan.size} pre-training step, {precision}, {batch_label(batch, s.plan.seconds)}"
            s.attempt(label, lambda label=label, batch=batch, bf16=bf16: pretrain_row(s, label, *models, batch, bf16))
    s.attempt("SDPA fast kernels in our bf16 pre-training step", lambda: sdpa_row(s, models[0]))


def pretrain_row(s: Section, label: str, ours, reference, batch: int, bf16: bool) -> None:
    from benchmarks import pretrain

    r = pretrain.compare(ours, reference, batch, s.plan.seconds, s.plan.repeats, s.device, bf16)
    mine, theirs = r.steps["ours"], r.steps["reference"]
    speedup = theirs.median_s / mine.median_s
    rate = r.audio_s / mine.median_s
    targets = pretrain_targets(s, bf16, rate, speedup)
    s.add(
        Row(
            label,
            step_cell(r.audio_s, mine.median_s, mine.peak_bytes),
            step_cell(r.audio_s, theirs.median_s, theirs.peak_bytes),
            f"{speedup:.2f}× HF's throughput",
            "; ".join(f"{k}: {v}" for k, v in targets.items()),
        ),
        size=s.plan.size,
        precision="bf16" if bf16 else "fp32",
        batch=batch,
        longest_s=s.plan.seconds,
        audio_s=r.audio_s,
        ours=dict(step_numbers(r.audio_s, mine), first_loss=r.first_loss["ours"]),
        reference=dict(step_numbers(r.audio_s, theirs), first_loss=r.first_loss["reference"]),
        speedup=speedup,
        targets=targets,
    )


def pretrain_targets(s: Section, bf16: bool, rate: float, speedup: float) -> dict[str, str]:
    """The two GPU targets (docs/benchmarks.md): met / not met for BASE bf16 on CUDA, else n/a."""
    applies = s.cuda and s.plan.size == "base" and bf16
    why = "" if applies else " (BASE, bf16, GPU only)"
    return {
        f"≥ {BF16_TARGET_AUDIO_PER_S:,.0f} audio-s/s": verdict(rate >= BF16_TARGET_AUDIO_PER_S)
        if applies
        else "n/a" + why,
        f"≥ {SPEEDUP_TARGET:g}× HF": verdict(speedup >= SPEEDUP_TARGET) if applies else "n/a" + why,
    }


def verdict(met: bool) -> str:
    return "met" if met else "not met"


def sdpa_row(s: Section, ours) -> None:
    """One bf16 training step of ours with SDPA restricted to each fast kernel in turn."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from benchmarks.common import padded_noise_batch
    from benchmarks.pretrain import our_step

    speech, lengths, _ = padded_noise_batch(s.plan.pretrain_batches[0], s.plan.seconds, s.device)
    kernels = {}
    for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("memory-efficient", SDPBackend.EFFICIENT_ATTENTION)):
        try:
            with sdpa_kernel([backend]):
                our_step(ours, speech, lengths, True, [])()
            kernels[name] = "ok"
        except RuntimeError as e:
            kernels[name] = "refused: " + one_line(e, 160)
    found = "; ".join(f"{k}: {v}" for k, v in kernels.items())
    if not s.cuda:  # training on CPU writes attention out (dropout) and has no such kernels
        found = f"n/a on {s.device} (ran: {found})"
    s.add(Row("SDPA fast kernels in our bf16 pre-training step", found), kernels=kernels, device=s.device)


# ----------------------------------------------------------------------------- cropped against padded batches


def spread_cell(audio_s: float, figures) -> str:
    """``1,234 audio-s/s (median 0.041 s/step, 0.040–0.043 over 10 steps, 3.2 GiB)``."""
    times = figures.times_s
    memory = f", {figures.peak_bytes / 2**30:.1f} GiB" if figures.peak_bytes is not None else ""
    return (
        f"{number(audio_s / figures.median_s)} audio-s/s (median {figures.median_s:.3g} s/step, "
        f"{min(times):.3g}–{max(times):.3g} over {steps_text(len(times))}{memory})"
    )


def steps_text(count: int) -> str:
    return f"{count} step{'s' * (count != 1)}"


def spread_numbers(audio_s: float, figures) -> dict[str, Any]:
    """:func:`step_numbers` with the spread: the fastest and slowest step, the interquartile range."""
    ordered = sorted(figures.times_s)
    quartile = lambda q: ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]  # noqa: E731
    return dict(
        step_numbers(audio_s, figures),
        min_s=ordered[0],
        max_s=ordered[-1],
        q25_s=quartile(0.25),
        q75_s=quartile(0.75),
        steps=len(ordered),
    )


def precision_of(s: Section) -> tuple[bool, str]:
    """The training steps' precision: bf16 autocast on CUDA, float32 elsewhere."""
    return s.cuda, "bf16" if s.cuda else "fp32"


def cropped_section(s: Section) -> None:
    """Pre-training steps on a padded batch (``B`` utterances of 8 down to 4.8 s, lengths and masks)
    and on a cropped one (``B`` of 8 s, one length: our unpadded path, Hugging Face without an
    attention mask), ours and Hugging Face's, the four timed interleaved over ``step_repeats`` steps."""
    from benchmarks import pretrain
    from benchmarks.common import cropped_noise_batch, padded_noise_batch, time_compared

    ours, reference = pretrain.build_models(s.plan.size, s.device)
    bf16, precision = precision_of(s)
    batch, seconds = s.plan.step_batch, s.plan.seconds
    padded, cropped = padded_noise_batch(batch, seconds, s.device), cropped_noise_batch(batch, seconds, s.device)
    losses: dict[str, list[float]] = {}
    steps = {}
    for kind, (speech, lengths, mask) in (("padded", padded), ("cropped", cropped)):
        one_length = kind == "cropped"
        losses[f"ours {kind}"], losses[f"reference {kind}"] = [], []
        steps[f"ours {kind}"] = pretrain.our_step(
            ours, speech, None if one_length else lengths, bf16, losses[f"ours {kind}"]
        )
        steps[f"reference {kind}"] = pretrain.reference_step(
            reference, speech, None if one_length else mask, bf16, losses[f"reference {kind}"]
        )
    figures, _ = time_compared(steps, s.plan.step_repeats, s.device)
    audio = {"padded": float(padded[1].sum()) / 16000, "cropped": float(cropped[1].sum()) / 16000}
    labels = {
        "padded": f"padded {batch} × {seconds:g}–{0.6 * seconds:g} s (lengths, masks)",
        "cropped": f"cropped {batch} × {seconds:g} s (one length: no lengths, no mask)",
    }
    for kind in ("padded", "cropped"):
        mine, theirs = figures[f"ours {kind}"], figures[f"reference {kind}"]
        speedup = theirs.median_s / mine.median_s
        s.add(
            Row(
                f"{s.plan.size} pre-training step, {precision}, {labels[kind]}",
                spread_cell(audio[kind], mine),
                spread_cell(audio[kind], theirs),
                f"{speedup:.2f}× HF's throughput",
                "n/a",
            ),
            size=s.plan.size,
            precision=precision,
            batch=batch,
            kind=kind,
            audio_s=audio[kind],
            ours=dict(spread_numbers(audio[kind], mine), first_loss=losses[f"ours {kind}"][0]),
            reference=dict(spread_numbers(audio[kind], theirs), first_loss=losses[f"reference {kind}"][0]),
            speedup=speedup,
        )
    rates = {name: audio[name.split()[-1]] / figures[name].median_s for name in steps}  # audio-s per second
    gain = {who: rates[f"{who} cropped"] / rates[f"{who} padded"] for who in ("ours", "reference")}
    s.add(
        Row(
            f"cropped against padded batch, {precision}, batch {batch}: audio-s/s ratio",
            f"ours {gain['ours']:.2f}×",
            f"HF {gain['reference']:.2f}×",
            f"ours over HF: cropped {rates['ours cropped'] / rates['reference cropped']:.2f}×, "
            f"padded {rates['ours padded'] / rates['reference padded']:.2f}×",
            "n/a",
        ),
        audio_per_s=rates,
        cropped_over_padded=gain,
    )


# ----------------------------------------------------------------------------- ablations


@contextlib.contextmanager
def cudnn_benchmark(on: bool):
    """``torch.backends.cudnn.benchmark = on`` for the block."""
    import torch

    saved = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved


def sdpa_backends() -> dict[str, Any]:
    """The SDPA backends by name (cuDNN attention where this torch has it)."""
    from torch.nn.attention import SDPBackend

    backends = {"flash": SDPBackend.FLASH_ATTENTION, "memory-efficient": SDPBackend.EFFICIENT_ATTENTION}
    if hasattr(SDPBackend, "CUDNN_ATTENTION"):
        backends["cuDNN"] = SDPBackend.CUDNN_ATTENTION
    backends["math"] = SDPBackend.MATH
    return backends


def ablation_section(s: Section) -> None:
    """Our pre-training step on the cropped batch with everything on (no mask, SDPA's choice of
    kernel, ``cudnn.benchmark``, fused AdamW), against the same with one thing changed: lengths
    given (the masked path; lengths on a GPU are not read, so masks are built), SDPA restricted to
    one backend, ``cudnn.benchmark`` off, AdamW not fused; all interleaved. Then batch
    ``big_batch``, ours (everything on) against Hugging Face."""
    s.attempt("ablations of our step (cropped batch)", lambda: ablation_rows(s))
    s.attempt(f"batch {s.plan.big_batch}, cropped", lambda: big_batch_row(s))


def ablation_rows(s: Section) -> None:
    from torch.nn.attention import sdpa_kernel

    from benchmarks import pretrain
    from benchmarks.common import cropped_noise_batch, time_interleaved

    ours, _ = pretrain.build_models(s.plan.size, s.device)
    bf16, precision = precision_of(s)
    batch, seconds = s.plan.step_batch, s.plan.seconds
    speech, lengths, _ = cropped_noise_batch(batch, seconds, s.device)

    def within(*contexts):
        def enter():
            stack = contextlib.ExitStack()
            for make in contexts:
                stack.enter_context(make())
            return stack

        return enter

    on = lambda: cudnn_benchmark(True)  # noqa: E731
    variants = {
        "everything on": dict(lengths=None, fused=True, around=within(on)),
        "lengths given (masked path)": dict(lengths=lengths, fused=True, around=within(on)),
    }
    for name, backend in sdpa_backends().items():
        variants[f"SDPA {name} only"] = dict(
            lengths=None, fused=True, around=within(on, lambda backend=backend: sdpa_kernel([backend]))
        )
    variants["cudnn.benchmark off"] = dict(lengths=None, fused=True, around=within(lambda: cudnn_benchmark(False)))
    variants["AdamW not fused (foreach)"] = dict(lengths=None, fused=False, around=within(on))
    steps, refused = {}, {}
    for name, options in variants.items():
        step = pretrain.our_step(
            ours, speech, options["lengths"], bf16, [], fused=options["fused"], around=options["around"]
        )
        try:
            step()  # refused backends raise here
            steps[name] = step
        except RuntimeError as e:
            refused[name] = one_line(e, 160)
    times = time_interleaved(steps, s.plan.step_repeats, s.device)
    audio_s = float(lengths.sum()) / 16000
    from benchmarks.common import StepFigures

    base = StepFigures(times["everything on"], None)
    for name in variants:
        label = f"ablation, {precision}, cropped {batch} × {seconds:g} s: {name}"
        if name in refused:
            s.add(Row(label, f"refused: {refused[name]}", "", "", "n/a"), variant=name, refused=refused[name])
            continue
        figures = StepFigures(times[name], None)
        ratio = base.median_s / figures.median_s
        s.add(
            Row(label, spread_cell(audio_s, figures), "", f"{ratio:.2f}× everything-on's throughput", "n/a"),
            variant=name,
            batch=batch,
            precision=precision,
            audio_s=audio_s,
            ours=spread_numbers(audio_s, figures),
            relative_to_everything_on=ratio,
        )


def big_batch_row(s: Section) -> None:
    import torch

    from benchmarks import pretrain
    from benchmarks.common import cropped_noise_batch, time_compared

    if s.cuda:
        torch.cuda.empty_cache()
    ours, reference = pretrain.build_models(s.plan.size, s.device)
    bf16, precision = precision_of(s)
    batch, seconds = s.plan.big_batch, s.plan.seconds
    speech, lengths, _ = cropped_noise_batch(batch, seconds, s.device)
    steps = {
        "ours": pretrain.our_step(ours, speech, None, bf16, [], fused=True, around=lambda: cudnn_benchmark(True)),
        "reference": pretrain.reference_step(reference, speech, None, bf16, []),
    }
    figures, _ = time_compared(steps, s.plan.step_repeats, s.device)
    audio_s = float(lengths.sum()) / 16000
    speedup = figures["reference"].median_s / figures["ours"].median_s
    s.add(
        Row(
            f"{s.plan.size} pre-training step, {precision}, cropped {batch} × {seconds:g} s (ours: everything on)",
            spread_cell(audio_s, figures["ours"]),
            spread_cell(audio_s, figures["reference"]),
            f"{speedup:.2f}× HF's throughput",
            "n/a",
        ),
        batch=batch,
        precision=precision,
        audio_s=audio_s,
        ours=spread_numbers(audio_s, figures["ours"]),
        reference=spread_numbers(audio_s, figures["reference"]),
        speedup=speedup,
    )


# ----------------------------------------------------------------------------- profile


def profile_section(s: Section) -> None:
    """``torch.profiler`` over ``profile_steps`` of our step on the cropped batch (everything on):
    the fraction of the wall time the GPU runs a kernel, and the kernels that take the most time
    (on CPU: the operators, and no busy fraction)."""
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    from benchmarks import pretrain
    from benchmarks.common import cropped_noise_batch

    ours, _ = pretrain.build_models(s.plan.size, s.device)
    bf16, precision = precision_of(s)
    batch, seconds = s.plan.step_batch, s.plan.seconds
    speech, lengths, _ = cropped_noise_batch(batch, seconds, s.device)
    step = pretrain.our_step(ours, speech, None, bf16, [], fused=s.cuda, around=lambda: cudnn_benchmark(True))
    for _ in range(2):
        step()
    activities = [ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * s.cuda
    sync = torch.cuda.synchronize if s.cuda else (lambda: None)
    sync()
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        for _ in range(s.plan.profile_steps):
            step()
        sync()
        wall_us = (time.perf_counter() - start) * 1e6
    device = DeviceType.CUDA if s.cuda else DeviceType.CPU

    def self_time(event) -> float:
        if s.cuda:
            return getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0.0)
        return event.self_cpu_time_total

    averages = [e for e in prof.key_averages() if e.device_type == device and self_time(e) > 0]
    total = sum(self_time(e) for e in averages) or 1.0
    top = sorted(averages, key=self_time, reverse=True)[:15]
    kernels = [dict(name=e.key, ms=self_time(e) / 1e3, share=self_time(e) / total, calls=e.count) for e in top]
    busy = None
    if s.cuda:
        spans = sorted(
            (e.time_range.start, e.time_range.end) for e in prof.events() if e.device_type == DeviceType.CUDA
        )
        covered, end = 0.0, -math.inf
        for a, b in spans:  # the union of the kernels' intervals
            if b > end:
                covered += b - max(a, end)
                end = b
        busy = covered / wall_us
    what = "kernels" if s.cuda else "operators (self CPU time)"
    label = (
        f"torch.profiler, {steps_text(s.plan.profile_steps)} of our {precision} step, cropped {batch} × {seconds:g} s"
    )
    s.add(
        Row(
            f"{label}: GPU busy",
            f"{busy:.0%} of the wall time ({total / 1e3:.0f} ms of kernels in {wall_us / 1e3:.0f} ms)"
            if busy is not None
            else f"n/a on {s.device} ({wall_us / 1e3:.0f} ms wall)",
            "",
            "",
            "n/a",
        ),
        busy_fraction=busy,
        wall_ms=wall_us / 1e3,
        total_ms=total / 1e3,
        steps=s.plan.profile_steps,
    )
    s.add(
        Row(
            f"{label}: top {what}",
            "; ".join(f"{k['name'][:48]} {k['share']:.0%}" for k in kernels[:6]),
            "",
            "",
            "n/a",
        ),
        top=kernels,
    )


# ----------------------------------------------------------------------------- (2) fine-tuning


def finetune_section(s: Section) -> None:
    """Fine-tuning step, the ``wav2vec2`` frontend + CTC against ESPnet's ``huggingface``
    frontend on the same weights and batch, bf16 autocast and fp32."""
    from benchmarks import finetune

    frontends = finetune.build_frontends(s.plan.size, s.device)
    for bf16 in (True, False):
        label = (
            f"{s.plan.size} fine-tuning step (frontend + CTC), {'bf16' if bf16 else 'fp32'}, "
            f"{batch_label(s.plan.finetune_batch, s.plan.seconds)}"
        )
        s.attempt(label, lambda label=label, bf16=bf16: finetune_row(s, label, frontends, bf16))


def finetune_row(s: Section, label: str, frontends, bf16: bool) -> None:
    from benchmarks import finetune
    from benchmarks.common import padded_noise_batch

    figures, _ = finetune.compare(frontends, s.plan.finetune_batch, s.plan.seconds, s.plan.repeats, s.device, bf16)
    audio_s = float(padded_noise_batch(s.plan.finetune_batch, s.plan.seconds, "cpu")[1].sum()) / 16000
    mine, theirs = figures[finetune.OURS], figures[finetune.REFERENCE]
    speedup = theirs.median_s / mine.median_s
    s.add(
        Row(
            label,
            step_cell(audio_s, mine.median_s, mine.peak_bytes),
            step_cell(audio_s, theirs.median_s, theirs.peak_bytes),
            f"{speedup:.2f}× ESPnet's throughput",
            "n/a",
        ),
        size=s.plan.size,
        precision="bf16" if bf16 else "fp32",
        batch=s.plan.finetune_batch,
        longest_s=s.plan.seconds,
        audio_s=audio_s,
        ours=step_numbers(audio_s, mine),
        reference=step_numbers(audio_s, theirs),
        speedup=speedup,
    )


# ----------------------------------------------------------------------------- (3) decoding


def decode_section(s: Section) -> None:
    """CTC greedy decoding real-time factor of the built model (``decode`` benchmark's) at two
    batch sizes, on mini-corpus English utterances; hypotheses must not depend on the batch."""
    from benchmarks import decode

    decode.quiet_espnet()
    utts = decode.mini_utterances(s.plan.decode_utts)
    audio_s = sum(len(u.audio) for u in utts) / decode.SAMPLE_RATE
    with tempfile.TemporaryDirectory() as directory:
        files = decode.build_model_files(s.plan.size, directory, utts, blank_fraction=0.75)
        model, to_text = decode.load_ours(files, s.device)
    hyps: dict[int, dict[str, Any]] = {b: {} for b in s.plan.decode_batches}
    steps = {b: decode.our_decoder(model, to_text, utts, b, hyps[b]) for b in s.plan.decode_batches}
    from benchmarks.common import time_interleaved

    times = time_interleaved(steps, s.plan.repeats, s.device)
    first = s.plan.decode_batches[0]
    for batch, values in times.items():
        seconds = sorted(values)[len(values) // 2]
        same = hyps[batch] == hyps[first]
        label = (
            f"{s.plan.size} CTC greedy decoding, {len(utts)} mini utterances ({audio_s:.1f} s), "
            f"batch {batch}{'' if batch <= len(utts) else f' (one batch of {len(utts)})'}"
        )
        s.add(
            Row(
                label,
                f"RTF {seconds / audio_s:.3g} ({number(audio_s / seconds)} audio-s/s)",
                "",
                f"hypotheses equal batch {first}'s: {'yes' if same else 'NO'}",
                "n/a",
            ),
            size=s.plan.size,
            batch=batch,
            utterances=len(utts),
            audio_s=audio_s,
            seconds=seconds,
            times_s=values,
            rtf=seconds / audio_s,
            hypotheses_equal_first_batch=same,
        )
        if not same:
            s.errors.append(f"{label}: hypotheses differ from batch {first}'s")
            s.save()


# ----------------------------------------------------------------------------- (4) torch.compile


def compile_section(s: Section) -> None:
    """Our pre-training step with ``torch.compile``'d Transformer layers (the plan's backend)
    against the eager one (bf16 autocast on CUDA, fp32 elsewhere), on the same weights and
    padded batch: the compilation time (first step) and the step time after it. Then the whole
    Transformer compiled with static shapes (``compile_encoder``; ``mode="reduce-overhead"``,
    CUDA graphs, with inductor on CUDA) against eager on a cropped batch (the unpadded path)."""
    from benchmarks import pretrain

    ours, _ = pretrain.build_models(s.plan.size, s.device)
    layers = f"{s.plan.size} pre-training step, compiled Transformer layers vs eager"
    s.attempt(layers, lambda: compile_layers_row(s, ours))
    encoder = f"{s.plan.size} pre-training step, whole Transformer compiled with static shapes vs eager"
    s.attempt(encoder, lambda: compile_encoder_row(s, ours))


def compile_layers_row(s: Section, ours) -> None:
    import copy

    from benchmarks import pretrain
    from benchmarks.common import padded_noise_batch, time_compared
    from espnet_ext.wav2vec2.compile import compile_layers

    batch, bf16, backend = s.plan.compile_batch, s.cuda, s.plan.compile_backend
    speech, lengths, _ = padded_noise_batch(batch, s.plan.seconds, s.device)
    compiled = copy.deepcopy(ours)
    layers = f"ours, {compile_layers(compiled, backend=backend)} layers compiled"
    steps = {
        "eager": pretrain.our_step(ours, speech, lengths, bf16, []),
        "compiled": pretrain.our_step(compiled, speech, lengths, bf16, []),
    }
    figures, first_s = time_compared(steps, s.plan.repeats, s.device, compiling=["compiled"])
    eager, compiled_figures = figures["eager"], figures["compiled"]
    audio_s = float(lengths.sum()) / 16000
    speedup = eager.median_s / compiled_figures.median_s
    s.add(
        Row(
            f"{s.plan.size} pre-training step, {'bf16' if bf16 else 'fp32'}, {batch_label(batch, s.plan.seconds)}: "
            f"{layers} (torch.compile, backend {backend}) vs eager",
            "compiled: " + step_cell(audio_s, compiled_figures.median_s, compiled_figures.peak_bytes),
            "eager: " + step_cell(audio_s, eager.median_s, eager.peak_bytes),
            f"{speedup:.2f}× eager's throughput; compilation {first_s['compiled']:.1f} s (first step)",
            "n/a",
        ),
        size=s.plan.size,
        precision="bf16" if bf16 else "fp32",
        batch=batch,
        audio_s=audio_s,
        compiled=step_numbers(audio_s, compiled_figures),
        eager=step_numbers(audio_s, eager),
        speedup=speedup,
        first_step_s=first_s["compiled"],
        layers=layers,
        backend=backend,
    )


def compile_encoder_row(s: Section, ours) -> None:
    import copy

    from benchmarks import pretrain
    from benchmarks.common import cropped_noise_batch, time_compared
    from espnet_ext.wav2vec2.compile import compile_encoder

    batch, bf16, backend = s.plan.compile_batch, s.cuda, s.plan.compile_backend
    mode = "reduce-overhead" if backend == "inductor" and s.cuda else None
    speech, lengths, _ = cropped_noise_batch(batch, s.plan.seconds, s.device)
    compiled = copy.deepcopy(ours)
    compile_encoder(compiled, backend=backend, mode=mode)
    steps = {
        "eager": pretrain.our_step(ours, speech, None, bf16, []),
        "compiled": pretrain.our_step(compiled, speech, None, bf16, []),
    }
    repeats = max(s.plan.repeats, s.plan.step_repeats // 2)  # CUDA graphs record over the first calls
    figures, first_s = time_compared(steps, repeats, s.device, compiling=["compiled"])
    eager, compiled_figures = figures["eager"], figures["compiled"]
    audio_s = float(lengths.sum()) / 16000
    speedup = eager.median_s / compiled_figures.median_s
    how = f"backend {backend}" + (f", mode {mode}" if mode else "")
    s.add(
        Row(
            f"{s.plan.size} pre-training step, {'bf16' if bf16 else 'fp32'}, cropped {batch} × {s.plan.seconds:g} s: "
            f"ours, whole Transformer compiled, static shapes (compile_encoder, {how}) vs eager",
            "compiled: " + spread_cell(audio_s, compiled_figures),
            "eager: " + spread_cell(audio_s, eager),
            f"{speedup:.2f}× eager's throughput; compilation {first_s['compiled']:.1f} s (first step)",
            "n/a",
        ),
        size=s.plan.size,
        precision="bf16" if bf16 else "fp32",
        batch=batch,
        audio_s=audio_s,
        compiled=spread_numbers(audio_s, compiled_figures),
        eager=spread_numbers(audio_s, eager),
        speedup=speedup,
        first_step_s=first_s["compiled"],
        backend=backend,
        mode=mode,
    )


# ----------------------------------------------------------------------------- (5) real pre-training


class Epoch(NamedTuple):
    """One ``Nepoch results`` line of ESPnet's train.log."""

    epoch: int
    train_loss: float
    valid_loss: float | None
    train_time_s: float | None  # the epoch's training part, seconds
    updates: int | None  # training iterations so far


def parse_epochs(log_text: str) -> list[Epoch]:
    """The epoch results of an ESPnet train.log."""
    epochs = []
    for line in log_text.splitlines():
        found = re.search(r"(\d+)epoch results: \[train\] (.*?)(?:\[valid\] (.*?))?(?:\[att_plot\]|$)", line)
        if not found:
            continue
        train, valid = found.group(2), found.group(3) or ""
        value = lambda text, key: re.search(rf"(?:^|, ){key}=([^,\s]+)", text)  # noqa: E731
        time_s = value(train, "time")
        epochs.append(
            Epoch(
                int(found.group(1)),
                float(value(train, "loss").group(1)),
                float(value(valid, "loss").group(1)) if value(valid, "loss") else None,
                float(time_s.group(1)) if time_s else None,
                int(value(train, "total_count").group(1)) if value(train, "total_count") else None,
            )
        )
    return epochs


def make_recipe(dest: Path) -> Path:
    """A copy of ``egs2/mini/ssl1`` in ``dest``: links to its scripts and configs, its own data."""
    dest.mkdir(parents=True)
    for name in ("ssl.sh", "path.sh", "cmd.sh", "db.sh", "run.sh", "conf", "local"):
        (dest / name).symlink_to((MINI_SSL1 / name).resolve())
    return dest


def recipe_section(s: Section) -> None:
    """``egs2/mini/ssl1`` stages 1-11 in a copy of the recipe (``--ngpu 1`` on CUDA, ``use_amp``),
    training stopped after ``train_s`` seconds; the loss must be finite and fall. Then a training
    step of the model built from the same config under ``torch.cuda.set_sync_debug_mode("error")``."""
    with tempfile.TemporaryDirectory(prefix="gpu_check_ssl1_") as tmp:
        recipe = make_recipe(Path(tmp) / "ssl1")
        argv = [
            "./run.sh",
            "--ngpu",
            "1" if s.cuda else "0",
            "--ssl_config",
            s.plan.recipe_config,
            "--ssl_args",
            s.plan.recipe_ssl_args,
            *s.plan.recipe_options,
        ]
        env = dict(os.environ, ESPNET_EXT_ROOT=str(ROOT))
        if s.cuda:
            env.setdefault("CUDA_VISIBLE_DEVICES", "0")
        if s.attempt("stages 1-10 (data, format, filter, shapes)", lambda: recipe_data(s, recipe, argv, env)):
            s.attempt(
                f"stage 11: pre-training {Path(s.plan.recipe_config).stem}, ngpu {1 if s.cuda else 0}, "
                f"{s.plan.recipe_ssl_args}",
                lambda: recipe_train(s, recipe, argv, env),
            )
        s.attempt(
            "no host–device sync in a training step of the same model (set_sync_debug_mode error)",
            lambda: sync_row(s, recipe),
        )


#: Process groups started by :func:`run_logged` and still running: :func:`terminate` kills them.
STARTED_GROUPS: set[int] = set()


def terminate(signum: int, frame: Any) -> None:
    """SIGTERM handler of a section's process: the runner stops it at its time limit; what it
    started in process groups of their own (the recipe's jobs) goes with it."""
    for group in list(STARTED_GROUPS):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    os._exit(128 + signum)


def run_logged(argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int | None, float]:
    """Run ``argv`` in its own process group, output to this process's; kill the group after
    ``timeout`` seconds. Returns (exit status, None if killed; seconds)."""
    print(f"$ (cd {cwd} && {shlex.join(argv)})", flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True)
    STARTED_GROUPS.add(proc.pid)
    try:
        return proc.wait(timeout=max(timeout, 1.0)), time.monotonic() - start
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None, time.monotonic() - start
    finally:
        STARTED_GROUPS.discard(proc.pid)


def recipe_data(s: Section, recipe: Path, argv: list[str], env: dict[str, str]) -> None:
    reserve = min(s.plan.train_s / 2 + 20, s.time_left() / 2)  # for stage 11 and the sync check
    status, seconds = run_logged(argv + ["--stop_stage", "10"], recipe, env, s.time_left() - reserve)
    if status != 0:
        raise RuntimeError(
            f"run.sh --stop_stage 10 {'was killed at the time limit' if status is None else 'failed'}"
            f" after {seconds:.0f} s (exit status {status}; see the section's log)"
        )
    utts = sum(1 for _ in (recipe / "dump" / "raw" / "train" / "wav.scp").open())
    s.add(
        Row("stages 1-10 (data, format, filter, shapes)", f"{seconds:.0f} s, {utts} training utterances"),
        seconds=seconds,
        train_utterances=utts,
    )


def recipe_train(s: Section, recipe: Path, argv: list[str], env: dict[str, str]) -> None:
    budget = min(s.plan.train_s, s.time_left() - 20)  # 20 s kept for the sync check
    status, seconds = run_logged(argv + ["--stage", "11", "--stop_stage", "11"], recipe, env, budget)
    exp = recipe / "exp" / f"ssl_{Path(s.plan.recipe_config).stem}"
    log_text = (exp / "train.log").read_text(errors="replace") if (exp / "train.log").is_file() else ""
    (s.out_dir / TRAIN_LOG).write_text(log_text)
    epochs = parse_epochs(log_text)
    how = "stopped at the time budget" if status is None else "finished" if status == 0 else f"failed ({status})"
    losses = [e.train_loss for e in epochs]
    finite = bool(losses) and all(map(math.isfinite, losses))
    falls = len(losses) >= 2 and losses[-1] < losses[0]
    updates = epochs[-1].updates if epochs else 0
    loss_text = (
        " → ".join(f"{x:.3g}" for x in losses)
        if len(losses) <= 4
        else f"{losses[0]:.3g} → {losses[1]:.3g} → … → {losses[-1]:.3g}"
    )
    epoch_s = sorted(e.train_time_s for e in epochs if e.train_time_s is not None)
    done = f"{len(epochs)} epochs, {updates} updates in {seconds:.0f} s ({how})"
    if epoch_s:
        done += f"; {epoch_s[len(epoch_s) // 2]:.3g} s per epoch"
    s.add(
        Row(
            f"stage 11: pre-training {exp.name[4:]}, ngpu {1 if s.cuda else 0}, {s.plan.recipe_ssl_args}",
            done,
            "",
            f"train loss per epoch {loss_text}" if losses else "",
            f"loss finite: {verdict(finite)}; falls: {verdict(falls)}",
        ),
        seconds=seconds,
        status=status,
        stopped_at_budget=status is None,
        epochs=[e._asdict() for e in epochs],
        updates=updates,
        loss_finite=finite,
        loss_falls=falls,
    )
    if status not in (0, None):
        raise RuntimeError(f"stage 11 failed with exit status {status} (see {TRAIN_LOG})")
    if not (finite and falls):
        raise RuntimeError(f"train loss per epoch {losses}: expected finite values that fall (see {TRAIN_LOG})")


def sync_row(s: Section, recipe: Path) -> None:
    """Training steps (bf16 autocast, backward, gradient clipping, AdamW) of the recipe config's
    model on a batch of the recipe's audio; on CUDA, after one warm-up step, under
    ``set_sync_debug_mode("error")``, which raises at any host-device synchronisation."""
    import torch
    import yaml

    from benchmarks.common import autocast
    from espnet_ext.espnet.ssl_model import ESPnetWav2Vec2Model

    conf = yaml.safe_load((recipe / s.plan.recipe_config).read_text())
    torch.manual_seed(0)
    model = ESPnetWav2Vec2Model(**conf["model_conf"]).to(s.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), **conf.get("optim_conf", {}))
    speech, lengths = recipe_batch(recipe, conf["batch_bins"])
    speech, lengths = speech.to(s.device), lengths.to(s.device)
    losses = []

    def step() -> None:
        with autocast(s.device, True):
            loss, _, _ = model(speech, lengths)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), conf.get("grad_clip", 10.0))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())

    step()  # warm-up: lazy initialisation (cuBLAS handles, optimizer state) may synchronise
    if s.cuda:
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(2):
            step()
    finally:
        if s.cuda:
            torch.cuda.set_sync_debug_mode("default")
    values = [float(x) for x in losses]
    if not all(map(math.isfinite, values)):
        raise RuntimeError(f"losses {values}: expected finite values")
    found = "none in 2 steps" if s.cuda else "n/a (no CUDA; the steps ran)"
    s.add(
        Row(
            "no host–device sync in a training step of the same model (set_sync_debug_mode error)",
            found,
            "",
            f"{speech.size(0)} utterances × {speech.size(1) / 16000:.1f} s, bf16 autocast, losses "
            + ", ".join(f"{x:.3g}" for x in values),
            "met" if s.cuda else "n/a",
        ),
        checked=s.cuda,
        losses=values,
        batch=list(speech.shape),
    )


def recipe_batch(recipe: Path, batch_bins: int):
    """The longest training utterances of the recipe's dump, up to ``batch_bins`` samples, cropped
    to the shortest (the configs' ``crop_audio``); padded noise when there is no dump (stages
    1-10 failed), so that the check still runs."""
    from benchmarks.common import padded_noise_batch
    from benchmarks.decode import data_dir_utterances, pad_batch

    dump = recipe / "dump" / "raw" / "train"
    if not (dump / "wav.scp").is_file():
        print(f"{dump}/wav.scp: missing; the sync check uses noise", flush=True)
        return padded_noise_batch(4, 4.0, "cpu")[:2]
    taken, total = [], 0
    with contextlib.chdir(recipe):  # wav.scp's paths are the recipe's
        utts = data_dir_utterances(str(dump), 0)
    for u in sorted(utts, key=lambda u: -len(u.audio)):  # the longest first, as ESPnet's numel batches
        if taken and total + len(u.audio) > batch_bins:
            break
        taken.append(u)
        total += len(u.audio)
    speech, lengths = pad_batch(taken)
    shortest = int(lengths.min())
    return speech[:, :shortest].contiguous(), lengths.clamp(max=shortest)


#: What each section imports, in order (``espnet_ext`` before ESPnet: it quiets NLTK's download
#: attempt): what a :attr:`Plan.fork` runner imports once before forking the sections.
IMPORTS: dict[str, tuple[str, ...]] = {
    "env": ("torch",),
    "pretrain": (
        "transformers.models.wav2vec2.modeling_wav2vec2",
        "espnet_ext.wav2vec2.pretraining",
        "benchmarks.pretrain",
    ),
    "cropped": ("benchmarks.pretrain",),
    "ablation": ("torch.nn.attention", "benchmarks.pretrain"),
    "profile": ("torch.profiler", "benchmarks.pretrain"),
    "finetune": ("espnet_ext", "espnet2.asr.frontend.huggingface", "espnet_ext.espnet.frontend", "benchmarks.finetune"),
    "decode": (
        "espnet_ext",
        "espnet_ext.espnet.tasks",
        "espnet2.text.build_tokenizer",
        "espnet2.text.token_id_converter",
        "espnet_ext.espnet.ctc_greedy",
        "benchmarks.decode",
    ),
    "compile": ("torch._dynamo", "espnet_ext.wav2vec2.compile", "benchmarks.pretrain"),
    "recipe": ("espnet_ext", "espnet_ext.espnet.ssl_model", "benchmarks.decode"),
}

SECTIONS: dict[str, Callable[[Section], None]] = {
    "env": env_section,
    "pretrain": pretrain_section,
    "cropped": cropped_section,
    "ablation": ablation_section,
    "profile": profile_section,
    "finetune": finetune_section,
    "decode": decode_section,
    "compile": compile_section,
    "recipe": recipe_section,
}
