"""One epoch of ESPnet's training batches, simulated from a stats dir's shape files (numpy only).

ESPnet's ``numel`` sampler (``espnet2/samplers/num_elements_batch_sampler.py``, :func:`numel_batches`)
sorts the utterances by length, ascending, and closes a batch *after* the utterance that makes
``count x longest`` (plus labels x vocabulary for ASR) exceed ``batch_bins``: a batch holds slightly
more than ``batch_bins``, where fairseq's ``max_tokens`` is a ceiling. It counts uncropped lengths.
``batch_bins`` counts the whole micro-batch over all GPUs: ESPnet builds the batches once (with
``min_batch_size`` the GPU count), then gives rank ``r`` the utterances ``batch[r::world_size]``.
With ``fairseq_batches: true`` (:mod:`espnet_ext.espnet.samplers`) the batches are fairseq's
instead (:func:`espnet_ext.data.batches.fairseq_batches`); :func:`sampler_batches` forms either.

The lengths come from the stats dir that ESPnet's ``--collect_stats`` pass writes
(``train/speech_shape``, ``train/text_shape.<token_type>``; :func:`read_train_shapes`), so the
planner (:mod:`espnet_ext.report.plan`) sees the batches that training will see.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from espnet_ext.data.batches import fairseq_batches


def numel_batches(
    lengths: Sequence[int], batch_bins: int, label_bins: Sequence[int] | None = None, min_batch_size: int = 1
) -> list[np.ndarray]:
    """ESPnet's ``NumElementsBatchSampler`` (padding, ``drop_last`` false): index arrays of batches.

    Utterances sorted by length (ascending, stable); a batch closes after the utterance that
    makes ``count x (its length + its label_bins)`` exceed ``batch_bins`` (once it has
    ``min_batch_size``); a last batch smaller than ``min_batch_size`` is spread over the others.
    ``label_bins``: labels x vocabulary per utterance (ASR's text shape), else 0.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    extra = np.zeros_like(lengths) if label_bins is None else np.asarray(label_bins, dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    sizes, count = [], 0
    for i in order:
        count += 1
        if count * (lengths[i] + extra[i]) > batch_bins and count >= min_batch_size:
            sizes.append(count)
            count = 0
    if count:
        sizes.append(count)
    if len(sizes) > 1 and sizes[-1] < min_batch_size:
        for i in range(sizes.pop()):
            sizes[-(i % len(sizes)) - 1] += 1
    return np.split(order, np.cumsum(sizes)[:-1])


def read_shape(path: Path) -> dict[str, list[int]]:
    """An ESPnet shape file (``uttid L[,D...]`` per line)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                out[parts[0]] = [int(v) for v in parts[1].split(",")]
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{number}: expected 'uttid L[,D]'; found {line.strip()!r}") from None
    if not out:
        raise ValueError(f"{path}: no utterances")
    return out


def read_train_shapes(stats_dir: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(samples per utterance, labels x vocabulary per utterance or None) from a stats dir's
    ``train/speech_shape`` and, if there is exactly one, ``train/text_shape.*``."""
    speech = read_shape(Path(stats_dir) / "train" / "speech_shape")
    keys = sorted(speech)
    texts = sorted((Path(stats_dir) / "train").glob("text_shape.*"))
    labels = None
    if len(texts) == 1:
        text = read_shape(texts[0])
        if set(text) != set(speech):
            raise ValueError(f"{texts[0]}: utterances differ from {Path(stats_dir) / 'train' / 'speech_shape'}")
        labels = np.array([int(np.prod(text[k])) for k in keys])
    return np.array([speech[k][0] for k in keys]), labels


def sampler_batches(
    lengths: Sequence[int],
    batch_bins: int,
    ngpu: int = 1,
    label_bins: Sequence[int] | None = None,
    fairseq: bool = False,
    max_sample_size: int | None = None,
    max_utterances_per_gpu: int | None = None,
    required_batch_size_multiple: int = 1,
) -> list[np.ndarray]:
    """Index arrays of one epoch's batches as the training sampler forms them.

    ``fairseq``: fairseq's rule (:func:`~espnet_ext.data.batches.fairseq_batches`: sizes cropped
    to ``max_sample_size``, ``batch_bins`` a ceiling over the ``ngpu`` GPUs, at most
    ``max_utterances_per_gpu`` per GPU, multiples of ``required_batch_size_multiple``; labels not
    counted). Otherwise ESPnet's ``numel`` sampler (:func:`numel_batches`, ``min_batch_size``
    ``ngpu``, ``label_bins`` counted).
    """
    if fairseq:
        return fairseq_batches(
            lengths, batch_bins, max_sample_size, max_utterances_per_gpu, ngpu, required_batch_size_multiple
        )
    return numel_batches(lengths, batch_bins, label_bins, min_batch_size=ngpu)


def rank_shares(batch: np.ndarray, world: int, fairseq: bool = False, sort_in_batch: str = "descending") -> list:
    """The utterances of ``batch`` (an index array of :func:`sampler_batches`) that each of ``world``
    ranks trains on: ESPnet gives rank ``r`` the keys ``[r::world]`` of the batch in its sampler's
    order, the ``numel`` sampler's longest first (``sort_in_batch: descending``, ESPnet's default;
    :func:`numel_batches` lists them shortest first), ``fairseq_batches``' largest first as formed."""
    ordered = batch if fairseq or sort_in_batch == "ascending" else batch[::-1]
    return [ordered[r::world] for r in range(world)]
