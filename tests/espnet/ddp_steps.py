"""One process of a DDP test (tests/espnet/test_ddp.py runs it with ``python``, one per rank).

    python ddp_steps.py train|batches RANK WORLD INIT_FILE OUT TASK_ARGS...

``train``: the ASR task's model (ESPnet's ``build_model``, optimizer and scheduler), the training
iterator of ESPnet's ``build_iter_factory`` (rank ``r`` of ``WORLD`` gets its share of each batch),
and ESPnet's ``Trainer.train_one_epoch`` one batch at a time, the model wrapped in DDP over gloo
when ``WORLD`` > 1 (as ESPnet's trainer wraps it). OUT (``torch.save``): per update, the keys this
rank trained on, the model state, the learning rate and the scheduler's step count.

``batches``: the SSL task's training iterator for epochs 1 and 2 of each set of TASK_ARGS (sets
separated by ``--then``); OUT: for each set, per batch, the keys and the shape of the collated
``speech``.

Rendezvous in ``INIT_FILE`` (a new file: torch's ``file://`` init); one thread per process.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    import torch

    what, rank, world, init_file, out, *task_args = argv
    rank, world = int(rank), int(world)
    torch.set_num_threads(1)
    if world > 1:
        torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    from espnet2.train.distributed_utils import DistributedOption

    option = DistributedOption(distributed=world > 1, dist_rank=rank, dist_world_size=world, ngpu=0)
    if what == "train":
        result = train(task_args, option)
    else:
        result = batches(task_args, option)
    torch.save(result, out)


def train(task_args: list[str], option) -> list[dict]:
    import torch
    from espnet2.schedulers.warmup_lr import WarmupLR
    from espnet2.torch_utils.set_all_random_seed import set_all_random_seed
    from espnet2.train.reporter import Reporter

    from espnet_ext.espnet.tasks import ASRTask
    from espnet_ext.espnet.trainer import Trainer

    args = ASRTask.get_parser().parse_args(task_args)
    set_all_random_seed(args.seed)
    model = ASRTask.build_model(args)
    optimizers = ASRTask.build_optimizers(args, model=model)
    scheduler = WarmupLR(optimizers[0], **args.scheduler_conf)
    trained = model
    if option.distributed:
        trained = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=args.unused_parameters)
    options = Trainer.build_options(args)
    factory = ASRTask.build_iter_factory(args=args, distributed_option=option, mode="train")
    reporter = Reporter()
    reporter.set_epoch(1)
    steps = [{"keys": [], "state": {k: v.clone() for k, v in model.state_dict().items()}}]
    with reporter.observe("train") as sub:
        for keys, batch in factory.build_iter(1):
            Trainer.train_one_epoch(
                model=trained,
                iterator=[(list(keys), batch)],
                optimizers=optimizers,
                schedulers=[scheduler],
                scaler=None,
                reporter=sub,
                summary_writer=None,
                options=options,
                distributed_option=option,
            )
            steps.append(
                {
                    "keys": list(keys),
                    "state": {k: v.clone() for k, v in model.state_dict().items()},
                    "lr": optimizers[0].param_groups[0]["lr"],
                    "scheduler_steps": scheduler.last_epoch,
                }
            )
    return steps


def batches(task_args: list[str], option) -> list[dict[int, list]]:
    from espnet_ext.espnet.tasks import SSLTask

    sets, found = [[]], []
    for arg in task_args:
        sets.append([]) if arg == "--then" else sets[-1].append(arg)
    for one_set in sets:
        args = SSLTask.get_parser().parse_args(one_set)
        factory = SSLTask.build_iter_factory(args=args, distributed_option=option, mode="train")
        found.append(
            {
                epoch: [(list(keys), tuple(batch["speech"].shape)) for keys, batch in factory.build_iter(epoch)]
                for epoch in (1, 2)
            }
        )
    return found


if __name__ == "__main__":
    main(sys.argv[1:])
