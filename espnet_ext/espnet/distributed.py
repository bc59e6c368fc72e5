"""Distributed training on CPU processes, and a check that every rank holds the same model.

ESPnet's ``AbsTask.main`` starts one process per GPU (``--ngpu N``, ``--multiprocessing_distributed
true``); with ``--ngpu 0`` it runs one process. :class:`CPUProcessesMixin` adds ``--num_procs N``:
with ``--ngpu 0``, N training processes per node, spawned as ESPnet spawns its GPU processes
(``torch.multiprocessing`` ``spawn``, each running the task's ``main_worker``), in one DDP process
group over gloo. Ranks, world size and rendezvous follow ESPnet's multiprocessing mode
(``espnet2/train/distributed_utils.py``):

* one node: ``dist_init_method env://`` on ``localhost`` and a free port (or ``MASTER_PORT``);
* several nodes: the number of nodes and this node's rank from ``--dist_launcher slurm``
  (``SLURM_STEP_NUM_NODES``, ``SLURM_NODEID``) or ``--dist_world_size`` / ``--dist_rank``, and the
  rendezvous the command line names (e.g. ``--dist_init_method file://<shared dir>/...``); rank
  ``num_procs x node + i`` of ``num_procs x nodes``.

Each process gets the node's CPU threads divided among them (``torch.get_num_threads()`` of the
launching process, i.e. ``OMP_NUM_THREADS`` or the cores, over N, at least 1). A process group
without GPUs needs gloo: with ``--ngpu 0`` ESPnet's default ``--dist_backend nccl`` is replaced
by ``gloo`` (also for one process per node across nodes).

DDP's ``find_unused_parameters`` (ESPnet's ``unused_parameters``) is on by default in these tasks:
a wav2vec 2.0 backbone leaves parameters without a gradient in many ordinary settings (layerdrop,
``freeze_finetune_updates``, ``feature_grad_mult: 0.0``, a ``layer`` below the last, no time masks
and so an unused mask vector), and DDP without it stops at the second step ("Expected to have
finished reduction in the prior iteration"), or with ranks that differ. A config in which every
parameter gets a gradient at every step may set ``unused_parameters: false`` (a little faster).

ESPnet's ``batch_bins`` is the batch over all ranks: every batch is formed once and rank ``r``
trains on its utterances ``r::world_size``, so the world size changes the updates' noise, not
their number or size.

:func:`check_ranks_agree` (the trainer calls it after every epoch) hashes each rank's model
state (parameters and buffers, e.g. the update counter) and logs on rank 0 whether all ranks
hold the same: DDP keeps them equal by averaging gradients, so a difference means a rank
trained on something the others did not.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys

import torch

#: the process group's backend when training on CPU (NCCL needs GPUs)
CPU_BACKEND = "gloo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument_group("espnet_ext distributed").add_argument(
        "--num_procs",
        type=int,
        default=1,
        help="with --ngpu 0: training processes per node, in one DDP process group over gloo "
        "(ranks and rendezvous as ESPnet's --multiprocessing_distributed; the node's CPU threads "
        "divided among them; batch_bins stays the batch over all processes). 1: one process. "
        "On GPUs, --ngpu N starts one process per GPU instead",
    )


class DistributedMixin:
    """Put before an ESPnet task in a subclass's bases: ``--num_procs`` (see the module), and
    ``unused_parameters`` true by default (a config's or the command line's value wins)."""

    @classmethod
    def add_task_arguments(cls, parser) -> None:
        super().add_task_arguments(parser)
        add_arguments(parser)

    @classmethod
    def get_parser(cls):
        parser = super().get_parser()
        parser.set_defaults(unused_parameters=True)
        return parser

    @classmethod
    def main(cls, args: argparse.Namespace | None = None, cmd=None):
        if args is None:
            args = cls.get_parser().parse_args(cmd)
        procs = getattr(args, "num_procs", 1)
        if procs < 1:
            raise ValueError(f"--num_procs: expected >= 1; found {procs}")
        if args.ngpu == 0 and args.dist_backend == "nccl":
            args.dist_backend = CPU_BACKEND  # unused unless distributed; NCCL would fail on CPU
        if procs == 1 or args.print_config or args.collect_stats:
            return super().main(args=args)
        if args.ngpu > 0:
            raise ValueError(
                f"--num_procs {procs} is for training on CPU (--ngpu 0); with GPUs, --ngpu "
                f"{args.ngpu} already starts one process per GPU"
            )
        return spawn_cpu_processes(cls, args, procs)


def spawn_cpu_processes(task, args: argparse.Namespace, procs: int) -> None:
    """ESPnet's ``AbsTask.main`` in its multiprocessing mode, with ``procs`` CPU processes per node
    (``--ngpu 0``) in place of one per GPU; returns when all have ended (raises if one failed)."""
    from espnet import __version__
    from espnet.utils.cli_utils import get_commandline_args
    from espnet2.train.distributed_utils import free_port, get_master_port, get_node_rank, get_num_nodes

    print(get_commandline_args(), file=sys.stderr)
    args.version = __version__
    if args.pretrain_path is not None:
        raise RuntimeError("--pretrain_path is deprecated. Use --init_param")
    task.check_required_command_args(args)
    nodes = get_num_nodes(args.dist_world_size, args.dist_launcher)
    if nodes == 1:
        node_rank = 0
        args.dist_master_addr = "localhost"
        if args.dist_init_method == "env://" and get_master_port(args.dist_master_port) is None:
            args.dist_master_port = free_port()
    else:
        node_rank = get_node_rank(args.dist_rank, args.dist_launcher)
        if node_rank is None:
            raise RuntimeError(
                f"--num_procs {procs} on {nodes} nodes: expected this node's rank "
                "(--dist_launcher slurm, or --dist_rank or RANK)"
            )
    threads = max(1, torch.get_num_threads() // procs)
    torch.multiprocessing.start_processes(
        _cpu_worker,
        args=(task, args, procs, nodes, node_rank, threads),
        nprocs=procs,
        join=True,
        start_method="spawn",
    )


def _cpu_worker(index: int, task, args: argparse.Namespace, procs: int, nodes: int, node_rank: int, threads: int):
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for the data loader's worker processes
    torch.set_num_threads(threads)
    local = argparse.Namespace(**vars(args))
    local.distributed = True
    local.multiprocessing_distributed = False  # this process is one of those spawned
    local.ngpu = 0
    local.local_rank = index
    local.dist_rank = procs * node_rank + index
    local.dist_world_size = procs * nodes
    task.main_worker(local)


def state_digest(module: torch.nn.Module) -> str:
    """BLAKE2b of ``module``'s state dict: every tensor's name, dtype, shape and bytes, in order."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in module.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name} {value.dtype} {tuple(value.shape)}\n".encode())
        digest.update(value.view(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def check_ranks_agree(model: torch.nn.Module, epoch: int) -> bool | None:
    """Compare the model state of every rank (all ranks call this together): rank 0 logs that they
    agree (INFO: the digest and the update count) or an ERROR listing each rank's digest. Returns
    whether they agree, None when not distributed (nothing to compare)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return None
    module = getattr(model, "module", model)  # DDP's wrapped model
    counts = [v for k, v in module.state_dict().items() if k.rsplit(".", 1)[-1] == "num_updates"]
    mine = (state_digest(module), int(counts[0]) if counts else None)
    found: list = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(found, mine)
    agree = all(item == found[0] for item in found)
    if torch.distributed.get_rank() == 0:
        count = "" if found[0][1] is None else f", {found[0][1]} updates"
        if agree:
            digest = found[0][0]
            logging.info(
                "Epoch %d: the %d ranks hold identical models (state digest %s%s)", epoch, len(found), digest, count
            )
        else:
            ranks = "; ".join(f"rank {r}: {d} ({u} updates)" for r, (d, u) in enumerate(found))
            logging.error("Epoch %d: the ranks' models differ: %s", epoch, ranks)
    return agree
