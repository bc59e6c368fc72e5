"""ESPnet tasks as this project runs them.

Subclasses of ESPnet's tasks defined here, in a module of ``espnet_ext``, so that a process
spawned for DDP (which re-imports the task class by its module path) imports ``espnet_ext``
and therefore the registry before it builds a model. They also use the project's
:class:`~espnet_ext.trainer.Trainer` (``--keep_last_epochs``).
"""

from __future__ import annotations

import espnet_ext  # noqa: F401  (registry)
from espnet2.tasks.asr import ASRTask as _ESPnetASRTask

from espnet_ext.trainer import Trainer


class ASRTask(_ESPnetASRTask):
    """ESPnet's ASRTask with the project's plugins registered and trainer."""

    trainer = Trainer
