"""Tests of espnet_ext.data.sampling: ESPnet's numel sampler simulated from shape files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from espnet_ext.data import sampling
from espnet_ext.data.batches import fairseq_batches


def _write_shapes(stats: Path, speech, text=None):
    (stats / "train").mkdir(parents=True)
    (stats / "train" / "speech_shape").write_text(
        "".join(f"u{i:03d} {n}\n" for i, n in enumerate(speech)), encoding="utf-8"
    )
    if text is not None:
        (stats / "train" / "text_shape.char").write_text(
            "".join(f"u{i:03d} {n},30\n" for i, n in enumerate(text)), encoding="utf-8"
        )


def test_numel_batches_by_hand():
    # sorted: 1, 2, 3 -> 3 x 3 = 9 > 6 closes [1, 2, 3]; 4, 5 -> 2 x 5 = 10 > 6 closes [4, 5]
    batches = sampling.numel_batches([5, 1, 3, 2, 4], 6)
    assert [b.tolist() for b in batches] == [[1, 3, 2], [4, 0]]
    # min_batch_size 3: the last batch (2 < 3) is spread over the others
    assert [len(b) for b in sampling.numel_batches([5, 1, 3, 2, 4], 6, min_batch_size=3)] == [5]
    # labels x vocabulary count toward the bins
    assert [len(b) for b in sampling.numel_batches([1, 1, 1, 1], 4, label_bins=[1, 1, 1, 1])] == [3, 1]


def test_numel_batches_equal_espnet_sampler(tmp_path):
    from espnet2.samplers.num_elements_batch_sampler import NumElementsBatchSampler

    rng = np.random.default_rng(1)
    speech, text = rng.integers(8000, 250000, 300), rng.integers(5, 200, 300)
    _write_shapes(tmp_path, speech, text)
    shapes = [str(tmp_path / "train" / "speech_shape"), str(tmp_path / "train" / "text_shape.char")]
    lengths, labels = sampling.read_train_shapes(tmp_path)
    names = sorted(f"u{i:03d}" for i in range(300))
    for bins, min_bs in ((1_000_000, 1), (3_200_000, 4)):
        theirs = NumElementsBatchSampler(bins, shapes, min_batch_size=min_bs)
        ours = sampling.numel_batches(lengths, bins, labels, min_batch_size=min_bs)
        assert sorted(sorted(names[i] for i in b) for b in ours) == sorted(sorted(b) for b in theirs)


def test_sampler_batches_is_fairseqs_rule_or_numel():
    lengths = [400_000] * 10 + [120_000] * 12
    fairseq = sampling.sampler_batches(lengths, 1_000_000, 2, fairseq=True, max_sample_size=250_000)
    expected = fairseq_batches(lengths, 1_000_000, 250_000, None, 2, 1)
    assert [b.tolist() for b in fairseq] == [b.tolist() for b in expected]
    labels = [50] * len(lengths)
    numel = sampling.sampler_batches(lengths, 1_000_000, 2, label_bins=labels, max_sample_size=250_000)
    expected = sampling.numel_batches(lengths, 1_000_000, labels, min_batch_size=2)  # numel does not crop
    assert [b.tolist() for b in numel] == [b.tolist() for b in expected]


def test_read_shape_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "speech_shape"
    path.write_text("u1 16000\nu2\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}:2: expected 'uttid L\\[,D\\]'"):
        sampling.read_shape(path)
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}: no utterances"):
        sampling.read_shape(path)
    _write_shapes(tmp_path / "stats", [16000, 32000], [3])
    with pytest.raises(ValueError, match="text_shape.char: utterances differ"):
        sampling.read_train_shapes(tmp_path / "stats")
