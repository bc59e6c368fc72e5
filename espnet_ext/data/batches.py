"""Batches of utterances by audio length, as fairseq forms them for wav2vec 2.0 (numpy only).

fairseq's ``audio_pretraining`` task (``RawAudioDataset`` without padding) sizes an utterance as
``min(length, max_sample_size)``: the collater crops every utterance of a batch to the batch's
shortest one (and to ``max_sample_size``), so a batch never holds more audio than that size says.
``batch_by_size`` walks the utterances from the largest size down and closes a batch *before*
the utterance that would make ``count x largest size`` exceed ``max_tokens`` or the count exceed
``max_sentences`` (``dataset.batch_size``): ``max_tokens`` is a ceiling. A closed batch keeps a
multiple of ``required_batch_size_multiple`` utterances (when it has at least that many); the
rest open the next batch.

ESPnet's ``numel`` sampler, by contrast, counts uncropped lengths and closes a batch *after* the
utterance that exceeds ``batch_bins``. :func:`fairseq_batches` is fairseq's rule, with one more
thing for ESPnet's distributed training: ESPnet builds one list of batches and gives rank ``r``
the utterances ``batch[r::gpus]``; a batch here is closed at a multiple of ``gpus`` (and of
``required_batch_size_multiple``), so every rank gets the same count, and with the batch sorted
from the largest size down each rank's share holds at most ``max_tokens / gpus`` samples and
``max_sentences_per_gpu`` utterances, as one fairseq GPU's batch does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def cropped_sizes(lengths: Sequence[int], max_sample_size: int | None) -> np.ndarray:
    """``min(length, max_sample_size)`` per utterance (the lengths when ``max_sample_size`` is None)."""
    sizes = np.asarray(lengths, dtype=np.int64)
    return sizes if max_sample_size is None else np.minimum(sizes, int(max_sample_size))


def fairseq_batches(
    lengths: Sequence[int],
    max_tokens: int,
    max_sample_size: int | None = None,
    max_sentences_per_gpu: int | None = None,
    gpus: int = 1,
    required_batch_size_multiple: int = 1,
) -> list[np.ndarray]:
    """Index arrays of batches, each sorted from the largest cropped size down (see the module).

    Args:
        lengths: samples per utterance (uncropped).
        max_tokens: samples per batch over all ``gpus`` (ESPnet's ``batch_bins``; fairseq's
            ``max_tokens`` x GPUs), counted as ``count x largest cropped size``, a ceiling
            except that a batch never closes with fewer than ``gpus`` utterances (one per rank,
            which may then exceed its share: an utterance longer than ``max_tokens / gpus``).
        max_sample_size: the crop (fairseq ``task.max_sample_size``); None: no crop.
        max_sentences_per_gpu: at most this many utterances per GPU (fairseq
            ``dataset.batch_size``); None: no cap.
        gpus: the world size; batches hold a multiple of it (the last one may not: it is
            spread over the others when it has fewer than ``gpus``).
        required_batch_size_multiple: fairseq's ``dataset.required_batch_size_multiple``
            (per GPU; fairseq's default is 8, 1 keeps every full batch whole).

    Ties in size keep the longer (uncropped) utterance first, then the lower index.
    """
    if max_tokens < 1 or gpus < 1 or required_batch_size_multiple < 1:
        raise ValueError(
            f"expected max_tokens, gpus and required_batch_size_multiple >= 1; found "
            f"{max_tokens}, {gpus}, {required_batch_size_multiple}"
        )
    if max_sentences_per_gpu is not None and max_sentences_per_gpu < 1:
        raise ValueError(f"max_sentences_per_gpu: expected >= 1 or None; found {max_sentences_per_gpu}")
    raw = np.asarray(lengths, dtype=np.int64)
    sizes = cropped_sizes(raw, max_sample_size)
    order = np.lexsort((np.arange(len(raw)), -raw, -sizes))  # last key first: size, length, index
    cap = math.inf if max_sentences_per_gpu is None else max_sentences_per_gpu * gpus
    step = gpus * required_batch_size_multiple
    batches: list[np.ndarray] = []
    batch: list[int] = []
    for i in order:
        if len(batch) >= gpus and (len(batch) >= cap or (len(batch) + 1) * int(sizes[batch[0]]) > max_tokens):
            keep = len(batch) // step * step or len(batch) // gpus * gpus
            batches.append(np.array(batch[:keep], dtype=np.int64))
            batch = batch[keep:]
        batch.append(int(i))
    if batch:
        batches.append(np.array(batch, dtype=np.int64))
    return _spread_short_last(batches, gpus)


def _spread_short_last(batches: list[np.ndarray], gpus: int) -> list[np.ndarray]:
    """A last batch with fewer than ``gpus`` utterances (ESPnet needs one per rank): its
    utterances join the batches before it, one each, from the last (as ESPnet's samplers do)."""
    if len(batches) < 2 or len(batches[-1]) >= gpus:
        return batches
    last = batches.pop()
    for j, i in enumerate(last):
        k = len(batches) - 1 - (j % len(batches))
        batches[k] = np.append(batches[k], i)
    return batches


def audio_seen(
    lengths: Sequence[int], batch: Sequence[int], max_sample_size: int | None, crop_to_shortest: bool
) -> int:
    """Samples the model gets from ``batch``: ``count x shortest cropped size`` when the
    collate crops to the shortest utterance (fairseq without padding, ESPnet's
    ``crop_audio``), else the cropped sizes summed."""
    sizes = cropped_sizes(np.asarray(lengths, dtype=np.int64)[np.asarray(batch, dtype=np.int64)], max_sample_size)
    return int(len(sizes) * sizes.min()) if crop_to_shortest else int(sizes.sum())
