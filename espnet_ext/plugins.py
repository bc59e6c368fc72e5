"""Declarations of this project's ESPnet plugins (see :mod:`espnet_ext.registry`).

Each line names a task module, its ``ClassChoices`` attribute, the choice name users write
in a config, and the class. Nothing here imports ESPnet or torch.
"""

from espnet_ext.registry import add_plugin  # noqa: F401

# The wav2vec 2.0 frontend and encoders are declared here as they are added, e.g.
# add_plugin("espnet2.tasks.asr", "frontend_choices", "wav2vec2", "espnet_ext.espnet.frontend:Wav2Vec2Frontend")
