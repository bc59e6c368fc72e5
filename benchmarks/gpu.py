"""One prepared GPU check, at most 7 minutes: pre-training and fine-tuning throughput against
the references in fp32 and bf16, padded against cropped batches, ablations of our step and a
profile of it, decoding RTF, torch.compile, a short real pre-training through the mini recipe
(no host-device sync in its step), and the environment; one Markdown table and one JSON file.

    python -m benchmarks gpu [--quick] [--device cuda|cpu] [--out DIR] [--sections NAME ...]
                                   [--limit NAME=SECONDS ...] [--budget SECONDS] [--fault NAME=error|hang ...]

Sections, in this order (``--sections`` picks some):

  env       Python, torch, CUDA, cuDNN, the GPU, its driver, transformers and ESPnet versions.
  pretrain  BASE pre-training step (forward, masks, negatives, backward, AdamW), ours against
            ``transformers.Wav2Vec2ForPreTraining`` on the same weights and batch
            (:mod:`~benchmarks.pretrain`), bf16 autocast and fp32, batches of 8 and 32
            utterances of 8 down to 4.8 s: seconds of audio per second, peak step memory (CUDA),
            the throughput ratio; then which SDPA fast kernels (flash, memory-efficient) our bf16
            step can run with.
  cropped   Pre-training steps on a padded batch (32 utterances of 8 down to 4.8 s, lengths and
            masks) and a cropped one (32 of 8 s, one length: our unpadded path, no mask; Hugging
            Face without an attention mask), ours and Hugging Face's, interleaved, 10 timed steps
            each: median and spread (fastest, slowest, quartiles in the JSON file).
  ablation  Our step on the cropped batch with everything on (no mask, SDPA's kernel choice,
            cudnn.benchmark, fused AdamW) against one change at a time: lengths given (the
            masked path), SDPA restricted to flash / memory-efficient / cuDNN / math, cudnn.benchmark
            off, AdamW not fused; interleaved, 10 timed steps each. Then batch 64, cropped, ours
            (everything on) against Hugging Face.
  profile   torch.profiler over 3 of our steps (cropped batch 32, everything on): the fraction of
            the wall time the GPU runs kernels, the kernels taking the most time.
  finetune  BASE fine-tuning step, the ``wav2vec2`` frontend + CTC against ESPnet's
            ``huggingface`` frontend (:mod:`~benchmarks.finetune`), bf16 and fp32, batch 8.
  decode    CTC greedy decoding RTF (:mod:`~benchmarks.decode`'s built BASE model) at
            batch 1 and 32 on 32 mini-corpus utterances; hypotheses equal at both batch sizes.
  compile   Our BASE pre-training step with ``torch.compile``'d Transformer layers (``inductor``)
            against the eager one (bf16 on CUDA): compilation time, step time after it; then the
            whole Transformer compiled with static shapes and CUDA graphs (``compile_encoder``,
            ``mode="reduce-overhead"``) against eager on a cropped batch.
  recipe    ``egs2/mini/ssl1`` stages 1-11 in a temporary copy of the recipe, the ``mini``
            preset on the whole mini corpus, ``--ngpu 1`` and ``use_amp: true``, training
            stopped after 60 s: the train loss per epoch must be finite and fall. Then two
            training steps (bf16 autocast, backward, clipping, AdamW) of the model built from
            the same config on the recipe's audio, under
            ``torch.cuda.set_sync_debug_mode("error")``: no host-device synchronisation.

Each section runs in its own process (a crash, a hang or a poisoned CUDA context stays there)
with a time limit (``--limit``; together at most ``--budget``, 420 s by default): a section
that fails or runs out of time is recorded with its status and error, with what it measured
before, and the next one runs. The exit status is 1 when any section did not succeed, 0 when
all did. Targets (reported, not asserted): BASE bf16 pre-training at least 1,000 s of audio per
second on one H100/H200-class GPU, and at least 1.5x Hugging Face's throughput on the same GPU
and batch.

``--quick`` runs the same code at tiny sizes (the ``tiny`` model, batches of 1 and 2 one-second
utterances, one timed step each, the recipe's ``tiny`` config on the English part for 2 epochs
of 3 updates). ``--quick --device cpu`` is the test suite's run (``tests/bench/test_bench_gpu.py``;
its time: docs/benchmarks.md). As its timings mean nothing, three things change there: the
recipe section runs beside the others (started first, in its own process; the reports keep the
sections' order); the others are forked from the runner, which imports what each needs (torch,
transformers, ESPnet) once, just before it, instead of each section's new interpreter importing
them again (GPU runs keep new interpreters: a process must not fork once CUDA is initialised);
and the compile section uses the ``aot_eager`` backend (it traces and differentiates the layers
as ``inductor`` does but builds no C++ code, which alone takes about a minute on 2 cores).

Written under ``--out`` (default ``gpu_check``), after every section and every measurement of
the section under way (its status ``running`` until it ends, so that a run killed from outside
keeps what it measured): ``gpu_check.md`` (the table), ``gpu_check.json`` (every number:
per-step times, audio seconds per second, peak memory, losses, limits, errors),
``gpu_check.log`` (each section's output) and ``recipe_train.log`` (the recipe's ESPnet
train.log).

For testing the runner: ``--fault NAME=error`` makes section NAME raise after its
measurements (its figures are kept, its status is failed), ``--fault NAME=hang`` makes it
sleep until its time limit kills it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime
import importlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from benchmarks.gpu_sections import IMPORTS, ROOT, SECTIONS, Row, Section, one_line, plan_for, terminate

FAULTS = ("error", "hang")
MIN_SECTION_S = 5.0  # a section is not started with less of the budget left
PROGRESS_S = 2.0  # how often the runner looks for a running section's new measurements
GRACE_S = 0.1  # of its limit, a section keeps for stopping between measurements
STOP_WAIT_S = 10.0  # a section stopped at its limit gets this long to stop what it started


class Outcome(NamedTuple):
    """A section's run, as the table and the JSON file report it."""

    status: str  # ok, failed, timeout, skipped
    seconds: float
    limit_s: float
    error: str | None
    rows: list[Row]
    results: list[dict[str, Any]]


def key_values(values: Sequence[str], option: str, parse, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """``NAME=VALUE`` options, NAME a section, VALUE through ``parse``; a usage error otherwise."""
    out = {}
    for text in values:
        name, _, value = text.partition("=")
        try:
            if name not in SECTIONS:
                raise ValueError(f"unknown section '{name}'")
            out[name] = parse(value)
        except ValueError as e:
            parser.error(f"{option} {text}: expected NAME=VALUE with NAME one of {', '.join(SECTIONS)}; {e}")
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks gpu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes: the same code, a smoke test (on CPU: about a minute on 2 cores)",
    )
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when there is one)")
    parser.add_argument("--out", default="gpu_check", help="where the table, the JSON file and the logs go")
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=list(SECTIONS),
        default=list(SECTIONS),
        help="the sections to run (default: all)",
    )
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=SECONDS",
        help="a section's time limit (defaults: see gpu_check.json)",
    )
    parser.add_argument(
        "--budget", type=float, default=None, help="seconds for all sections together (default 420, quick 900)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=error|hang",
        help="for testing: make a section fail after its measurements, or hang",
    )
    parser.add_argument("--section", choices=list(SECTIONS), help=argparse.SUPPRESS)  # a section's own process
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--seconds_left", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.limits = key_values(args.limit, "--limit", positive_float, parser)
    args.faults = key_values(args.fault, "--fault", fault_kind, parser)
    if args.budget is not None and args.budget <= 0:
        parser.error(f"--budget: expected seconds > 0; found {args.budget}")
    import torch  # (initialises no CUDA context; the sections run in processes of their own)

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device; use --device cpu")
    return args


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(f"expected seconds > 0; found {text}")
    return value


def fault_kind(text: str) -> str:
    if text not in FAULTS:
        raise ValueError(f"expected one of {', '.join(FAULTS)}; found '{text}'")
    return text


# ----------------------------------------------------------------------------- a section's process


def run_here(args: argparse.Namespace) -> int:
    """Run section ``args.section`` in this process (the CPU kernels registered, as the benchmarks
    it calls register them); 0 when every measurement succeeded."""
    from benchmarks.common import enable_cpu_kernels

    enable_cpu_kernels()
    plan = plan_for(args.quick, args.device)
    section = Section(
        args.section, plan, args.device, Path(args.out), Path(args.result), time.monotonic() + args.seconds_left
    )
    section.save()
    signal.signal(signal.SIGTERM, terminate)
    fault = args.faults.get(args.section)
    if fault == "hang":
        time.sleep(10**6)
    try:
        SECTIONS[args.section](section)
        if fault == "error":
            raise RuntimeError("forced failure (--fault)")
    except Exception as e:  # noqa: BLE001  (recorded for the runner)
        traceback.print_exc()
        section.errors.append(one_line(e))
        section.save()
    return 1 if section.errors else 0


# ----------------------------------------------------------------------------- the runner


class Forked:
    """A section's process forked from the runner (:func:`fork_section`), waited for as a Popen."""

    def __init__(self, pid: int) -> None:
        self.pid, self.returncode = pid, None
        self._lock = threading.Lock()  # the thread that waits and the one that stops it (Ctrl-C)

    def poll(self) -> int | None:
        with self._lock:
            if self.returncode is None:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() >= end:
                raise subprocess.TimeoutExpired(f"section process {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode


class Started(NamedTuple):
    """A section's process, started by :func:`start_section`."""

    proc: subprocess.Popen | Forked
    start: float  # time.monotonic()
    limit_s: float
    result: Path
    log: Path


def start_section(name: str, args: argparse.Namespace, limit_s: float, work: Path) -> Started:
    """Section ``name`` in a child process of its own process group, output to ``work/NAME.log``:
    forked from this one when the plan says so (:func:`preload` ran), else a new interpreter."""
    result, log = work / f"{name}.json", work / f"{name}.log"
    plan = plan_for(args.quick, args.device)
    if plan.fork and name not in plan.beside:
        return Started(fork_section(name, args, limit_s, result, log), time.monotonic(), limit_s, result, log)
    argv = [
        sys.executable,
        "-m",
        "benchmarks.gpu",
        "--section",
        name,
        "--result",
        str(result),
        "--seconds_left",
        f"{limit_s * (1 - GRACE_S):.1f}",
        "--device",
        args.device,
        "--out",
        args.out,
    ]
    argv += ["--quick"] * args.quick + [f"--fault={k}={v}" for k, v in args.faults.items()]
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # the checkout first on the path: benchmarks is not installed
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    if args.quick and args.device == "cpu":
        env.setdefault("OMP_NUM_THREADS", "1")  # tiny tensors: a second thread costs more than it saves
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return Started(proc, time.monotonic(), limit_s, result, log)


def preload(section: str) -> float:
    """Import in this process what ``section`` imports (:data:`~benchmarks.gpu_sections.IMPORTS`;
    what an earlier section imported is there already), with the torch threads a section's own
    process would get, before it is forked; the seconds it took."""
    start = time.monotonic()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as start_section gives a quick CPU run's processes
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    for module in IMPORTS[section]:
        importlib.import_module(module)
    return time.monotonic() - start


def fork_section(name: str, args: argparse.Namespace, limit_s: float, result: Path, log: Path) -> Forked:
    """Section ``name`` in a forked child: a session (process group) of its own, stdout and
    stderr to ``log``, :func:`run_here`'s status as its exit status."""
    section_args = argparse.Namespace(
        **dict(vars(args), section=name, result=str(result), seconds_left=limit_s * (1 - GRACE_S))
    )
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return Forked(pid)
    status = 1
    try:
        os.setsid()
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        status = run_here(section_args)
    except BaseException:  # noqa: BLE001  (a forked child never returns into the runner)
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def finish_section(started: Started, progress: Callable[[Outcome], None] | None = None) -> Outcome:
    """Wait for a started section until its time limit (then stop it); its outcome. While it runs,
    ``progress`` gets its outcome so far (status ``running``) each time it records a measurement."""
    proc, limit_s = started.proc, started.limit_s
    seen = None
    try:
        while True:
            left = limit_s - (time.monotonic() - started.start)
            try:
                status: int | None = proc.wait(timeout=max(min(left, PROGRESS_S), 0.0))
                break
            except subprocess.TimeoutExpired:
                if left <= PROGRESS_S:
                    raise
            stamp = started.result.stat().st_mtime_ns if started.result.is_file() else None
            if progress is not None and stamp != seen:
                seen = stamp
                data = read_result(started.result)
                running = Outcome("running", time.monotonic() - started.start, limit_s, None, *rows_of(data))
                progress(running)
    except subprocess.TimeoutExpired:
        stop(proc)
        status = None
    except BaseException:  # (Ctrl-C): no section left running
        stop(proc)
        raise
    seconds = time.monotonic() - started.start
    data = read_result(started.result)
    rows = [Row(*row) for row in data["rows"]]
    if status == 0:
        return Outcome("ok", seconds, limit_s, None, rows, data["results"])
    if status is None:
        return Outcome("timeout", seconds, limit_s, f"killed at its time limit, {limit_s:.0f} s", rows, data["results"])
    tail = " ".join(started.log.read_text(errors="replace").strip().splitlines()[-3:])[-300:]
    error = "; ".join(data["errors"]) or f"exit status {status}; its log ends: {tail}"
    return Outcome("failed", seconds, limit_s, error, rows, data["results"])


def read_result(path: Path) -> dict[str, Any]:
    """A section's result file (empty when it has written none, or while it is being replaced)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return dict(rows=[], results=[], errors=[])


def rows_of(data: dict[str, Any]) -> tuple[list[Row], list[dict[str, Any]]]:
    return [Row(*row) for row in data["rows"]], data["results"]


def run_section(
    name: str,
    args: argparse.Namespace,
    limit_s: float,
    work: Path,
    progress: Callable[[Outcome], None] | None = None,
) -> Outcome:
    """Section ``name`` in a child process (its own process group, killed after ``limit_s``)."""
    return finish_section(start_section(name, args, limit_s, work), progress)


def stop(proc: subprocess.Popen | Forked) -> None:
    """Stop a section's process: SIGTERM (it kills the process groups it started, see
    :func:`~benchmarks.gpu_sections.terminate`), then SIGKILL to its group (compile
    workers and the like) after ``STOP_WAIT_S``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_all(args: argparse.Namespace) -> int:
    """The sections in order, each after the one before, except the plan's ``beside`` ones:
    started first, they run beside the others (each waited for, and stopped at its limit, by a
    thread of its own) and are reported at the end. The table, the JSON file and the log keep
    the sections' order."""
    plan = plan_for(args.quick, args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    budget = args.budget or plan.budget_s
    header = dict(
        command="python -m benchmarks gpu " + shlex.join(args.argv),
        started=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        device=args.device,
        quick=args.quick,
        budget_s=budget,
        plan=plan._asdict(),
    )
    outcomes: dict[str, Outcome] = {}
    beside: dict[str, tuple[Started, concurrent.futures.Future]] = {}
    waiters = concurrent.futures.ThreadPoolExecutor(max_workers=max(len(plan.beside), 1))
    start = time.monotonic()
    work_dir = tempfile.TemporaryDirectory(prefix="gpu_check_")
    work = Path(work_dir.name)  # each section's result and log

    def limit_for(name: str) -> float | None:
        """The section's time limit; None (it is skipped) when too little of the budget is left."""
        left = budget - (time.monotonic() - start)
        limit = min(args.limits.get(name, plan.limits[name]), left)
        print(
            f"[gpu check] {name}: running (limit {limit:.0f} s{', beside the others' * (name in plan.beside)})",
            flush=True,
        )
        if left >= MIN_SECTION_S:
            return limit
        record(
            name, Outcome("skipped", 0.0, 0.0, f"not started: {left:.0f} s of the {budget:.0f} s budget left", [], [])
        )
        return None

    running: dict[str, Outcome] = {}  # sections under way, with what they measured so far
    lock = threading.Lock()  # the sections beside the others report from threads of their own

    def record(name: str, outcome: Outcome) -> None:
        with lock:
            outcomes[name] = outcome
            running.pop(name, None)
            print(f"[gpu check] {name}: {status_text(outcome)}", flush=True)
            done = {n: outcomes[n] for n in args.sections if n in outcomes}
            with (out / "gpu_check.log").open("w") as log:
                for n, o in done.items():
                    if o.status != "skipped":
                        log.write(f"===== {n}: {o.status} ({o.seconds:.1f} s)\n")
                        log.write((work / f"{n}.log").read_text(errors="replace"))
            write_current()

    def write_current() -> None:
        """The reports of the finished sections and of those under way (status ``running``), so
        that a run killed from outside keeps every measurement made."""
        current = {n: outcomes.get(n) or running.get(n) for n in args.sections if n in outcomes or n in running}
        write_reports(out, header, current, time.monotonic() - start)

    def progress_of(name: str):
        def progress(outcome: Outcome) -> None:
            with lock:
                if name not in outcomes:
                    running[name] = outcome
                    write_current()

        return progress

    (out / "gpu_check.log").write_text("")
    try:
        for name in [n for n in args.sections if n in plan.beside]:
            limit = limit_for(name)
            if limit is not None:
                started = start_section(name, args, limit, work)
                beside[name] = started, waiters.submit(finish_section, started, progress_of(name))
        for name in [n for n in args.sections if n not in plan.beside]:
            if plan.fork and budget - (time.monotonic() - start) >= MIN_SECTION_S:
                seconds = preload(name)
                header["preload_s"] = header.get("preload_s", 0.0) + seconds
                print(f"[gpu check] {name}: its imports in the runner, {seconds:.1f} s", flush=True)
            limit = limit_for(name)
            if limit is not None:
                record(name, run_section(name, args, limit, work, progress_of(name)))
        for name in list(beside):
            record(name, beside.pop(name)[1].result())
    finally:  # (Ctrl-C): no section left running
        for started, _ in beside.values():
            stop(started.proc)
        waiters.shutdown()
        work_dir.cleanup()
    failed = [name for name in args.sections if name in outcomes and outcomes[name].status != "ok"]
    print((out / "gpu_check.md").read_text())
    print(
        f"[gpu check] {len(outcomes) - len(failed)} of {len(outcomes)} sections ok"
        f"{'; not ok: ' + ', '.join(failed) if failed else ''}; written: {out}/gpu_check.md, gpu_check.json, "
        f"gpu_check.log",
        flush=True,
    )
    return 1 if failed else 0


# ----------------------------------------------------------------------------- reports


def status_text(outcome: Outcome) -> str:
    text = f"{outcome.status}, {outcome.seconds:.0f} s"
    return text if outcome.error is None else f"{text}: {outcome.error}"


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown(header: dict[str, Any], outcomes: dict[str, Outcome], total_s: float) -> str:
    """The table: one row per measurement, the section's status on its first row."""
    ok = sum(o.status == "ok" for o in outcomes.values())
    imports = (
        f"; {header['preload_s']:.0f} s of it the forked sections' imports in the runner"
        if "preload_s" in header
        else ""
    )
    lines = [
        f"GPU check, {header['started']}, device {header['device']}{' (quick)' if header['quick'] else ''}: "
        f"{ok} of {len(outcomes)} sections ok, {total_s:.0f} s (budget {header['budget_s']:.0f} s{imports}).",
        f"Command: `{header['command']}`",
        "",
        "| section | status | measurement | ours | reference | ours vs reference | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, outcome in outcomes.items():
        rows = outcome.rows or [Row("—")]
        for i, row in enumerate(rows):
            status = status_text(outcome) if i == 0 else ""
            lines.append("| " + " | ".join(cell(x) for x in (name if i == 0 else "", status, *row)) + " |")
    return "\n".join(lines) + "\n"


def write_reports(out: Path, header: dict[str, Any], outcomes: dict[str, Outcome], total_s: float) -> None:
    failed = [name for name, o in outcomes.items() if o.status != "ok"]
    data = dict(
        header,
        total_s=total_s,
        exit_status=1 if failed else 0,
        not_ok=failed,
        sections={
            name: dict(
                status=o.status,
                seconds=o.seconds,
                limit_s=o.limit_s,
                error=o.error,
                rows=[r._asdict() for r in o.rows],
                results=o.results,
            )
            for name, o in outcomes.items()
        },
    )
    (out / "gpu_check.json").write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    (out / "gpu_check.md").write_text(markdown(header, outcomes, total_s))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.section:
        return run_here(args)
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
