"""The label list of a classification data dir (espnet_ext.data.labels) and its checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from espnet_ext.data import labels


def write(path: Path, mapping: dict) -> Path:
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(mapping.items())), encoding="utf-8")
    return path


def test_label_list_and_checks(tmp_path):
    train = write(tmp_path / "train", {"a": "sad", "b": "calm", "c": "sad"})
    dev = write(tmp_path / "dev", {"d": "calm"})
    out = tmp_path / "token_list" / "labels.txt"
    assert labels.make_label_list([train], out, checks=[dev]) == ["calm", "sad"]
    assert out.read_text().split() == ["calm", "sad", "<unk>"]
    assert labels.read_label_list(out) == ["calm", "sad"]
    assert labels.make_label_list([train], out, classes=["sad", "happy", "calm"]) == ["sad", "happy", "calm"]
    bad = write(tmp_path / "test", {"e": "bored"})
    with pytest.raises(ValueError, match=r"test: 1 label\(s\) not among the classes \(calm sad\): e: 'bored'"):
        labels.make_label_list([train], out, checks=[bad])
    two = tmp_path / "two"
    two.write_text("f calm sad\n")
    with pytest.raises(ValueError, match="utterance f has label 'calm sad'; expected exactly one class label"):
        labels.make_label_list([two], out)
    with pytest.raises(ValueError, match="distinct class names"):
        labels.make_label_list([train], out, classes=["sad", "sad"])
