"""Data preparation's memory does not grow with the corpus (docs/benchmarks.md, "Data preparation").

Python's own allocations (``tracemalloc``, steadier than the resident size) are compared
between LibriSpeech-layout trees of N and of 11 N utterances, for stage 1
(``prepare_librispeech``) and stage 3's format step (``format_wav_scp``, serial and with a
pool). Holding the data dir in memory cost 1.5 to 2.8 kB per utterance here (the maps of ids,
paths and texts, sorted copies, job lists); streaming costs nothing per utterance beyond I/O
buffers, per-chapter lists and the pool's bounded window (measured: 15 to 25 bytes per extra
utterance between these sizes, the buffers filling), so the allowance below (64 bytes per
extra utterance) fails the former by 20x or more.

Each size runs twice, alternately, and the growth is the smaller peak of the large size less
the larger peak of the small size. Python resizes its table of interned strings now and then
(the libraries intern and free strings as they go; the new table, up to ~2 MB, is allocated
inside the trace while the old one's release is not seen), once every several thousand
utterances here: it lands in at most one of the two large runs. Memory kept per utterance
shows in both.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from benchmarks.dataprep import PART, build_tree
from espnet_ext.data.corpora.librispeech import prepare_librispeech
from espnet_ext.data.format import format_wav_scp
from espnet_ext.data.kaldi_files import read_map, write_spk2utt

SIZES = (200, 2200)
BYTES_PER_EXTRA_UTTERANCE = 64


def _peak(func) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Four short FLAC files (50 ms) with transcripts."""
    root = tmp_path_factory.mktemp("src")
    rng = np.random.default_rng(0)
    out = []
    for i in range(4):
        path = root / f"s{i}.flac"
        sf.write(path, (rng.standard_normal(800) * 3000).astype(np.int16), 16000, subtype="PCM_16")
        out.append((path, f"WORDS OF SOURCE {i}"))
    return out


@pytest.mark.parametrize("nj", [1, 2])
def test_peak_memory_does_not_grow_with_the_number_of_utterances(tmp_path, sources, nj):
    peaks = {SIZES[0]: [], SIZES[1]: []}
    for run, n in enumerate(SIZES + SIZES):
        work = tmp_path / f"{run}-{n}"
        tree = build_tree(work, n, sources)
        data = work / "data"
        stage1 = _peak(lambda tree=tree, data=data: prepare_librispeech(tree, data, [PART]))
        stage3 = _peak(lambda data=data, work=work: format_wav_scp(data / PART.replace("-", "_"), work / "dump", nj=nj))
        assert len((work / "dump" / "wav.scp").read_text().splitlines()) == n
        peaks[n].append((stage1, stage3))
    extra = SIZES[1] - SIZES[0]
    for index, step in enumerate(("stage 1", "stage 3")):
        small = max(p[index] for p in peaks[SIZES[0]])
        large = min(p[index] for p in peaks[SIZES[1]])
        assert (large - small) / extra < BYTES_PER_EXTRA_UTTERANCE, (step, peaks)


SEGMENTS_PER_RECORDING = 2  # few: holding the recordings' wav.scp lines would cost ~80 bytes an utterance


def _segment_dir(path, num_utts: int, sources):
    """A data dir of ``num_utts`` utterances, each a half (400 samples) of a recording; the
    recordings (``num_utts / 2``, ids rising with the utterance ids, as Kaldi names them) cycle
    over the source files, 50 recordings a speaker."""
    path.mkdir(parents=True)
    step = 400 / 16000
    with (
        open(path / "wav.scp", "w") as wav,
        open(path / "segments", "w") as segments,
        open(path / "text", "w") as text,
        open(path / "utt2spk", "w") as utt2spk,
    ):
        for r in range(num_utts // SEGMENTS_PER_RECORDING):
            source, words = sources[r % len(sources)]
            wav.write(f"rec{r:06d} {source}\n")
            for i in range(SEGMENTS_PER_RECORDING):
                utt = f"rec{r:06d}-{i}"
                segments.write(f"{utt} rec{r:06d} {i * step} {(i + 1) * step}\n")
                text.write(f"{utt} {words}\n")
                utt2spk.write(f"{utt} s{r // 50:04d}\n")
    write_spk2utt(path / "spk2utt", read_map(path / "utt2spk"))
    return path


@pytest.mark.parametrize("nj", [1, 2])
def test_stage3_with_segments_peak_memory_does_not_grow(tmp_path, sources, nj):
    """Stage 3 cutting segments: the recordings' wav.scp is read in step with the segments and
    each recording's segments are one task, so memory stays flat as well. The growth compares
    the smaller peaks of each size: a resize of the interned-string table lands in at most one
    run of a size, and one in a small run would hide growth behind the larger small peak."""
    peaks = {SIZES[0]: [], SIZES[1]: []}
    for run, n in enumerate(SIZES + SIZES):
        data = _segment_dir(tmp_path / f"{run}-{n}" / "data", n, sources)
        dump = tmp_path / f"{run}-{n}" / "dump"
        peaks[n].append(_peak(lambda data=data, dump=dump: format_wav_scp(data, dump, nj=nj)))
        assert len((dump / "wav.scp").read_text().splitlines()) == n
    growth = (min(peaks[SIZES[1]]) - min(peaks[SIZES[0]])) / (SIZES[1] - SIZES[0])
    print("bytes per extra utterance", growth, peaks)
    assert growth < BYTES_PER_EXTRA_UTTERANCE, peaks
