"""Concatenated pre-training audio as files or as sox pipes (``ssl.sh --concat_audio``): the time to
prepare it (stages 2 and 3) and to load it in training, on the mini corpus.

    python -m benchmarks concat [--concat 6] [--repeats 3] [--langs en zh ja] [--workdir DIR] [--keep]

The source is every utterance of the embedded mini corpus in ``--langs``
(``egs2/mini/corpus/{en,zh,ja}``: 420 FLAC files of 0.8-3 s in all). For each of ``files`` and
``pipes`` it runs, in this process:

stage 2  :func:`espnet_ext.data.pretrain_set.prepare_pretrain_set` with ``--concat N``: ``files``
         reads every member and writes each group once as WAV; ``pipes`` reads the members'
         headers and writes ``sox a.flac b.flac ... -t wav - |`` into ``wav.scp``
stage 3  :func:`espnet_ext.data.format.format_wav_scp` (one job, FLAC): decodes every entry (a
         ``files`` group from its WAV, a ``pipes`` group by running its sox command) and dumps it
load     what pre-training reads, one epoch: every utterance of a ``wav.scp`` through ESPnet's
         ``sound`` loader (``espnet2.train.dataset.ESPnetDataset``, the data type of the ssl1
         training's ``speech,sound`` option), from stage 3's dump and from stage 2's own
         ``wav.scp`` (the loader reads files; a ``... |`` command it cannot open is counted as failed)

Each step is timed ``--repeats`` times (the best is printed, with the spread) on a fresh
directory; the bytes stage 2 writes and the dump's are printed too. Both dumps must hold the same
samples (checked): whichever way the audio is joined, training reads the same files.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from espnet_ext.core.log import setup_logging
from espnet_ext.data.format import format_wav_scp
from espnet_ext.data.kaldi_files import read_map, write_map, write_spk2utt
from espnet_ext.data.pretrain_set import prepare_pretrain_set

logger = logging.getLogger("benchmarks.concat")

MINI = Path(__file__).resolve().parents[1] / "egs2" / "mini" / "corpus"
MODES = ("files", "pipes")


def source_dir(out: Path, langs: Sequence[str], corpus: Path = MINI) -> int:
    """A data dir of every mini-corpus utterance of ``langs`` in ``out``; return its size."""
    scp, utt2spk = {}, {}
    for lang in langs:
        for utt, spk in read_map(corpus / lang / "utt2spk").items():
            scp[utt] = str((corpus / lang / "wav" / f"{utt}.flac").resolve())
            utt2spk[utt] = spk
    out.mkdir(parents=True, exist_ok=True)
    write_map(out / "wav.scp", scp)
    write_map(out / "utt2spk", utt2spk)
    write_spk2utt(out / "spk2utt", utt2spk)
    return len(scp)


def load_all(wav_scp: Path) -> tuple[int, int]:
    """Every utterance of ``wav_scp`` through ESPnet's ``sound`` loader: (loaded, failed)."""
    from espnet2.train.dataset import ESPnetDataset

    dataset = ESPnetDataset([(str(wav_scp), "speech", "sound")])
    loaded = failed = 0
    logging.disable(logging.ERROR)  # the dataset logs each entry it cannot open: counted here instead
    try:
        for key in read_map(wav_scp):
            try:
                dataset[key]
                loaded += 1
            except Exception:  # noqa: BLE001 - what the loader cannot open is counted, not fatal
                failed += 1
    finally:
        logging.disable(logging.NOTSET)
    return loaded, failed


def _bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def _timed(step: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = step()
    return time.perf_counter() - start, result


def run(work: Path, concat: int, repeats: int, langs: Sequence[str]) -> dict[str, dict[str, list]]:
    """Times per mode and step (see the module docstring)."""
    src = work / "src"
    logger.info("source: %d utterances (%s)", source_dir(src, langs), MINI)
    times: dict[str, dict[str, list]] = {mode: {} for mode in MODES}
    dumps: dict[str, dict[str, str]] = {}
    for repeat in range(repeats):
        for mode in MODES:
            base = work / f"{mode}{repeat}"
            step2, _ = _timed(
                lambda base=base, mode=mode: prepare_pretrain_set(
                    src, base / "data", concat=concat, concat_audio=mode, audio_dir=base / "joined"
                )
            )
            step3, _ = _timed(lambda base=base: format_wav_scp(base / "data", base / "dump", nj=1, audio_format="flac"))
            dumped, (n, bad) = _timed(lambda base=base: load_all(base / "dump" / "wav.scp"))
            direct, (m, failed) = _timed(lambda base=base: load_all(base / "data" / "wav.scp"))
            for name, value in (
                ("stage 2", step2),
                ("stage 3", step3),
                ("load dump", dumped),
                ("load stage 2", direct),
            ):
                times[mode].setdefault(name, []).append(value)
            times[mode]["counts"] = [n, bad, m, failed]
            times[mode]["bytes"] = [_bytes(base / "joined") if mode == "files" else 0, _bytes(base / "dump" / "data")]
            dumps[mode] = read_map(base / "dump" / "utt2num_samples")
    if dumps["files"] != dumps["pipes"]:
        raise AssertionError("the two dumps differ: files and pipes must give the same samples")
    return times


def report(times: dict[str, dict[str, list]], concat: int) -> str:
    lines = [f"concatenated by {concat}; seconds, best of {len(times['files']['stage 2'])} (spread)"]
    lines.append(f"{'step':<14}" + "".join(f"{mode:>22}" for mode in MODES))
    for step in ("stage 2", "stage 3", "load dump", "load stage 2"):
        cells = [f"{min(t):8.3f} ({max(t) - min(t):.3f})" for t in (times[m][step] for m in MODES)]
        lines.append(f"{step:<14}" + "".join(f"{c:>22}" for c in cells))
    for mode in MODES:
        n, bad, m, failed = times[mode]["counts"]
        written, dumped = times[mode]["bytes"]
        lines.append(
            f"{mode}: {n} utterances loaded from the dump ({bad} failed), {m} from stage 2's wav.scp "
            f"({failed} failed); stage 2 wrote {written / 1e6:.1f} MB of audio, the dump is {dumped / 1e6:.1f} MB"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks concat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concat", type=int, default=6, help="utterances joined per group (Mandarin-Wav2Vec2: 6)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--langs", nargs="+", choices=("en", "zh", "ja"), default=["en", "zh", "ja"])
    parser.add_argument("--workdir", type=Path, help="where to work (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    setup_logging(logging.WARNING)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="concat_bench."))
    try:
        print(report(run(work, args.concat, args.repeats, args.langs), args.concat))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0
