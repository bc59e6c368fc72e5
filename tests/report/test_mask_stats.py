"""Tests of espnet_ext.report.mask_stats: the exact expectations of fairseq's span masks, against
fairseq's algorithm drawn many times and against this project's span_mask."""

from __future__ import annotations

import numpy as np
import pytest

from espnet_ext.report import mask_stats

# --- an independent reference: fairseq's compute_mask_indices for one unpadded utterance --------
# (data_utils.py, mask_type "static", no_overlap False), transcribed as a loop.


def fairseq_mask(rng: np.random.Generator, sz: int, mask_prob: float, mask_length: int, min_masks: int) -> np.ndarray:
    """One utterance, before require_same_masks."""
    num_mask = int(mask_prob * sz / float(mask_length) + rng.random())
    num_mask = max(min_masks, num_mask)
    lengths = np.full(num_mask, mask_length)
    mask = np.zeros(sz, dtype=bool)
    if num_mask == 0:
        return mask
    min_len = min(lengths)
    if sz - min_len <= num_mask:
        min_len = sz - num_mask - 1
    mask_idc = rng.choice(sz - min_len, num_mask, replace=False)
    mask_idc = np.asarray([mask_idc[j] + offset for j in range(len(mask_idc)) for offset in range(lengths[j])])
    mask[np.unique(mask_idc[mask_idc < sz])] = True
    return mask


def fairseq_batch_mask(rng, batch, sz, mask_prob, mask_length, min_masks):
    """require_same_masks: each utterance keeps a random subset of its masked frames as large as
    the least masked utterance's count."""
    masks = [fairseq_mask(rng, sz, mask_prob, mask_length, min_masks) for _ in range(batch)]
    least = min(int(m.sum()) for m in masks)
    out = np.zeros((batch, sz), dtype=bool)
    for i, m in enumerate(masks):
        out[i, rng.choice(np.flatnonzero(m), least, replace=False)] = True
    return out


def monte_carlo(draws: int, sz: int, mask_prob: float, mask_length: int, min_masks: int):
    rng = np.random.default_rng(0)
    masked = runs = 0
    for _ in range(draws):
        m = fairseq_mask(rng, sz, mask_prob, mask_length, min_masks)
        masked += m.sum()
        runs += int(m[0]) + int(np.sum(m[1:] & ~m[:-1]))
    return masked / (draws * sz), runs / draws


@pytest.mark.parametrize(
    "sz, prob, length, min_masks",
    [
        (50, 0.65, 10, 2),  # a short utterance: edges and overlaps matter
        (13, 0.65, 10, 2),  # sz - mask_length <= spans: fairseq's shortened start range
        (30, 0.3, 3, 0),
        (768, 0.5, 64, 0),  # base_100h's channel masks
    ],
)
def test_masked_fraction_matches_fairseq_algorithm(sz, prob, length, min_masks):
    draws = 4000 if sz < 100 else 1500
    fraction, runs = monte_carlo(draws, sz, prob, length, min_masks)
    stats = mask_stats.mask_statistics(sz, prob, length, min_masks)
    assert stats.fraction == pytest.approx(fraction, abs=0.01)
    assert stats.runs == pytest.approx(runs, rel=0.03, abs=0.03)
    assert stats.run_frames == pytest.approx(stats.fraction * sz / stats.runs)


def test_mask_statistics_by_hand():
    # T=5, one-frame spans, x = 0.4 * 5 / 1 = 2 spans exactly; starts: 2 of [0, 4) -> 2 of 5 frames
    # masked; adjacent with probability 3/6, so runs = 2 - 0.5.
    s = mask_stats.mask_statistics(5, 0.4, 1)
    assert (s.spans, s.fraction, s.runs) == pytest.approx((2, 0.4, 1.5))
    # T=20, one span of 10 (x = 1): exactly half of the frames, one run of 10
    s = mask_stats.mask_statistics(20, 0.5, 10)
    assert (s.spans, s.fraction, s.runs, s.run_frames) == pytest.approx((1, 0.5, 1, 10))
    # min_masks raises the span count: x = 0.1 -> 2 spans
    assert mask_stats.mask_statistics(20, 0.05, 10, min_masks=2).spans == pytest.approx(2)
    # long utterances: 1 - (1 - p / l) ** l, the "~49%" of mask_prob 0.65 and span 10
    assert mask_stats.mask_statistics(20000, 0.65, 10).fraction == pytest.approx(1 - 0.935**10, abs=2e-3)
    assert mask_stats.mask_statistics(100, 0.0, 10).fraction == 0.0
    with pytest.raises(ValueError, match="mask_prob"):
        mask_stats.mask_statistics(100, 1.5, 10)


@pytest.mark.parametrize("sz, num, length", [(50, 3, 10), (12, 2, 10), (5, 2, 10), (30, 6, 3), (40, 1, 1)])
def test_masked_count_distribution_matches_fairseq_algorithm(sz, num, length):
    # mask_prob 0, min_masks num: always num spans
    rng = np.random.default_rng(0)
    counts = np.bincount([fairseq_mask(rng, sz, 0.0, length, num).sum() for _ in range(6000)], minlength=sz + 1)
    dist = mask_stats.masked_count_distribution(sz, num, length)
    assert dist.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(dist, counts[: len(dist)] / 6000, atol=0.015)
    assert counts[len(dist) :].sum() == 0
    assert (dist @ np.arange(len(dist))) / sz == pytest.approx(
        mask_stats.mask_statistics(sz, 0.0, length, num).fraction
    )


@pytest.mark.parametrize(
    "batch, sz, prob, length, min_masks", [(5, 50, 0.65, 10, 2), (20, 120, 0.65, 10, 2), (8, 768, 0.5, 64, 0)]
)
def test_require_same_masks_fraction_matches_fairseq_algorithm(batch, sz, prob, length, min_masks):
    rng = np.random.default_rng(1)
    draws = 1500 if sz < 500 else 400
    fraction = np.mean([fairseq_batch_mask(rng, batch, sz, prob, length, min_masks).mean() for _ in range(draws)])
    stats = mask_stats.mask_statistics(sz, prob, length, min_masks, batch=batch)
    assert stats.same_fraction == pytest.approx(fraction, abs=0.008)
    assert stats.same_fraction < stats.fraction - 0.02  # trimming costs masked frames
    assert mask_stats.mask_statistics(sz, prob, length, min_masks, batch=1).same_fraction == stats.fraction


def test_project_span_mask_semantics():
    torch = pytest.importorskip("torch")
    from espnet_ext.wav2vec2.masking import span_mask

    g = torch.Generator().manual_seed(0)
    mask = span_mask(torch.full((4000,), 50), 50, 0.65, 10, min_masks=2, generator=g, require_same_masks=False)
    assert mask.float().mean().item() == pytest.approx(mask_stats.mask_statistics(50, 0.65, 10, 2).fraction, abs=0.01)
    masks = torch.stack([span_mask(torch.full((6,), 50), 50, 0.65, 10, min_masks=2, generator=g) for _ in range(800)])
    expected = mask_stats.mask_statistics(50, 0.65, 10, 2, batch=6).same_fraction
    assert masks.float().mean().item() == pytest.approx(expected, abs=0.01)
