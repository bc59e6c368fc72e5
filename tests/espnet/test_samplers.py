"""--fairseq_batches (espnet_ext.espnet.samplers): the sampler reads ESPnet's shape file, the tasks
take the options, and the training iterator is built from the sampler's batches (off: ESPnet's)."""

from __future__ import annotations

import argparse

import pytest

from espnet_ext.espnet.samplers import FairseqBatchesMixin, FairseqBatchSampler

K = 1000


@pytest.fixture
def shape_file(tmp_path):
    path = tmp_path / "speech_shape"
    lengths = {"a": 100 * K, "b": 300 * K, "c": 50 * K, "d": 260 * K, "e": 90 * K}
    path.write_text("".join(f"{k} {n}\n" for k, n in lengths.items()), encoding="utf-8")
    return path


def test_sampler_batches_cropped_sizes_under_the_ceiling(shape_file):
    sampler = FairseqBatchSampler(600 * K, str(shape_file), max_sample_size=250 * K)
    assert list(sampler) == [("b", "d"), ("a", "e", "c")]
    assert len(sampler) == 2 and "max_sample_size=250000" in repr(sampler)
    capped = FairseqBatchSampler(600 * K, str(shape_file), 250 * K, max_utterances_per_gpu=2)
    assert list(capped) == [("b", "d"), ("a", "e"), ("c",)]
    # numel would have counted b's 300 k whole: 3 x 100 k (a, e, c) and b with d above 600 k
    two_gpus = FairseqBatchSampler(600 * K, str(shape_file), 250 * K, gpus=2)
    assert [len(b) % 2 for b in two_gpus][:-1] == [0] * (len(two_gpus) - 1)


@pytest.mark.parametrize("task_name", ["ASRTask", "SSLTask"])
def test_tasks_take_the_options_off_by_default(task_name, tmp_path):
    import espnet_ext.espnet.tasks as tasks

    task = getattr(tasks, task_name)
    assert issubclass(task, FairseqBatchesMixin)
    parser = task.get_parser()
    assert parser.get_default("fairseq_batches") is False
    assert parser.get_default("max_utterances_per_gpu") is None
    args = parser.parse_args(
        ["--output_dir", str(tmp_path), "--fairseq_batches", "true", "--max_utterances_per_gpu", "4"]
    )
    assert args.fairseq_batches is True and args.max_utterances_per_gpu == 4


def _iter_options(shape_file, batch_type="numel"):
    from espnet2.tasks.abs_task import IteratorOptions

    wav_scp = str(shape_file.parent / "wav.scp")  # ESPnet looks for utt2category beside it
    return IteratorOptions(
        preprocess_fn=None,
        collate_fn=None,
        data_path_and_name_and_type=[(wav_scp, "speech", "sound")],
        shape_files=[str(shape_file)],
        batch_size=1,
        batch_bins=600 * K,
        batch_type=batch_type,
        max_cache_size=0.0,
        max_cache_fd=0,
        allow_multi_rates=False,
        distributed=False,
        num_batches=None,
        num_iters_per_epoch=None,
        train=True,
    )


def _args(**kw):
    base = dict(
        fairseq_batches=True,
        max_utterances_per_gpu=None,
        required_batch_size_multiple=1,
        collate_fn_conf={"max_sample_size": 250 * K},
        seed=0,
        shuffle_within_batch=False,
        num_workers=0,
        ngpu=0,
        fold_length=[],
        sort_in_batch="descending",
        sort_batch="descending",
        drop_last_iter=False,
        min_batch_size=1,
    )
    base.update(kw)
    return argparse.Namespace(**base)


def test_training_iterator_uses_the_sampler_and_validation_does_not(shape_file, monkeypatch):
    from espnet_ext.espnet.tasks import SSLTask

    loaded = []
    monkeypatch.setattr(SSLTask, "build_dataset", classmethod(lambda cls, a, o, keys: loaded.append(keys) or []))
    factory = SSLTask.build_sequence_iter_factory(_args(), _iter_options(shape_file), "train")
    assert factory.sampler.generate(0) == [("b", "d"), ("a", "e", "c")]
    assert loaded == [{"a", "b", "c", "d", "e"}]
    # off, or validation: ESPnet's numel sampler, uncropped lengths ascending (c e a d b), a batch
    # closing after the utterance that passes 600 k (4 x 260 k), sorted descending inside
    for args, mode in ((_args(fairseq_batches=False), "train"), (_args(), "valid")):
        espnet = SSLTask.build_sequence_iter_factory(args, _iter_options(shape_file), mode)
        assert sorted(espnet.sampler.generate(0)) == [("b",), ("d", "a", "e", "c")]
    with pytest.raises(ValueError, match="batch_type numel"):
        SSLTask.build_sequence_iter_factory(_args(), _iter_options(shape_file, "folded"), "train")


def test_distributed_ranks_get_their_share_of_each_batch(tmp_path, monkeypatch):
    """Under DDP (world size 2) the batches hold an even number of utterances, sorted from the
    largest size down, and rank r loads batch[r::2]: one fairseq GPU batch each."""
    import torch

    from espnet_ext.espnet.tasks import SSLTask

    shape = tmp_path / "speech_shape"
    lengths = {"a": 300 * K, "b": 280 * K, "c": 200 * K, "d": 150 * K, "e": 120 * K, "f": 100 * K, "g": 90 * K}
    shape.write_text("".join(f"{k} {n}\n" for k, n in lengths.items()), encoding="utf-8")
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    monkeypatch.setattr(SSLTask, "build_dataset", classmethod(lambda cls, a, o, keys: []))
    options = _iter_options(shape)
    options.distributed = True
    # 600 k over 2 GPUs, sizes cropped to 250 k: [a, b] (3 x 250 k > 600 k), then c d e f: 4 x 200 k
    # > 600 k closes at 3, cut to 2 for the 2 GPUs: [c, d]; [e, f, g] fits 3 x 120 k but holds an
    # odd count at the end: as the last batch it stays whole (rank 0 gets e and g)
    factory = SSLTask.build_sequence_iter_factory(_args(), options, "train")
    assert factory.sampler.generate(0) == [("b",), ("d",), ("f",)]
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 0)
    factory = SSLTask.build_sequence_iter_factory(_args(), options, "train")
    assert factory.sampler.generate(0) == [("a",), ("c",), ("e", "g")]
