"""ESPnet tasks as this project runs them.

Subclasses of ESPnet's tasks defined here, in a module of ``espnet_ext``, so that a process
spawned for DDP (which re-imports the task class by its module path) imports ``espnet_ext``
and therefore the registry before it builds a model. They also use the project's
:class:`~espnet_ext.trainer.Trainer` (``--keep_last_epochs``, ``--save_every_updates``).
"""

from __future__ import annotations

import espnet_ext  # noqa: F401  (registry)
from espnet2.tasks.asr import ASRTask as _ESPnetASRTask
from espnet2.tasks.ssl import SSLTask as _ESPnetSSLTask

from espnet_ext.espnet.ssl_model import Wav2Vec2TaskMixin
from espnet_ext.trainer import Trainer


class ASRTask(_ESPnetASRTask):
    """ESPnet's ASRTask with the project's plugins registered and trainer."""

    trainer = Trainer


class SSLTask(Wav2Vec2TaskMixin, _ESPnetSSLTask):
    """ESPnet's SSLTask with the project's plugins, trainer, and ``model: wav2vec2``."""

    trainer = Trainer
