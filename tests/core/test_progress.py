"""espnet_ext.core.progress: the per-epoch progress line (epoch count, values, elapsed, time left)."""

import math

import pytest

from espnet_ext.core.progress import PREFIX, EpochProgress, epoch_message, format_duration, progress_message


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (42.4, "42s"), (250, "4m10s"), (7500, "2h05m")])
def test_durations(seconds, text):
    assert format_duration(seconds) == text


def test_message_names_the_valid_metric_present():
    asr = epoch_message(
        3, 10, {"loss": 52.08, "cer_ctc": math.nan}, {"loss": 48.3, "cer_ctc": 0.61234, "acc": 0.1}, 250, 583
    )
    assert asr == "epoch 3/10: train loss 52.08, valid loss 48.3, valid cer_ctc 0.6123, elapsed 4m10s, ~9m43s left"
    cls = epoch_message(1, 2, {"loss": 1.0}, {"loss": 0.9, "acc": 0.5}, 5, None)
    assert cls == "epoch 1/2: train loss 1, valid loss 0.9, valid acc 0.5, elapsed 5s"
    assert epoch_message(1, 1, {}, {"loss": 2.0}, 1, 0).startswith(
        "epoch 1/1: train loss nan, valid loss 2, elapsed 1s"
    )


def test_time_left_from_the_epochs_of_this_run():
    """A training resumed at epoch 4 of 10: 3 epochs of 60 s each leave 4 x 60 s."""
    now = [100.0]
    progress = EpochProgress(10, clock=lambda: now[0])
    lines = []
    for epoch in (4, 5, 6):
        now[0] += 60
        progress.train_done(epoch, {"loss": 10.0 / epoch})
        lines.append(progress.line(epoch, {"loss": 1.0}))
    assert all(line.startswith(PREFIX) for line in lines)
    assert progress_message(lines[0]).startswith("epoch 4/10: train loss 2.5,")
    assert progress_message(lines[-1]).endswith("elapsed 3m00s, ~4m00s left")
    assert progress_message("INFO: epoch 4/10") is None
