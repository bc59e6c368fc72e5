"""Data preparation's memory does not grow with the corpus (issue "Speed", benchmark 4).

Python's own allocations (``tracemalloc``, deterministic, unlike the resident size) are
compared between a LibriSpeech-layout tree of N and of 6 N utterances, for stage 1
(``prepare_librispeech``) and stage 3's format step (``format_wav_scp``, serial and with a
pool). Holding the data dir in memory costs about a kilobyte per utterance (the maps of ids,
paths and texts); streaming costs nothing per utterance beyond I/O buffers and per-chapter
lists, so the allowance below (32 bytes per extra utterance) fails the former by 30x.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_ext.bench.dataprep import PART, build_tree
from espnet_ext.data.corpora.librispeech import prepare_librispeech
from espnet_ext.data.format import format_wav_scp

SIZES = (300, 1800)
BYTES_PER_EXTRA_UTTERANCE = 32


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
    peaks = {}
    for run, n in enumerate((SIZES[0], SIZES[0], SIZES[1])):  # the first run pays one-time costs (imports)
        work = tmp_path / f"{run}-{n}"
        tree = build_tree(work, n, sources)
        data = work / "data"
        stage1 = _peak(lambda: prepare_librispeech(tree, data, [PART]))
        stage3 = _peak(lambda: format_wav_scp(data / PART.replace("-", "_"), work / "dump", nj=nj))
        assert len((work / "dump" / "wav.scp").read_text().splitlines()) == n
        peaks[n] = (stage1, stage3)
    extra = SIZES[1] - SIZES[0]
    for step, small, large in zip(("stage 1", "stage 3"), peaks[SIZES[0]], peaks[SIZES[1]]):
        assert (large - small) / extra < BYTES_PER_EXTRA_UTTERANCE, (step, small, large)
