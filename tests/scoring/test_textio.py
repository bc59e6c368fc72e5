"""Tests of espnet_ext.scoring.textio: Kaldi-style text files."""

import pytest

from espnet_ext.scoring.textio import preview, read_nlsyms, read_text, read_utt2spk


def test_non_utf8_text_names_file_and_line(tmp_path):
    path = tmp_path / "text"
    path.write_bytes("u1 ok\nu2 caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"text:2: expected UTF-8"):
        read_text(path)


def test_read_text(tmp_path, write):
    path = write(tmp_path / "text", "\ufeffu1 a  b \nu2\n\nu3\tc\n")
    assert read_text(path) == {"u1": "a  b", "u2": "", "u3": "c"}
    with pytest.raises(ValueError, match=r"dup:2: duplicate utterance id 'u1'"):
        read_text(write(tmp_path / "dup", "u1 a\nu1 b\n"))


def test_read_nlsyms_and_utt2spk(tmp_path, write):
    assert read_nlsyms(write(tmp_path / "nlsyms", "<noise>\n\n<laugh>\n")) == ["<noise>", "<laugh>"]
    with pytest.raises(ValueError, match=r"two:1: expected one symbol per line"):
        read_nlsyms(write(tmp_path / "two", "<a> <b>\n"))
    assert read_utt2spk(write(tmp_path / "utt2spk", "u1 s1\nu2 s2\n")) == {"u1": "s1", "u2": "s2"}
    with pytest.raises(ValueError, match=r"'u1'"):
        read_utt2spk(write(tmp_path / "bad", "u1 s1 s2\n"))


def test_preview_counts_the_rest():
    assert preview(["a", "b"]) == "a, b"
    assert preview([str(k) for k in range(12)], limit=2) == "0, 1 (and 10 more)"
