"""fairseq-style batches (espnet_ext.data.batches) against hand-worked cases and an independent
reference that computes each batch's size from where it starts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from espnet_ext.data.batches import audio_seen, cropped_sizes, fairseq_batches
from espnet_ext.data.sampling import numel_batches

K = 1000


def reference_batches(lengths, max_tokens, crop=None, cap=None, gpus=1, multiple=1):
    """Independent reference: order by (cropped size, length) descending, then from each start,
    the batch's size is the largest n with n x (size at the start) <= max_tokens and n <= cap x
    gpus (at least gpus), cut down to a multiple of gpus x multiple (or of gpus) unless it is the
    rest of the data; a last batch under gpus utterances joins the ones before it."""
    sizes = [min(n, crop) if crop else n for n in lengths]
    order = sorted(range(len(lengths)), key=lambda i: (-sizes[i], -lengths[i], i))
    batches, start = [], 0
    while start < len(order):
        largest = sizes[order[start]]
        fit = max(max_tokens // largest, gpus)
        if cap is not None:
            fit = min(fit, max(cap * gpus, gpus))
        left = len(order) - start
        if fit >= left:
            n = left
        else:
            n = fit // (gpus * multiple) * (gpus * multiple) or fit // gpus * gpus
        batches.append(order[start : start + n])
        start += n
    if len(batches) > 1 and len(batches[-1]) < gpus:
        for j, i in enumerate(batches.pop()):
            batches[len(batches) - 1 - j % len(batches)].append(i)
    return batches


def as_lists(batches):
    return [[int(i) for i in b] for b in batches]


def test_by_hand_crop_and_ceiling():
    # sizes after the 250 k crop: 250, 250, 100, 90, 50 k; the first two tie on size and the
    # longer one (300 k) goes first. 3 x 250 k > 600 k closes the first batch before the third
    # utterance (a ceiling); 3 x 100 k <= 600 k keeps the rest together.
    lengths = [100 * K, 300 * K, 50 * K, 260 * K, 90 * K]
    assert as_lists(fairseq_batches(lengths, 600 * K, max_sample_size=250 * K)) == [[1, 3], [0, 4, 2]]
    # uncropped, 2 x 300 k = 600 k still fits, 2 x 260 k did not need the crop either
    assert as_lists(fairseq_batches(lengths, 600 * K)) == [[1, 3], [0, 4, 2]]
    assert as_lists(fairseq_batches(lengths, 599 * K)) == [[1], [3, 0], [4, 2]]
    # at most two utterances per GPU
    assert as_lists(fairseq_batches(lengths, 600 * K, 250 * K, max_sentences_per_gpu=2)) == [[1, 3], [0, 4], [2]]
    # the model sees count x shortest cropped size with crop_audio, else the cropped sizes summed
    assert audio_seen(lengths, [1, 3], 250 * K, True) == 500 * K
    assert audio_seen(lengths, [0, 4, 2], 250 * K, True) == 150 * K
    assert audio_seen(lengths, [1, 3], 250 * K, False) == 500 * K
    assert audio_seen(lengths, [1, 0], None, False) == 400 * K
    assert cropped_sizes(lengths, None).tolist() == lengths


def test_by_hand_gpus_and_multiple():
    # ten utterances of 100 k, 2 GPUs, 450 k per batch: 4 fit (5 x 100 > 450), even, so 4 each;
    # the last two make a batch of 2 (one per GPU).
    lengths = [100 * K] * 10
    assert [len(b) for b in fairseq_batches(lengths, 450 * K, gpus=2)] == [4, 4, 2]
    # 3 GPUs: 4 fit, cut to 3; 3, 3, then 1 left: spread over the batch before it
    assert [len(b) for b in fairseq_batches(lengths, 450 * K, gpus=3)] == [3, 3, 4]
    # fairseq's required_batch_size_multiple 3 on one GPU: 4 fit, 3 kept, the rest carried over;
    # the last four fit whole
    assert [len(b) for b in fairseq_batches(lengths, 450 * K, required_batch_size_multiple=3)] == [3, 3, 4]


@pytest.mark.parametrize("gpus", [1, 2, 3])
@pytest.mark.parametrize("cap", [None, 1, 4])
@pytest.mark.parametrize("crop,multiple", [(None, 1), (250 * K, 1), (250 * K, 2)])
def test_matches_independent_reference(gpus, cap, crop, multiple):
    rng = np.random.default_rng(gpus * 100 + (cap or 0) * 10 + multiple)
    lengths = rng.integers(16 * K, 400 * K, size=300).tolist()
    lengths += lengths[:20]  # ties
    max_tokens = 1_400 * K * gpus
    ours = fairseq_batches(lengths, max_tokens, crop, cap, gpus, multiple)
    assert as_lists(ours) == reference_batches(lengths, max_tokens, crop, cap, gpus, multiple)
    assert sorted(i for b in ours for i in b) == list(range(len(lengths)))
    sizes = cropped_sizes(lengths, crop)
    spread = [b for b in ours if len(b) % gpus]  # took one of a last batch under gpus utterances
    assert len(spread) < gpus
    for b in ours:
        if len(b) % gpus:
            continue
        for rank in range(gpus):  # ESPnet gives rank r the utterances b[r::gpus]
            share = b[rank::gpus]
            assert len(share) * sizes[share].max() <= max_tokens // gpus
            assert cap is None or len(share) <= cap


def test_refuses_bad_values():
    with pytest.raises(ValueError, match="max_tokens"):
        fairseq_batches([1, 2], 0)
    with pytest.raises(ValueError, match="max_sentences_per_gpu"):
        fairseq_batches([1, 2], 10, max_sentences_per_gpu=0)


def test_counts_fewer_padded_samples_than_numel_on_long_utterances():
    """Utterances longer than the crop: numel counts them whole, so its batches hold fewer of
    them than the crop allows; fairseq's count fills the ceiling with cropped utterances."""
    lengths = [400 * K] * 55
    ours = fairseq_batches(lengths, 1_400 * K, max_sample_size=250 * K)
    numel = numel_batches(lengths, 1_400 * K)
    assert [len(b) for b in ours] == [5] * 11  # 6 x 250 k > 1.4 M
    assert len(numel[0]) == 4  # 4 x 400 k > 1.4 M: closes after
    assert math.isclose(np.mean([audio_seen(lengths, b, 250 * K, True) for b in ours]), 1_250 * K)
