"""espnet_ext.espnet.lengths: every frontend and encoder this project registers has a frame count
for the stage-4 filter, passed to the data layer's arithmetic (which knows none of them itself)."""

import pytest

from espnet_ext.data import frames as data_frames
from espnet_ext.espnet import lengths
from espnet_ext.espnet.plugins import PLUGINS

TABLES = {
    "frontend_choices": (data_frames.FRONTEND_LENGTHS, lengths.FRONTEND_LENGTHS),
    "encoder_choices": (None, lengths.ENCODER_LENGTHS),
}


@pytest.mark.parametrize(
    "plugin",
    [p for p in PLUGINS if p.task_module == "espnet2.tasks.asr" and p.choices_attr in TABLES],
    ids=lambda p: f"{p.choices_attr}:{p.name}",
)
def test_every_registered_asr_frontend_and_encoder_has_a_frame_count(plugin):
    builtin, project = TABLES[plugin.choices_attr]
    assert plugin.name in project or (builtin is not None and plugin.name in builtin)


def test_the_data_layer_alone_does_not_know_the_project_plugins_the_espnet_layer_does():
    config = {"frontend": "wav2vec1", "frontend_conf": {"preset": "tiny"}, "encoder": "w2v2_light"}
    with pytest.raises(ValueError, match="frontend 'wav2vec1' unknown"):
        data_frames.frames_from_dict(config)
    frames = lengths.frames_from_dict(config)
    assert frames(16000) == 98 and frames(464) == 0  # (16000 - 465) // 160 + 1; shorter than one receptive field
