"""fairseq's wav2vec 2.0 batches in ESPnet's trainer: opt-in with ``fairseq_batches: true``.

:class:`FairseqBatchSampler` batches the training set by :func:`espnet_ext.data.batches.fairseq_batches`:
each utterance counts ``min(length, max_sample_size)`` samples (what the crop leaves of it;
ESPnet's ``numel`` sampler counts the uncropped length), ``batch_bins`` is a ceiling on ``count x
largest`` over all GPUs (``numel`` overshoots it by one utterance), at most
``max_utterances_per_gpu`` utterances per GPU (fairseq's ``dataset.batch_size``), and batches
hold a multiple of the world size so that every rank's share of a batch is one fairseq GPU
batch. :class:`FairseqBatchesMixin` adds the options to a task and builds the training iterator
with that sampler; every other case (the option off, validation, other iterator types) is
ESPnet's code unchanged.

Config::

    batch_type: numel                 # required: batch_bins is the ceiling over all GPUs
    batch_bins: 11200000              # 8 GPUs x fairseq's max_tokens 1.4 M
    fairseq_batches: true
    max_utterances_per_gpu: null      # fairseq dataset.batch_size (LARGE: 4)
    collate_fn_conf:
        max_sample_size: 250000       # the crop the sizes are counted with (ssl1)
"""

from __future__ import annotations

import argparse
import itertools
import logging
from collections.abc import Iterator

import numpy as np
import torch
from espnet2.fileio.read_text import load_num_sequence_text
from espnet2.iterators.sequence_iter_factory import SequenceIterFactory
from espnet2.samplers.abs_sampler import AbsSampler
from espnet2.utils.types import int_or_none, str2bool

from espnet_ext.data.batches import fairseq_batches


class FairseqBatchSampler(AbsSampler):
    """Batches of utterance ids from the first shape file (the speech's: ``uttid samples[,...]``).

    Args:
        batch_bins: samples per batch over all GPUs, a ceiling on ``count x largest cropped size``.
        shape_file: ESPnet's ``speech_shape``.
        max_sample_size: the crop (None: lengths as they are, fine-tuning).
        max_utterances_per_gpu: the cap per GPU (None: none).
        gpus: the world size (batches hold a multiple of it).
        required_batch_size_multiple: fairseq's per-GPU multiple (1: none).
    """

    def __init__(
        self,
        batch_bins: int,
        shape_file: str,
        max_sample_size: int | None = None,
        max_utterances_per_gpu: int | None = None,
        gpus: int = 1,
        required_batch_size_multiple: int = 1,
    ):
        shapes = load_num_sequence_text(shape_file, loader_type="csv_int")
        if not shapes:
            raise ValueError(f"{shape_file}: no utterances")
        self.keys = list(shapes)
        lengths = [shapes[k][0] for k in self.keys]
        self.batch_bins, self.shape_file, self.max_sample_size = batch_bins, shape_file, max_sample_size
        self.max_utterances_per_gpu, self.gpus = max_utterances_per_gpu, gpus
        self.batch_list: list[tuple[str, ...]] = [
            tuple(self.keys[i] for i in b)
            for b in fairseq_batches(
                lengths, batch_bins, max_sample_size, max_utterances_per_gpu, gpus, required_batch_size_multiple
            )
        ]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(N-batch={len(self)}, batch_bins={self.batch_bins}, "
            f"max_sample_size={self.max_sample_size}, max_utterances_per_gpu={self.max_utterances_per_gpu}, "
            f"gpus={self.gpus}, shape_file={self.shape_file})"
        )

    def __len__(self) -> int:
        return len(self.batch_list)

    def __iter__(self) -> Iterator[tuple[str, ...]]:
        return iter(self.batch_list)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("espnet_ext: fairseq batches")
    group.add_argument(
        "--fairseq_batches",
        type=str2bool,
        default=False,
        help="training batches as fairseq's max_tokens (FairseqBatchSampler): sizes "
        "min(length, collate_fn_conf.max_sample_size), batch_bins a ceiling over all "
        "GPUs, a multiple of the world size per batch; needs batch_type numel",
    )
    group.add_argument(
        "--max_utterances_per_gpu",
        type=int_or_none,
        default=None,
        help="with --fairseq_batches: at most this many utterances per GPU (fairseq dataset.batch_size)",
    )
    group.add_argument(
        "--required_batch_size_multiple",
        type=int,
        default=1,
        help="with --fairseq_batches: utterances per GPU a multiple of this when a "
        "batch has that many (fairseq's option; its default is 8)",
    )


def max_sample_size(args: argparse.Namespace) -> int | None:
    """The crop the sampler counts with: ``collate_fn_conf.max_sample_size`` (ssl1), else None."""
    value = (getattr(args, "collate_fn_conf", None) or {}).get("max_sample_size")
    return None if value is None else int(value)


class FairseqBatchesMixin:
    """Put before an ESPnet task in a subclass's bases: ``--fairseq_batches`` and its options, and
    the training iterator built with :class:`FairseqBatchSampler` when it is on."""

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_task_arguments(parser)
        add_arguments(parser)

    @classmethod
    def build_sequence_iter_factory(cls, args: argparse.Namespace, iter_options, mode: str):
        if not getattr(args, "fairseq_batches", False) or mode != "train":
            return super().build_sequence_iter_factory(args, iter_options, mode)
        if iter_options.batch_type != "numel":
            raise ValueError(
                f"fairseq_batches: expected batch_type numel (batch_bins is the ceiling); "
                f"found {iter_options.batch_type!r}"
            )
        world = torch.distributed.get_world_size() if iter_options.distributed else 1
        sampler = FairseqBatchSampler(
            iter_options.batch_bins,
            iter_options.shape_files[0],
            max_sample_size(args),
            args.max_utterances_per_gpu,
            world,
            args.required_batch_size_multiple,
        )
        batches = list(sampler)
        if iter_options.num_batches is not None:
            batches = batches[: iter_options.num_batches]
        sizes = [len(b) for b in batches]
        logging.info(f"[{mode}] Batch sampler: {sampler}")
        logging.info(
            f"[{mode}] mini-batch sizes summary: N-batch={len(sizes)}, mean={np.mean(sizes):.1f}, "
            f"min={np.min(sizes)}, max={np.max(sizes)}"
        )
        if iter_options.distributed:
            rank = torch.distributed.get_rank()
            batches = [b[rank::world] for b in batches]
        dataset = cls.build_dataset(args, iter_options, set(itertools.chain(*batches)))
        return SequenceIterFactory(
            dataset=dataset,
            batches=batches,
            seed=args.seed,
            num_iters_per_epoch=iter_options.num_iters_per_epoch,
            shuffle=iter_options.train,
            shuffle_within_batch=args.shuffle_within_batch,
            num_workers=args.num_workers,
            collate_fn=iter_options.collate_fn,
            pin_memory=args.ngpu > 0,
        )
