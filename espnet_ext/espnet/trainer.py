"""ESPnet's Trainer, keeping the epoch checkpoints that last-N averaging needs, saving
checkpoints every K optimizer updates (pre-training), printing one progress line per epoch
(:mod:`espnet_ext.core.progress`: the job launcher shows these lines on the terminal), and
writing its state so that a kill at any moment never costs the run (:mod:`espnet_ext.espnet.resume`:
atomic saves, ``checkpoint.prev.pth``, a resume that survives an unreadable ``checkpoint.pth``).

ESPnet deletes ``{epoch}epoch.pth`` files that are not among the n best epochs of any
``best_model_criterion``. Mandarin-Wav2Vec2 (github.com/kehanlu/Mandarin-Wav2Vec2) averages
"the model weights from the last 10 epochs", which needs the most recent N epoch files whatever
their validation scores.

The reporter stores, for each epoch, ``train.total_count``: the number of training
iterations seen so far, which grows every epoch. Ranking epochs by it (``max``) ranks them by
recency, so adding the criterion ``(train, total_count, max)`` and keeping at least N models
makes ESPnet itself keep the last N epoch files, with no change to its loop. (ESPnet then
also writes ``train.total_count.ave_<n>best.pth``; use ``last<N>.ave.pth`` from
:mod:`espnet_ext.espnet.averaging` instead, which does not sum integer buffers.)
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from espnet2.train.reporter import SubReporter, aggregate
from espnet2.train.trainer import Trainer as _ESPnetTrainer
from espnet2.train.trainer import TrainerOptions

from espnet_ext.core.atomic import remove_stale_temporaries, replacing
from espnet_ext.core.progress import EpochProgress
from espnet_ext.espnet import resume as resuming
from espnet_ext.espnet.distributed import check_ranks_agree

RECENCY_CRITERION = ("train", "total_count", "max")


@dataclasses.dataclass
class LastNTrainerOptions(TrainerOptions):
    keep_last_epochs: int = 0
    save_every_updates: int = 0


class Trainer(_ESPnetTrainer):
    """ESPnet's Trainer with ``--keep_last_epochs N``, ``--save_every_updates K``, a progress
    line per epoch on stderr (rank 0) and, under DDP, every rank's model compared after each epoch
    (:func:`~espnet_ext.espnet.distributed.check_ranks_agree`)."""

    _progress: EpochProgress | None = None  # set by run() in the process that reports
    _writer: bool = True  # whether this process writes the experiment dir (rank 0); set by run()
    _criteria: tuple = ()  # the run's best_model_criterion, for resume()

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group("espnet_ext trainer")
        group.add_argument(
            "--keep_last_epochs",
            type=int,
            default=0,
            help="Keep the N most recent {epoch}epoch.pth files (for last-N averaging), "
            "in addition to the n-best ones. 0: ESPnet's behaviour.",
        )
        group.add_argument(
            "--save_every_updates",
            type=int,
            default=0,
            help="Every K optimizer updates, save <output_dir>/checkpoints/<N>updates.pth "
            "(all kept; the model's save_pretrained() format when it has one). 0: never.",
        )

    @classmethod
    def build_options(cls, args: argparse.Namespace) -> LastNTrainerOptions:
        fields = {f.name for f in dataclasses.fields(LastNTrainerOptions)}
        options = LastNTrainerOptions(**{k: v for k, v in vars(args).items() if k in fields})
        return keep_last_epochs(options)

    @classmethod
    def run(
        cls,
        model,
        optimizers,
        schedulers,
        train_iter_factory,
        valid_iter_factory,
        plot_attention_iter_factory,
        trainer_options,
        distributed_option,
    ) -> None:
        every = getattr(trainer_options, "save_every_updates", 0)
        handle = None
        rank0 = not distributed_option.distributed or distributed_option.dist_rank == 0
        if every > 0 and rank0:
            # the count is read when the first update is done, not now: ESPnet's run() resumes
            # from checkpoint.pth (model, schedulers) after this point
            saver = PeriodicSaver(model, Path(trainer_options.output_dir) / "checkpoints", every, schedulers=schedulers)
            handle = saver.attach(optimizers[0])
        if rank0:
            cls._progress = EpochProgress(trainer_options.max_epoch)
        cls._writer, cls._criteria = rank0, tuple(trainer_options.best_model_criterion)
        output_dir = Path(trainer_options.output_dir)
        if rank0 and output_dir.is_dir():
            for directory in (output_dir, output_dir / "checkpoints"):
                for path in remove_stale_temporaries(directory) if directory.is_dir() else ():
                    logging.info("Removed %s, left by a killed write", path)
        if trainer_options.resume:
            resuming.restore_missing_checkpoint(output_dir)
        try:
            with resuming.atomic_torch_saves():
                super().run(
                    model,
                    optimizers,
                    schedulers,
                    train_iter_factory,
                    valid_iter_factory,
                    plot_attention_iter_factory,
                    trainer_options,
                    distributed_option,
                )
                if handle is not None:
                    saver.save_last()
        finally:
            cls._progress = None
            if handle is not None:
                handle.remove()

    @classmethod
    def resume(
        cls, checkpoint, model, reporter, optimizers, schedulers, scaler, ngpu: int = 0, strict: bool = True
    ) -> None:
        """ESPnet's resume from ``checkpoint.pth``, surviving an unreadable one: the newest intact
        state of :func:`~espnet_ext.espnet.resume.newest_intact_state` (logged: which file, and
        for weights only what is lost), then what a kill cut short of that epoch's saving."""
        import torch

        exp_dir = Path(checkpoint).parent
        location = f"cuda:{torch.cuda.current_device()}" if ngpu > 0 else "cpu"
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        # Under DDP every rank reads the same files: rank 0 moves an unreadable one aside only once
        # all have read theirs (a rank reading after the move would resume from something else).
        state = resuming.newest_intact_state(exp_dir, location, move=cls._writer and not distributed)
        if distributed:
            torch.distributed.barrier()
            if cls._writer and (state is None or state.source.name != resuming.CHECKPOINT):
                resuming.newest_intact_state(exp_dir, location, move=True)
        if state is None:
            logging.error("Nothing intact to resume from in %s: training starts from scratch", exp_dir)
            return
        if state.states is not None:
            resuming.apply_full_state(state.states, model, reporter, optimizers, schedulers, scaler, strict)
            logging.info("The training was resumed using %s", state.source)
            if cls._writer:
                resuming.repair_epoch_outputs(exp_dir, state.states, reporter, list(cls._criteria))
            return
        model.load_state_dict(state.weights, strict=strict)
        reporter.set_epoch(state.epoch)
        kept = resuming.keep_earlier_epochs(exp_dir, state.epoch) if cls._writer else None
        resuming.log_weights_only(state, kept)

    @classmethod
    def train_one_epoch(cls, *, reporter: SubReporter, **kwargs) -> bool:
        """ESPnet's (which calls it with keywords), then note the epoch's training values."""
        result = super().train_one_epoch(reporter=reporter, **kwargs)
        if cls._progress is not None:
            cls._progress.train_done(reporter.get_epoch(), epoch_means(reporter))
        return result

    @classmethod
    def validate_one_epoch(cls, *, reporter: SubReporter, **kwargs) -> None:
        """ESPnet's, then compare the ranks' models (:func:`~espnet_ext.espnet.distributed.check_ranks_agree`,
        when distributed) and print the epoch's progress line (rank 0)."""
        super().validate_one_epoch(reporter=reporter, **kwargs)
        check_ranks_agree(kwargs["model"], reporter.get_epoch())
        if cls._progress is not None:
            print(cls._progress.line(reporter.get_epoch(), epoch_means(reporter)), file=sys.stderr, flush=True)


def epoch_means(reporter: SubReporter) -> dict[str, float]:
    """The epoch's mean of each value registered so far (as ESPnet's Reporter will log them)."""
    return {key: float(aggregate(values)) for key, values in reporter.stats.items() if values}


def current_updates(model, schedulers) -> int:
    """Optimizer updates done so far (after a resume): the model's ``num_updates`` buffer when
    it has one, else the first scheduler's step count, else 0."""
    count = getattr(model, "num_updates", None)
    if count is not None:
        return int(count)
    scheduler = schedulers[0] if schedulers else None
    return int(getattr(scheduler, "last_epoch", 0) or 0) if scheduler is not None else 0


class PeriodicSaver:
    """Optimizer post-step hook: every ``every`` updates, save ``<dir>/<N>updates.pth``; at the end
    of training, :meth:`save_last` saves the last update's model too.

    N is the number of optimizer updates done, resumes included: the model's ``num_updates``
    buffer when it has one (read at each update), else ``start``, or when None the first
    scheduler's step count as the first update finds it (after ESPnet's resume), plus the updates
    counted since. (Counting from the saver's construction restarted at 0 after a resume and
    overwrote the earlier ``<N>updates.pth`` with later models.)"""

    def __init__(self, model, directory: Path, every: int, start: int | None = None, schedulers=()):
        self.model, self.directory, self.every, self.updates = model, Path(directory), every, start
        self.schedulers = list(schedulers or ())

    def attach(self, optimizer):
        """Run after every step of ``optimizer``, after the update counting of
        :func:`~espnet_ext.espnet.updates.count_updates` (a global hook, registered when the model
        was built: global hooks run after an optimizer's own, and in registration order), so a
        checkpoint's ``num_updates`` is the N of its name. Returns the handle to remove."""
        from torch.optim.optimizer import register_optimizer_step_post_hook

        def hook(stepped, args, kwargs):
            if stepped is optimizer:
                self(stepped, args, kwargs)

        return register_optimizer_step_post_hook(hook)

    def __call__(self, optimizer, args, kwargs) -> None:
        if getattr(self.model, "num_updates", None) is not None:
            self.updates = int(self.model.num_updates)  # counted before this hook runs (attach)
        else:
            if self.updates is None:  # the schedulers step after the optimizer: not yet for this one
                self.updates = current_updates(self.model, self.schedulers)
            self.updates += 1
        if self.updates % self.every:
            return
        self._save(self.updates)

    def save_last(self) -> None:
        """At the end of training: ``<N>updates.pth`` of the last update, unless a periodic save
        already wrote it or no update was done (so the last checkpoint is the trained model, not
        the one up to ``every - 1`` updates before it)."""
        if self.updates is not None and self.updates % self.every:
            self._save(self.updates)

    def _save(self, updates: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{updates}updates.pth"
        save = getattr(self.model, "save_pretrained", None)
        if save is not None:
            save(path)  # atomic itself (save_backbone)
        else:
            import torch

            with replacing(path) as tmp:
                torch.save(self.model.state_dict(), tmp)
        logging.info("Saved %s", path)


def keep_last_epochs(options: LastNTrainerOptions) -> LastNTrainerOptions:
    """Add the recency criterion and raise ``keep_nbest_models`` to N where needed."""
    n = options.keep_last_epochs
    if n < 0:
        raise ValueError(f"--keep_last_epochs must be >= 0, got {n}")
    if n == 0:
        return options
    criteria = [tuple(c) for c in options.best_model_criterion]
    if RECENCY_CRITERION not in criteria:
        criteria.append(RECENCY_CRITERION)
    keep = options.keep_nbest_models
    keep = [keep] if isinstance(keep, int) else list(keep)
    if max(keep) < n:
        logging.info("keep_nbest_models %s raised to include %d (--keep_last_epochs)", keep, n)
        keep.append(n)
    return dataclasses.replace(options, best_model_criterion=criteria, keep_nbest_models=keep)
