"""Tests of espnet_ext.data.kaldi_files: reading and writing `<key> <value>` files."""

import pytest

from espnet_ext.data import kaldi_files as kf


def test_read_map_and_write_map_roundtrip(tmp_path):
    mapping = {"b": "two words", "a": "x", "A": "upper", "a-1": "dash", "e": ""}
    kf.write_map(tmp_path / "m", mapping)
    lines = (tmp_path / "m").read_text().splitlines()
    assert lines == ["A upper", "a x", "a-1 dash", "b two words", "e"]  # C-locale byte order
    assert kf.read_map(tmp_path / "m", allow_empty_value=True) == mapping
    assert not list(tmp_path.glob("*.tmp"))


def test_read_map_tabs_and_pipes(tmp_path, write_files):
    write_files(tmp_path, {"wav.scp": "u1\tsox a.wav -t wav - |\nu2   /x y/z.wav  \n"})
    assert kf.read_map(tmp_path / "wav.scp") == {"u1": "sox a.wav -t wav - |", "u2": "/x y/z.wav"}


@pytest.mark.parametrize(
    "content, message",
    [
        ("u1 a\n\nu2 b\n", ":2: empty line"),
        ("u1 a\n u2 b\n", ":2: line starts with whitespace"),
        ("u1 a\nu2\n", ":2: key 'u2' has no value"),
        ("u1 a\nu1 b\n", ":2: duplicate key 'u1' (first on line 1)"),
        (b"u1 a\nu2 caf\xe9\n", ":2: not UTF-8: byte 0xe9 at column 7"),
    ],
)
def test_read_map_malformed_names_file_and_line(tmp_path, content, message, write_files):
    write_files(tmp_path, {"f": content})
    with pytest.raises(ValueError) as err:
        kf.read_map(tmp_path / "f")
    assert str(err.value).startswith(f"{tmp_path / 'f'}{message}")


def test_spk2utt_conversions():
    utt2spk = {"b-1": "b", "a-2": "a", "a-1": "a"}
    spk2utt = kf.utt2spk_to_spk2utt(utt2spk)
    assert spk2utt == {"a": ["a-1", "a-2"], "b": ["b-1"]}
    assert kf.spk2utt_to_utt2spk(spk2utt) == utt2spk
    assert kf.spk2utt_to_utt2spk({"a": "a-1 a-2"}) == {"a-1": "a", "a-2": "a"}
    with pytest.raises(ValueError, match="'a-1' is listed under speaker 'a' and again under 'b'"):
        kf.spk2utt_to_utt2spk({"a": ["a-1"], "b": ["a-1"]})
