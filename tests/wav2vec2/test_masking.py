"""espnet_ext.wav2vec2.masking.span_mask against fairseq's compute_mask_indices (transcribed
below as a plain loop from its documented semantics: mask_type static, no_overlap False,
mask_dropout 0), in distribution: per-frame masking probabilities, the batch's masked counts
with require_same_masks, and exact properties (the last frame is never masked when the start
range is L - mask_length, trimmed masks are subsets of the untrimmed ones)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from espnet_ext.wav2vec2.masking import same_mask_count, smallest, span_mask


def fairseq_masks(
    rng: np.random.Generator,
    lengths,
    max_length: int,
    mask_prob: float,
    mask_length: int,
    min_masks: int,
    require_same_masks: bool,
) -> np.ndarray:
    """compute_mask_indices for a padded batch (lengths = valid frames per utterance)."""
    chosen = []
    for sz in lengths:
        num_mask = max(min_masks, int(mask_prob * sz / float(mask_length) + rng.random()))
        min_len = mask_length
        if sz - min_len <= num_mask:
            min_len = sz - num_mask - 1
        starts = rng.choice(sz - min_len, num_mask, replace=False)
        frames = np.asarray([s + k for s in starts for k in range(mask_length)], dtype=int)
        chosen.append(np.unique(frames[frames < sz]))
    target = min(len(c) for c in chosen) if require_same_masks else None
    mask = np.zeros((len(lengths), max_length), dtype=bool)
    for i, frames in enumerate(chosen):
        if target is not None and len(frames) > target:
            frames = rng.choice(frames, target, replace=False)
        mask[i, frames] = True
    return mask


def fairseq_frequencies(draws, lengths, max_length, prob, length, min_masks, same):
    rng = np.random.default_rng(0)
    masks = np.stack([fairseq_masks(rng, lengths, max_length, prob, length, min_masks, same) for _ in range(draws)])
    return masks.mean(axis=0), masks.sum(axis=2).mean(axis=0)


def ours_frequencies(draws, lengths, max_length, prob, length, min_masks, same):
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor(lengths)
    masks = torch.stack(
        [span_mask(lengths, max_length, prob, length, min_masks, g, require_same_masks=same) for _ in range(draws)]
    ).double()
    return masks.mean(dim=0).numpy(), masks.sum(dim=2).mean(dim=0).numpy()


@pytest.mark.parametrize(
    "lengths, prob, length, min_masks",
    [
        ([50], 0.65, 10, 2),  # L - mask_length > spans: starts in [0, 40)
        ([12], 0.65, 10, 2),  # L - mask_length <= spans: starts in [0, spans]
        ([5], 0.65, 10, 2),  # shorter than a span
        ([30], 0.3, 3, 0),
    ],
)
def test_per_frame_probabilities_match_fairseq(lengths, prob, length, min_masks):
    draws = 3000
    theirs, _ = fairseq_frequencies(draws, lengths, lengths[0], prob, length, min_masks, False)
    ours, _ = ours_frequencies(draws, lengths, lengths[0], prob, length, min_masks, False)
    np.testing.assert_allclose(ours, theirs, atol=0.045)


def test_last_frame_is_never_a_span_end_when_the_range_is_long():
    # 50 frames, spans of 10, 3-4 spans: fairseq draws starts from [0, 40), so frame 49 is never
    # masked (a start of 40 would reach it); the start range [0, 40] of earlier versions did.
    ours, _ = ours_frequencies(2000, [50], 50, 0.65, 10, 2, False)
    assert ours[0, 49] == 0.0 and ours[0, 48] > 0.05


@pytest.mark.parametrize("lengths", [[50, 50, 50, 50], [60, 45, 30]])
def test_require_same_masks_counts_match_fairseq(lengths):
    draws, T = 3000, max(lengths)
    theirs, their_counts = fairseq_frequencies(draws, lengths, T, 0.65, 10, 2, True)
    ours, our_counts = ours_frequencies(draws, lengths, T, 0.65, 10, 2, True)
    np.testing.assert_allclose(our_counts, their_counts, rtol=0.03)
    np.testing.assert_allclose(ours, theirs, atol=0.045)
    assert len(set(our_counts.tolist())) == 1  # every utterance: the same count
    untrimmed, _ = ours_frequencies(draws, lengths, T, 0.65, 10, 2, False)
    assert ours.sum() < untrimmed.sum() * 0.97  # trimming removed masked frames


def test_trimmed_masks_are_subsets_with_the_least_count():
    lengths = torch.tensor([80, 80, 40, 0, 60])
    for seed in range(20):
        full = span_mask(lengths, 90, 0.65, 10, 2, torch.Generator().manual_seed(seed), require_same_masks=False)
        same = span_mask(lengths, 90, 0.65, 10, 2, torch.Generator().manual_seed(seed))
        assert not (same & ~full).any()  # only unmasking
        counts = full.sum(1)
        least = int(counts[lengths > 0].min())  # the empty utterance does not count
        assert same.sum(1).tolist() == [min(int(c), least) for c in counts]
        assert not same[:, 80:].any() and not same[3].any() and not same[2, 40:].any()  # no padding


def test_same_mask_count_keeps_a_uniform_subset():
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[0, :8] = True
    mask[1, 2:6] = True
    counted = torch.tensor([True, True])
    g = torch.Generator().manual_seed(0)
    kept = torch.stack([same_mask_count(mask, counted, g) for _ in range(4000)]).double()
    assert (kept.sum(2) == 4).all()
    assert torch.equal(kept[:, 1], mask[1].double().expand(4000, -1))  # the least-masked row is untouched
    np.testing.assert_allclose(kept[:, 0, :8].mean(0).numpy(), 0.5, atol=0.04)  # each of 8 frames: 4/8
    assert not kept[:, 0, 8:].any()
    # no counted row: nothing is trimmed
    assert torch.equal(same_mask_count(mask, torch.tensor([False, False])), mask)


def test_channel_style_masks_and_edge_cases():
    # every length C: one draw per row; zero spans possible (min_masks 0)
    m = span_mask(torch.full((3,), 768), 768, 0.5, 64, generator=torch.Generator().manual_seed(0))
    assert m.shape == (3, 768) and len(set(m.sum(1).tolist())) == 1
    assert span_mask(torch.tensor([5, 7]), 7, 0.0, 10).sum() == 0
    assert span_mask(torch.zeros(0, dtype=torch.long), 7, 0.5, 10).shape == (0, 7)
    with pytest.raises(ValueError, match="mask_length"):
        span_mask(torch.tensor([5]), 5, 0.5, 0)


def test_smallest_keeps_the_count_smallest_scores_as_a_double_argsort_does():
    """The one-sort selection equals ranking twice (``argsort().argsort() < count``), filler
    scores of 2.0 (positions that may not be chosen) and counts of 0 or beyond the row included."""
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(64, 40, generator=g, dtype=torch.float64)
    scores = scores.masked_fill(torch.rand(64, 40, generator=g) < 0.3, 2.0)
    count = torch.randint(0, 45, (64,), generator=g)
    count[:3] = torch.tensor([0, 40, 44])
    ranks = scores.argsort(dim=1, stable=True).argsort(dim=1)
    chosen = smallest(scores, count)
    real = scores < 2.0
    assert torch.equal(chosen & real, (ranks < count[:, None]) & real)
    # among the fillers (tied at 2.0) all or none are taken: callers drop them
    assert torch.equal(chosen.sum(1) >= count.clamp(max=40), torch.ones(64, dtype=torch.bool))
