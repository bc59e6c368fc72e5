"""Tests of espnet_ext.scoring.leftout: utterances left out before decoding."""

import pytest

from espnet_ext.scoring.leftout import left_out, write_left_out


def test_left_out_lists_reasons(tmp_path, write):
    excluded = write(tmp_path / "excluded.txt", "u2\tunreadable audio\n")
    removed = write(tmp_path / "removed.txt", "u3\ttoo short (0.05 s)\nu2\tlater reason\n")
    left = left_out(["u1", "u2", "u3", "u4"], {"u1": "a"}, [excluded, tmp_path / "absent", removed])
    assert left == {"u2": "unreadable audio", "u3": "too short (0.05 s)", "u4": "not in the decoded set"}
    path = write_left_out(left, tmp_path / "score_cer" / "left_out.txt")
    assert path.read_text(encoding="utf-8").splitlines()[0] == "u2\tunreadable audio"


def test_decoded_utterances_must_be_in_the_source_set():
    with pytest.raises(ValueError, match="1 decoded utterances are not in the source set: u9"):
        left_out(["u1"], {"u1": "a", "u9": "b"})
