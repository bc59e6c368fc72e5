"""python -m espnet_ext.bin.presets: parameter counts of the wav2vec 2.0 and wav2vec 1.0 presets."""

from __future__ import annotations

import pytest

from espnet_ext.bin import presets


def test_counts_of_the_named_presets(capsys):
    assert presets.main(["wav2vec2", "tiny"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tiny: total 0.11 M") and "transformer_layers" in out and "base:" not in out
    assert presets.main(["wav2vec1", "tiny", "base"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["tiny", "base"]
    assert lines[1] == "base   backbone  12.34 M  prediction head  3.15 M  total  15.49 M"


def test_every_preset_by_default(capsys):
    assert presets.main(["wav2vec1"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == list(presets.FAMILIES["wav2vec1"][0])


@pytest.mark.parametrize("argv", [["wav2vec2", "huge"], ["wav2vec3"], []])
def test_an_unknown_preset_or_family_is_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        presets.main(argv)
    assert exit_.value.code == 2
    assert "usage:" in capsys.readouterr().err
