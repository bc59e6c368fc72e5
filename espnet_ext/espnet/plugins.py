"""This project's ESPnet plugins: which class is selectable under which name (see :mod:`espnet_ext.espnet.registry`).

Each entry names a task module, its ``ClassChoices`` attribute, the choice name users write in a
config, and the class as ``"module:Class"`` (imported only when ESPnet's task module is). A pure
table: imports nothing. Their frame counts for the stage-4 filter: :mod:`espnet_ext.espnet.lengths`.
"""

from typing import NamedTuple


class Plugin(NamedTuple):
    task_module: str
    choices_attr: str
    name: str
    target: str


_TASKS = ("espnet2.tasks.asr", "espnet2.tasks.ssl", "espnet2.tasks.cls")
_LIGHT = "espnet_ext.espnet.encoders:LightCTCEncoder"

PLUGINS: tuple[Plugin, ...] = (
    # the downsampling context network (encoder -> downsampler -> decoder) as an ASR encoder
    Plugin("espnet2.tasks.asr", "encoder_choices", "w2v2_context", "espnet_ext.espnet.encoders:W2V2ContextEncoder"),
    # dropout (+ optional LayerNorm / projection) on a backbone's output, for CTC on top
    Plugin("espnet2.tasks.asr", "encoder_choices", "w2v2_light", _LIGHT),
    # classification (egs2/*/cls1): dropout between the backbone (frontend) and the pooling head
    Plugin("espnet2.tasks.cls", "encoder_choices", "w2v2_light", _LIGHT),
    # the wav2vec 2.0 backbone (fairseq / Hugging Face / own checkpoints, or a preset) as a frontend
    *(Plugin(task, "frontend_choices", "wav2vec2", "espnet_ext.espnet.frontend:Wav2Vec2Frontend") for task in _TASKS),
    # wav2vec 2.0 pre-training as a whole SSL model (espnet_ext.espnet.ssl_model explains why)
    Plugin("espnet2.tasks.ssl", "model_choices", "wav2vec2", "espnet_ext.espnet.ssl_model:ESPnetWav2Vec2Model"),
    # wav2vec 1.0: its network as a frontend, its pre-training as a whole SSL model (espnet_ext.espnet.wav2vec1)
    *(Plugin(task, "frontend_choices", "wav2vec1", "espnet_ext.espnet.wav2vec1:Wav2Vec1Frontend") for task in _TASKS),
    Plugin("espnet2.tasks.ssl", "model_choices", "wav2vec1", "espnet_ext.espnet.wav2vec1:ESPnetWav2Vec1Model"),
)
