"""One line per training epoch on the terminal, through the job launcher.

Training runs through the job launcher (:mod:`espnet_ext.bin.launch`), which sends everything a
job prints to its log file. The project's trainer (:class:`espnet_ext.espnet.trainer.Trainer`, used by
the ASR, classification and pre-training tasks) also prints, at the end of each epoch and from
rank 0 only, one line that starts with :data:`PREFIX`::

    espnet_ext progress: epoch 3/10: train loss 52.1, valid loss 48.3, valid cer_ctc 0.612, elapsed 4m10s, ~9m44s left

For a single job the launcher follows the log file and echoes these lines (without the prefix)
to its stderr, so a recipe's terminal shows how far training is while the log keeps everything.

No torch and no ESPnet here: the launcher imports this module.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping

PREFIX = "espnet_ext progress: "

# Validation values shown beside the loss, the first one present: CTC's character error rate
# (ASR), the attention decoder's CER/WER, accuracy (classification; contrastive for pre-training).
VALID_METRICS = ("cer_ctc", "cer", "wer", "acc")


def format_duration(seconds: float) -> str:
    """``42s``, ``4m10s``, ``2h05m`` (whole seconds, rounded)."""
    total = int(round(max(seconds, 0.0)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def format_value(value: float) -> str:
    """Four significant digits (``nan`` when the value was not computed)."""
    return "nan" if value is None or math.isnan(value) else f"{value:.4g}"


def epoch_message(
    epoch: int,
    max_epoch: int,
    train: Mapping[str, float],
    valid: Mapping[str, float],
    elapsed: float,
    left: float | None,
) -> str:
    """The text of one progress line (without :data:`PREFIX`).

    ``train``/``valid``: the epoch's mean values by ESPnet's names (``loss``, ``cer_ctc``, ...);
    ``elapsed``: seconds since training started in this process; ``left``: estimated seconds to
    ``max_epoch`` (None: unknown).
    """
    parts = [
        f"train loss {format_value(train.get('loss', math.nan))}",
        f"valid loss {format_value(valid.get('loss', math.nan))}",
    ]
    metric = next((name for name in VALID_METRICS if name in valid), None)
    if metric is not None:
        parts.append(f"valid {metric} {format_value(valid[metric])}")
    parts.append(f"elapsed {format_duration(elapsed)}")
    if left is not None:
        parts.append(f"~{format_duration(left)} left")
    return f"epoch {epoch}/{max_epoch}: " + ", ".join(parts)


class EpochProgress:
    """Times the epochs of one training process and writes its progress lines.

    The time left is the mean duration of the epochs run by this process (a resumed training
    starts counting at its first epoch) times the epochs still to run up to ``max_epoch``.
    """

    def __init__(self, max_epoch: int, clock: Callable[[], float] = time.monotonic):
        self.max_epoch, self.clock = max_epoch, clock
        self.start = clock()
        self.first_epoch: int | None = None
        self.train: Mapping[str, float] = {}

    def train_done(self, epoch: int, train: Mapping[str, float]) -> None:
        """Record the training values of ``epoch`` (its validation follows)."""
        if self.first_epoch is None:
            self.first_epoch = epoch
        self.train = dict(train)

    def line(self, epoch: int, valid: Mapping[str, float]) -> str:
        """The progress line (with :data:`PREFIX`) of ``epoch``, once it is validated."""
        if self.first_epoch is None:
            self.first_epoch = epoch
        elapsed = self.clock() - self.start
        done = epoch - self.first_epoch + 1
        left = elapsed / done * max(self.max_epoch - epoch, 0) if done > 0 else None
        return PREFIX + epoch_message(epoch, self.max_epoch, self.train, valid, elapsed, left)


def progress_message(line: str) -> str | None:
    """The message of a progress line (``line`` without :data:`PREFIX`), else None."""
    return line[len(PREFIX) :] if line.startswith(PREFIX) else None
