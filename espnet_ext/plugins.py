"""Declarations of this project's ESPnet plugins (see :mod:`espnet_ext.registry`).

Each line names a task module, its ``ClassChoices`` attribute, the choice name users write
in a config, and the class. Nothing here imports ESPnet or torch.
"""

from espnet_ext.registry import add_plugin

_ENCODERS = {
    # the downsampling context network (encoder -> downsampler -> decoder) as an ASR encoder
    "w2v2_context": "espnet_ext.espnet.encoders:W2V2ContextEncoder",
    # dropout (+ optional LayerNorm / projection) on a backbone's output, for CTC on top
    "w2v2_light": "espnet_ext.espnet.encoders:LightCTCEncoder",
}

for _name, _target in _ENCODERS.items():
    add_plugin("espnet2.tasks.asr", "encoder_choices", _name, _target)
# classification (egs2/*/cls1): dropout between the backbone (frontend) and the pooling head
add_plugin("espnet2.tasks.cls", "encoder_choices", "w2v2_light", _ENCODERS["w2v2_light"])

# the wav2vec 2.0 backbone (fairseq / Hugging Face / own checkpoints, or a preset) as a frontend
for _task in ("espnet2.tasks.asr", "espnet2.tasks.ssl", "espnet2.tasks.cls"):
    add_plugin(_task, "frontend_choices", "wav2vec2", "espnet_ext.espnet.frontend:Wav2Vec2Frontend")

# wav2vec 2.0 pre-training as a whole SSL model (espnet_ext.espnet.ssl_model explains why)
add_plugin("espnet2.tasks.ssl", "model_choices", "wav2vec2", "espnet_ext.espnet.ssl_model:ESPnetWav2Vec2Model")

# wav2vec 1.0: its network as a frontend, its pre-training as a whole SSL model (espnet_ext.espnet.wav2vec1)
for _task in ("espnet2.tasks.asr", "espnet2.tasks.ssl", "espnet2.tasks.cls"):
    add_plugin(_task, "frontend_choices", "wav2vec1", "espnet_ext.espnet.wav2vec1:Wav2Vec1Frontend")
add_plugin("espnet2.tasks.ssl", "model_choices", "wav2vec1", "espnet_ext.espnet.wav2vec1:ESPnetWav2Vec1Model")

# the wav2vec1 frontend's frame count, for the stage-4 CTC-feasibility filter (torch-free)
from espnet_ext.data.frames import register_frontend_length  # noqa: E402
from espnet_ext.wav2vec1.config import frontend_frames as _wav2vec1_frames  # noqa: E402

register_frontend_length("wav2vec1", _wav2vec1_frames)
