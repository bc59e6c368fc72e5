"""Data preparation of a LibriSpeech-layout tree of N utterances: files per second and peak
memory as N grows (the cost must stay linear and the memory flat).

    python -m benchmarks dataprep [--sizes 1000 4000 16000] [--nj 1] [--audio_format flac]
                                        [--source_files 8] [--workdir DIR] [--keep]

For each N a tree ``LibriSpeech/train-clean-100/<reader>/<chapter>/<reader>-<chapter>-<nnnn>.flac``
(+ one ``<reader>-<chapter>.trans.txt`` per chapter; 50 utterances a chapter, 2 chapters a
reader, as in the real part) is built from hard links to ``--source_files`` short FLAC files of
the mini corpus (copies where links are impossible), then two steps run, each in its own
Python process so that its peak memory is its own:

stage 1  corpus -> Kaldi data dir: :func:`espnet_ext.data.corpora.librispeech.prepare_librispeech`
         (what ``egs2/librispeech/asr1/local/data.sh`` runs)
stage 3  the format step: :func:`espnet_ext.data.format.format_wav_scp` (what
         ``python -m espnet_ext.bin.format_wav_scp`` runs): decode every file, dump 16-bit audio

Printed per N and step: seconds (the step itself, timed inside the process, without the
interpreter's start and imports), files per second, milliseconds per file, the process's peak
resident memory (``VmHWM``, read by the step's process at its end: ``ru_maxrss`` would carry
the forking parent's pages over ``exec``) and that peak less the process's peak after its
imports (what the step itself added). Then, between the largest and the smallest N, the ratio
of the per-file time (1.0: linear) and of the peak memory (1.0: flat), and the memory added
per extra utterance. With ``--nj`` above 1 the peak is that of the largest single process.
Each step's log is kept in ``<workdir>/<N>/<step>.log``; a step that fails stops the run
with its last log lines. Every utterance must come through both steps: the counts written
(data dir, dump dir, excluded lists) are checked and printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from espnet_ext.core.log import setup_logging

logger = logging.getLogger("benchmarks.dataprep")

PART = "train-clean-100"
UTTS_PER_CHAPTER = 50  # train-clean-100: 28,539 utterances in 585 chapters
CHAPTERS_PER_READER = 2  # ... by 251 readers
MINI_EN = Path(__file__).resolve().parents[1] / "egs2" / "mini" / "corpus" / "en"
STAGES = {"stage1": "stage 1 prepare", "stage3": "stage 3 format"}


class StepResult(NamedTuple):
    """One step at one N: seconds of work, peak RSS and peak RSS after imports (kB), count out."""

    seconds: float
    peak_kb: int
    imports_kb: int
    count: int
    excluded: int


# ----------------------------------------------------------------------------- the tree


def source_utterances(count: int, corpus_en: Path = MINI_EN) -> list[tuple]:
    """(flac path, upper-case text) of the first ``count`` mini-corpus English utterances."""
    texts = dict(line.split(maxsplit=1) for line in (corpus_en / "text").read_text("utf-8").splitlines())
    flacs = sorted((corpus_en / "wav").glob("*.flac"))[:count]
    if len(flacs) < count:
        raise ValueError(f"{corpus_en / 'wav'}: {len(flacs)} .flac files; expected at least {count}")
    return [(p, texts[p.stem].upper()) for p in flacs]


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem, or links not allowed
        shutil.copyfile(src, dst)


def build_tree(root: Path, num_utts: int, sources: Sequence[tuple]) -> Path:
    """Write ``root/LibriSpeech/<PART>/...`` with ``num_utts`` utterances; return ``root``.

    Utterance ``i`` links to ``sources[i % len(sources)]`` and carries its text.
    """
    part_dir = root / "LibriSpeech" / PART
    per_reader = UTTS_PER_CHAPTER * CHAPTERS_PER_READER
    for first in range(0, num_utts, UTTS_PER_CHAPTER):
        reader = 100 + first // per_reader
        chapter = 1000 * reader + (first % per_reader) // UTTS_PER_CHAPTER
        chapter_dir = part_dir / str(reader) / str(chapter)
        chapter_dir.mkdir(parents=True, exist_ok=True)
        lines = []
        for n, index in enumerate(range(first, min(first + UTTS_PER_CHAPTER, num_utts))):
            flac, text = sources[index % len(sources)]
            utt = f"{reader}-{chapter}-{n:04d}"
            _link(flac, chapter_dir / f"{utt}.flac")
            lines.append(f"{utt} {text}\n")
        (chapter_dir / f"{reader}-{chapter}.trans.txt").write_text("".join(lines), encoding="utf-8")
    return root


# ----------------------------------------------------------------------------- one step, in a child


def child_main(argv: Sequence[str]) -> int:
    """``_child STEP SRC DST RESULT_JSON NJ AUDIO_FORMAT``: run one step, write its timing."""
    step, src, dst, result, nj, audio_format = argv
    setup_logging()
    import soundfile  # noqa: F401  (imported lazily by stage 3: counted with the imports here)

    from espnet_ext.data.corpora.librispeech import prepare_librispeech
    from espnet_ext.data.format import format_wav_scp

    imports_kb = peak_rss_kb()
    start = time.perf_counter()
    if step == "stage1":
        prepare_librispeech(src, dst, [PART])
    else:
        format_wav_scp(src, dst, nj=int(nj), audio_format=audio_format)
    seconds = time.perf_counter() - start
    workers_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # stage 3's pool, if any
    Path(result).write_text(
        json.dumps({"seconds": seconds, "imports_kb": imports_kb, "peak_kb": max(peak_rss_kb(), workers_kb)}),
        encoding="utf-8",
    )
    return 0


def peak_rss_kb() -> int:
    """This process's peak resident memory since it started its program (``VmHWM``, kB).

    Not ``ru_maxrss``: Linux carries into it the peak of the memory the process had before
    ``exec``, i.e. the parent's (forked) pages, hundreds of MB once the parent imported torch.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # no /proc: an upper bound


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def run_step(step: str, src: Path, dst: Path, work: Path, nj: int, audio_format: str) -> StepResult:
    """Run ``step`` in a child process; its timing, peak memory and the utterances it wrote.

    Raises:
        RuntimeError: the child failed (its last log lines are in the message).
    """
    log_path, result_path = work / f"{step}.log", work / f"{step}.json"
    command = [
        sys.executable,
        "-m",
        "benchmarks.dataprep",
        "_child",
        step,
        str(src),
        str(dst),
        str(result_path),
        str(nj),
        audio_format,
    ]
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        logger.debug("%s: ru_maxrss %d kB (includes the parent's pages before exec)", step, usage.ru_maxrss)
    if proc.returncode != 0:
        tail = "".join(log_path.read_text("utf-8", "replace").splitlines(keepends=True)[-10:])
        raise RuntimeError(f"{STAGES[step]} failed with exit status {proc.returncode}; {log_path} ends:\n{tail}")
    timing = json.loads(result_path.read_text("utf-8"))
    out_dir = dst / PART.replace("-", "_") if step == "stage1" else dst
    return StepResult(
        timing["seconds"],
        timing["peak_kb"],
        timing["imports_kb"],
        _count_lines(out_dir / "wav.scp"),
        _count_lines(out_dir / "excluded.txt"),
    )


def measure(num_utts: int, work: Path, sources: Sequence[tuple], nj: int, audio_format: str) -> dict[str, StepResult]:
    """Build the tree for ``num_utts`` in ``work`` and run stage 1 then stage 3 on it."""
    start = time.perf_counter()
    build_tree(work / "corpus", num_utts, sources)
    logger.info("N=%d: tree built in %.1f s; stage 1", num_utts, time.perf_counter() - start)
    results = {"stage1": run_step("stage1", work / "corpus", work / "data", work, nj, audio_format)}
    logger.info("N=%d: stage 1 took %.1f s; stage 3", num_utts, results["stage1"].seconds)
    src = work / "data" / PART.replace("-", "_")
    results["stage3"] = run_step("stage3", src, work / "dump", work, nj, audio_format)
    logger.info("N=%d: stage 3 took %.1f s", num_utts, results["stage3"].seconds)
    return results


# ----------------------------------------------------------------------------- report


def machine() -> str:
    """The machine, without importing torch (whose pages would count in the children's peak)."""
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def format_row(num_utts: int, step: str, r: StepResult) -> str:
    """One table row."""
    return (
        f"  {num_utts:>7d} {STAGES[step]:16s} {r.seconds:9.3f} {num_utts / r.seconds:9.1f} "
        f"{1000 * r.seconds / num_utts:8.3f} {r.peak_kb / 1024:8.1f} {(r.peak_kb - r.imports_kb) / 1024:9.1f} "
        f"{r.count:>7d} {r.excluded:>8d}"
    )


def summary(results: dict[int, dict[str, StepResult]]) -> list[str]:
    """Largest vs smallest N per step: per-file time ratio, peak memory ratio, kB per extra utterance."""
    small, large = min(results), max(results)
    lines = []
    for step in STAGES:
        a, b = results[small][step], results[large][step]
        time_ratio = (b.seconds / large) / (a.seconds / small)
        per_utt = (b.peak_kb - a.peak_kb) * 1024 / (large - small)
        lines.append(
            f"  {STAGES[step]}: N {large} vs {small}: per-file time ratio {time_ratio:.2f} (1.00: linear), "
            f"peak memory ratio {b.peak_kb / a.peak_kb:.2f} (1.00: flat), "
            f"{per_utt:.0f} bytes of peak memory per extra utterance"
        )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks dataprep", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000], help="utterances per tree")
    parser.add_argument("--nj", type=int, default=1, help="stage 3 worker processes (default: 1)")
    parser.add_argument("--audio_format", choices=["flac", "wav"], default="flac", help="stage 3 dump format")
    parser.add_argument("--source_files", type=int, default=8, help="distinct mini-corpus files the tree links to")
    parser.add_argument("--workdir", type=Path, help="where the trees and dumps go (default: a temporary dir)")
    parser.add_argument("--keep", action="store_true", help="keep each N's tree, data dir and dump")
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or args.nj < 1 or args.source_files < 1:
        parser.error(
            f"expected --sizes >= 1, --nj >= 1, --source_files >= 1; found {args.sizes}, {args.nj}, {args.source_files}"
        )
    args.sizes = sorted(set(args.sizes))
    return args


def run(args: argparse.Namespace, workdir: Path) -> dict[int, dict[str, StepResult]]:
    """Measure every size in ``workdir``, printing rows as they come."""
    sources = source_utterances(args.source_files)
    print(
        f"data preparation of a LibriSpeech-layout tree ({PART}, {UTTS_PER_CHAPTER} utterances a chapter, "
        f"{len(sources)} distinct {sources[0][0].suffix} files hard-linked), stage 3 nj {args.nj} "
        f"to {args.audio_format}, {machine()}"
    )
    print(
        f"  {'N':>7s} {'step':16s} {'seconds':>9s} {'files/s':>9s} {'ms/file':>8s} {'peak MB':>8s} "
        f"{'+imports':>9s} {'written':>7s} {'excluded':>8s}",
        flush=True,
    )
    results: dict[int, dict[str, StepResult]] = {}
    for num_utts in args.sizes:
        work = workdir / str(num_utts)
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        results[num_utts] = measure(num_utts, work, sources, args.nj, args.audio_format)
        for step, result in results[num_utts].items():
            print(format_row(num_utts, step, result), flush=True)
        if not args.keep:
            shutil.rmtree(work)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_child"]:
        return child_main(argv[1:])
    args = parse_args(argv)
    setup_logging()
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        results = run(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_dataprep_") as directory:
            results = run(args, Path(directory))
    dropped = [f"N={n} {STAGES[s]}" for n, steps in results.items() for s, r in steps.items() if r.count != n]
    if len(results) > 1:
        print("\n".join(summary(results)))
    if dropped:
        print(f"  utterances missing after: {', '.join(dropped)} (see excluded.txt in --workdir with --keep)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
