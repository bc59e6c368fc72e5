"""The project's Trainer: --keep_last_epochs makes ESPnet's own pruning keep the last N epoch
files; --save_every_updates; one progress line per epoch through the job launcher."""

from pathlib import Path

import pytest

from espnet_ext.espnet.tasks import ASRTask
from espnet_ext.espnet.trainer import RECENCY_CRITERION, Trainer

ROOT = Path(__file__).resolve().parents[2]
ASR_TINY = ROOT / "egs2/mini/asr1/conf/tuning/train_asr_w2v2_tiny_ctc.yaml"


def options(*extra):
    args = ASRTask.get_parser().parse_args(["--output_dir", "x", *extra])
    return Trainer.build_options(args)


def test_default_is_espnet_behaviour():
    opts = options()
    assert opts.keep_last_epochs == 0
    assert RECENCY_CRITERION not in [tuple(c) for c in opts.best_model_criterion]


def test_keep_last_adds_recency_and_raises_keep():
    opts = options("--keep_last_epochs", "10", "--keep_nbest_models", "3", "--best_model_criterion", "valid,acc,max")
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

    from espnet_ext.espnet.trainer import PeriodicSaver, current_updates

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
    # the end of training: the 7th update's model, which no periodic save had
    saver.save_last()
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "3updates.pth",
        "6updates.pth",
        "7updates.pth",
    ]
    last = torch.load(tmp_path / "checkpoints" / "7updates.pth", weights_only=True)
    assert torch.equal(last["weight"], model.weight.detach())

    # ended on a periodic save, or before any update: nothing more
    for updates, expected in ((6, ["6updates.pth"]), (None, [])):
        other = tmp_path / f"other_{updates}"
        ended = PeriodicSaver(model, other, every=3, start=updates)
        if updates is not None:
            ended._save(updates)
        ended.save_last()
        assert (sorted(p.name for p in other.iterdir()) if other.exists() else []) == expected


def test_periodic_saver_after_a_resume_continues_the_count(tmp_path):
    """ESPnet's Trainer.run() restores checkpoint.pth after the saver is built: the names must
    continue from the restored count (they restarted at 0 and overwrote the earlier files)."""
    import torch

    from espnet_ext.espnet.trainer import PeriodicSaver
    from espnet_ext.espnet.updates import count_updates

    # a model that counts its updates (the pre-training models): the count is read at each update
    model = count_updates(torch.nn.Linear(2, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    handle = PeriodicSaver(model, tmp_path / "counted", every=5).attach(optimizer)
    model.num_updates.fill_(40)  # the resume, after the saver was built
    for _ in range(5):
        model(torch.ones(1, 2)).sum().backward()
        optimizer.step()
    handle.remove()
    assert sorted(p.name for p in (tmp_path / "counted").iterdir()) == ["45updates.pth"]
    assert int(torch.load(tmp_path / "counted" / "45updates.pth", weights_only=True)["num_updates"]) == 45

    # a model without the counter: the first scheduler's restored step count
    plain = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(plain.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    saver = PeriodicSaver(plain, tmp_path / "plain", every=5, schedulers=[scheduler])
    opt.register_step_post_hook(saver)
    scheduler.load_state_dict(dict(scheduler.state_dict(), last_epoch=40, _step_count=41))  # the resume
    for _ in range(10):
        plain(torch.ones(1, 2)).sum().backward()
        opt.step()
        scheduler.step()  # ESPnet steps batch schedulers after the optimizer
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["45updates.pth", "50updates.pth"]


def test_periodic_checkpoint_records_the_update_count_of_its_name(tmp_path):
    """The saver runs after the update counting: <N>updates.pth holds num_updates == N (it held
    N - 1 when the saver was the optimizer's own hook, which runs before the global ones)."""
    import torch

    from espnet_ext.espnet.trainer import PeriodicSaver
    from espnet_ext.espnet.updates import count_updates

    model = count_updates(torch.nn.Linear(2, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    handle = PeriodicSaver(model, tmp_path, every=3).attach(optimizer)
    other = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)  # not watched
    for _ in range(6):
        model(torch.ones(1, 2)).sum().backward()
        optimizer.step()
        other.step()
        optimizer.zero_grad()
    handle.remove()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3updates.pth", "6updates.pth"]
    for n in (3, 6):
        assert int(torch.load(tmp_path / f"{n}updates.pth", weights_only=True)["num_updates"]) == n


def test_training_through_the_launcher_shows_one_line_per_epoch(tmp_path, venv_env, tiny_asr_data):
    """What asr.sh stage 11 runs (tiny model, 6 utterances, 3 epochs): one progress line per
    epoch on the launcher's stderr, with the epoch count, the losses and CER, elapsed and left."""
    import re
    import subprocess
    import sys

    data = tiny_asr_data(tmp_path)
    exp, log = tmp_path / "exp", tmp_path / "exp" / "train.log"
    train_cmd = [
        sys.executable,
        "-m",
        "espnet_ext.bin.asr_train",
        "--config",
        str(ASR_TINY),
        "--max_epoch",
        "3",
        "--output_dir",
        str(exp),
        "--use_preprocessor",
        "true",
        "--ngpu",
        "0",
        "--batch_type",
        "unsorted",
        "--batch_size",
        "3",
        "--num_att_plot",
        "0",
        *data,
    ]
    result = subprocess.run(
        [sys.executable, "-m", "espnet_ext.bin.launch", str(log), *train_cmd],
        capture_output=True,
        text=True,
        env=venv_env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:] + log.read_text()[-3000:]
    shown = [line for line in result.stderr.splitlines() if "(train.log) epoch " in line]
    number = r"(?:\d[\d.e+-]*|nan)"
    pattern = (
        rf"\(train\.log\) epoch (\d)/3: train loss {number}, valid loss {number}, "
        rf"valid cer_ctc {number}, elapsed \d+s, ~(\d+)s left$"
    )
    matches = [re.search(pattern, line) for line in shown]
    assert all(matches) and [int(m.group(1)) for m in matches] == [1, 2, 3], result.stderr
    assert int(matches[-1].group(2)) == 0  # nothing left after the last epoch
    assert log.read_text().count("espnet_ext progress: epoch ") == 3  # in the log once each
