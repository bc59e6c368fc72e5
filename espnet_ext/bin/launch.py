"""Run a command as one job or an array of jobs, locally or through slurm (Kaldi's run.pl idea).

    launch.py [options] [JOB=1:N] LOGFILE COMMAND [ARGS...]

``JOB`` in LOGFILE and in the command is replaced by the job index (1..N). Each job's
output goes to its log file, which starts with the command and ends with its exit code and
elapsed time. The launcher waits for all jobs and exits non-zero when any failed, naming
the failed jobs' log files.

A single job's progress lines (those starting with ``espnet_ext.core.progress.PREFIX``: the trainer
prints one per epoch) are also shown on stderr as they reach the log, dated and named by the
log file, e.g. ``2026-11-22T10:04:10 (train.log) epoch 3/10: train loss 52.1, ...``; when the
job fails, the log's last lines follow (without those already shown).

Backends (``--backend``, usually set once in a recipe's cmd.sh):
  local   jobs run here, at most --max_jobs_run at a time (default: number of CPU cores).
  slurm   each job is ``srun`` (blocking, so arrays run in parallel as separate sruns),
          with --gpu N as ``--gres=gpu:N``, --num_nodes N as ``--nodes N --ntasks-per-node 1``
          (multi-node DDP: the command is one task per node, which ESPnet's ``--dist_launcher
          slurm`` reads from slurm's environment), --mem, --time, --partition. The local backend
          refuses --num_nodes > 1.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TextIO

from espnet_ext.core.progress import progress_message

_JOB_RANGE = re.compile(r"^([A-Za-z_]\w*)=(\d+):(\d+)$")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=("local", "slurm"), default="local")
    parser.add_argument("--gpu", type=int, default=0, help="GPUs per job")
    parser.add_argument("--num_nodes", type=int, default=1, help="nodes per job (slurm)")
    parser.add_argument("--max_jobs_run", type=int, default=0, help="local: parallel jobs (0: cores)")
    parser.add_argument("--mem", default="", help="slurm --mem, e.g. 16G")
    parser.add_argument("--time", default="", help="slurm --time, e.g. 24:00:00")
    parser.add_argument("--partition", default="", help="slurm partition")
    parser.add_argument("--cpus_per_task", type=int, default=0, help="slurm --cpus-per-task")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="[JOB=1:N] LOGFILE COMMAND...")
    return parser


def job_indices(args: list[str]):
    """Split ``[JOB=a:b] LOG CMD...`` into (variable, indices, log, command)."""
    match = _JOB_RANGE.match(args[0]) if args else None
    if match:
        var, start, end = match.group(1), int(match.group(2)), int(match.group(3))
        if end < start:
            raise ValueError(f"empty job range {args[0]}")
        args = args[1:]
        indices = list(range(start, end + 1))
    else:
        var, indices = None, [None]
    if len(args) < 2:
        raise ValueError("expected LOGFILE and a COMMAND after the options")
    return var, indices, args[0], args[1:]


def substitute(text: str, var: str | None, index: int | None) -> str:
    if var is None:
        return text
    return re.sub(rf"\b{re.escape(var)}\b", str(index), text)


def command_line(words: Sequence[str]) -> str:
    """One word is taken as a shell command line; several are quoted word by word."""
    return words[0] if len(words) == 1 else " ".join(shlex.quote(w) for w in words)


def slurm_prefix(opts: argparse.Namespace) -> list[str]:
    prefix = ["srun", "--job-name", "espnet_ext", "--nodes", str(opts.num_nodes)]
    prefix += ["--ntasks-per-node", "1"]
    if opts.gpu > 0:
        prefix += [f"--gres=gpu:{opts.gpu}"]
    for flag, value in (("--mem", opts.mem), ("--time", opts.time), ("--partition", opts.partition)):
        if value:
            prefix += [flag, value]
    if opts.cpus_per_task:
        prefix += ["--cpus-per-task", str(opts.cpus_per_task)]
    return prefix


class ProgressEcho:
    """Follows a log file as a job writes it and echoes its progress lines to ``out``.

    :meth:`poll` reads what was appended since the last call; a line is looked at once it is
    complete (``final``: the rest too), so each progress line is shown exactly once.
    """

    def __init__(self, log: Path, out: TextIO):
        self.log, self.out = log, out
        self.offset, self.partial = 0, b""

    def poll(self, final: bool = False) -> None:
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = b"" if final else lines.pop()
        for raw in lines:
            message = progress_message(raw.decode("utf-8", errors="replace").rstrip("\r"))
            if message is not None:
                print(f"{datetime.now():%Y-%m-%dT%H:%M:%S} ({self.log.name}) {message}", file=self.out, flush=True)


def wait_echoing(proc: subprocess.Popen, echo: ProgressEcho | None, interval: float = 0.5) -> int:
    """Wait for ``proc`` (killed if waiting is interrupted), polling ``echo`` meanwhile."""
    try:
        while True:
            try:
                rc = proc.wait(timeout=interval if echo is not None else None)
                break
            except subprocess.TimeoutExpired:
                echo.poll()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if echo is not None:
        echo.poll(final=True)
    return rc


def run_job(opts: argparse.Namespace, log: Path, cmd: str, echo: bool = False) -> int:
    """Run ``cmd`` with its output in ``log``; ``echo``: show its progress lines on stderr."""
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = ["bash", "-c", f"set -o pipefail; {cmd}"]
    if opts.backend == "slurm":
        argv = slurm_prefix(opts) + argv
    start = time.time()
    with open(log, "w", encoding="utf-8") as f:
        f.write(f"# {cmd}\n# Started at {datetime.now():%c}\n")
        f.flush()
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        rc = wait_echoing(proc, ProgressEcho(log, sys.stderr) if echo else None)
        f.write(f"# Accounting: time={time.time() - start:.0f} threads=1\n")
        f.write(f"# Ended (code {rc}) at {datetime.now():%c}, elapsed time {time.time() - start:.0f} seconds\n")
    return rc


def main(argv: Sequence[str] | None = None) -> int:
    opts = get_parser().parse_args(argv)
    try:
        var, indices, log, words = job_indices(opts.args)
    except ValueError as e:
        print(f"launch.py: {e}", file=sys.stderr)
        return 2
    if opts.backend == "local" and opts.num_nodes > 1:
        print(
            f"launch.py: --num_nodes {opts.num_nodes}: expected --backend slurm (local runs on this machine)",
            file=sys.stderr,
        )
        return 2
    cmd = command_line(words)
    jobs = [(Path(substitute(log, var, i)), substitute(cmd, var, i)) for i in indices]
    workers = opts.max_jobs_run or (os.cpu_count() or 1)
    if opts.backend == "slurm":
        workers = len(jobs)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
        codes = list(pool.map(lambda job: run_job(opts, *job, echo=len(jobs) == 1), jobs))
    failed = [str(log) for (log, _), rc in zip(jobs, codes) if rc != 0]
    if failed:
        print(
            f"launch.py: {len(failed)} of {len(jobs)} jobs failed; see {', '.join(failed[:5])}"
            + (" ..." if len(failed) > 5 else ""),
            file=sys.stderr,
        )
        if len(jobs) == 1:  # its progress lines are on the terminal already
            lines = Path(failed[0]).read_text(encoding="utf-8", errors="replace").splitlines()
            tail = [line for line in lines if progress_message(line) is None][-20:]
            print("\n".join(tail), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
