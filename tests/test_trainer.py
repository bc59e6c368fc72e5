"""--keep_last_epochs makes ESPnet's own pruning keep the last N epoch files."""

import pytest

from espnet_ext.tasks import ASRTask
from espnet_ext.trainer import RECENCY_CRITERION, Trainer


def options(*extra):
    args = ASRTask.get_parser().parse_args(["--output_dir", "x", *extra])
    return Trainer.build_options(args)


def test_default_is_espnet_behaviour():
    opts = options()
    assert opts.keep_last_epochs == 0
    assert RECENCY_CRITERION not in [tuple(c) for c in opts.best_model_criterion]


def test_keep_last_adds_recency_and_raises_keep():
    opts = options("--keep_last_epochs", "10", "--keep_nbest_models", "3",
                   "--best_model_criterion", "valid,acc,max")
    assert [tuple(c) for c in opts.best_model_criterion] == [("valid", "acc", "max"), RECENCY_CRITERION]
    assert max(opts.keep_nbest_models) == 10 and 3 in opts.keep_nbest_models


def test_recency_ranks_epochs_by_total_count():
    """ESPnet's Reporter stores the cumulative iteration count per epoch: ranking by it
    (max) lists the most recent epochs first, whatever the validation scores."""
    from espnet2.train.reporter import Reporter

    reporter = Reporter()
    for epoch, loss in zip(range(1, 7), [5.0, 1.0, 4.0, 3.0, 6.0, 2.0]):
        reporter.set_epoch(epoch)
        with reporter.observe("train") as sub:
            for _ in range(3):
                sub.register({"loss": loss})
                sub.next()
    assert reporter.sort_epochs(*RECENCY_CRITERION)[:3] == [6, 5, 4]
    assert reporter.sort_epochs("train", "loss", "min")[:3] == [2, 6, 4]


def test_negative_is_refused():
    with pytest.raises(ValueError, match="keep_last_epochs must be >= 0"):
        options("--keep_last_epochs", "-1")


def test_periodic_saver_counts_updates_and_keeps_all(tmp_path):
    import torch

    from espnet_ext.trainer import PeriodicSaver, current_updates

    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    saver = PeriodicSaver(model, tmp_path / "checkpoints", every=3, start=current_updates(model, []))
    handle = optimizer.register_step_post_hook(saver)
    for _ in range(7):
        model(torch.ones(1, 2)).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    handle.remove()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["3updates.pth", "6updates.pth"]
    state = torch.load(tmp_path / "checkpoints" / "6updates.pth", weights_only=True)
    assert set(state) == {"weight", "bias"}

    class Counted(torch.nn.Linear):
        pass

    counted = Counted(2, 1)
    counted.register_buffer("num_updates", torch.tensor(40))
    resumed = PeriodicSaver(counted, tmp_path / "resumed", every=5, start=current_updates(counted, []))
    opt = torch.optim.SGD(counted.parameters(), lr=0.1)
    opt.register_step_post_hook(resumed)
    for _ in range(5):
        opt.step()
    assert (tmp_path / "resumed" / "45updates.pth").is_file()
