"""Data dirs from directory trees of audio files (the ssl1 recipes' extra audio)."""

from __future__ import annotations

import pytest

from espnet_ext.bin.audio_dirs import main
from espnet_ext.data.audio_dirs import hold_out_speakers, scan_audio_dirs
from espnet_ext.data.datadir import load_data_dir, validate_data_dir


def _tree(root, files):
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return root


def test_scan_ids_speakers_and_skips(tmp_path):
    root = _tree(
        tmp_path / "a",
        [
            "spk1/u1.wav",
            "spk1/sub dir/u2.FLAC",
            "spk2/u3.wav",
            "spk2/notes.txt",
            ".hidden/u4.wav",
            "spk2/.u5.wav",
            "top.wav",
        ],
    )
    data, skipped = scan_audio_dirs([root], prefix="x")
    assert sorted(data.utt2spk) == ["x-spk1-sub_dir-u2", "x-spk1-u1", "x-spk2-u3", "x-top"]
    assert data.utt2spk["x-spk1-sub_dir-u2"] == "x-spk1"
    assert data.utt2spk["x-top"] == "x-top"  # no directory: its own speaker
    assert data.utt_maps["wav.scp"]["x-spk2-u3"] == str((root / "spk2/u3.wav").resolve())
    assert skipped == {"txt": 1}
    per_file, _ = scan_audio_dirs([root], prefix="x", speaker_level=-1)
    assert per_file.utt2spk["x-spk1-u1"] == "x-spk1-u1"


def test_scan_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="not a directory"):
        scan_audio_dirs([tmp_path / "missing"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no audio files"):
        scan_audio_dirs([empty])
    a = _tree(tmp_path / "r1", ["s/u.wav"])
    b = _tree(tmp_path / "r2", ["s/u.flac"])
    with pytest.raises(ValueError, match=r"also that of .*r1/s/u\.wav"):
        scan_audio_dirs([a, b])
    assert len(scan_audio_dirs([a, b], extensions=["wav"])[0].utt2spk) == 1


def test_hold_out_is_by_speaker_seeded_and_nonempty(tmp_path):
    root = _tree(tmp_path / "c", [f"s{s:02d}/u{u}.wav" for s in range(30) for u in range(3)])
    data, _ = scan_audio_dirs([root])
    train, valid = hold_out_speakers(data, 0.1, seed=3)
    assert len(valid) == 9 and len(train) == 81  # 3 of 30 speakers, 3 files each
    assert not {data.utt2spk[u] for u in train} & {data.utt2spk[u] for u in valid}
    assert hold_out_speakers(data, 0.1, seed=3) == (train, valid)
    assert hold_out_speakers(data, 0.1, seed=4)[1] != valid
    assert len(hold_out_speakers(data, 0.001)[1]) == 3  # at least one speaker


def test_cli_writes_valid_data_dirs(tmp_path):
    root = _tree(tmp_path / "d", [f"s{s}/u{u}.wav" for s in range(4) for u in range(2)])
    assert (
        main(
            [
                str(root),
                "--out",
                str(tmp_path / "train"),
                "--valid_out",
                str(tmp_path / "dev"),
                "--valid_fraction",
                "0.25",
                "--prefix",
                "d",
            ]
        )
        == 0
    )
    for name, n in (("train", 6), ("dev", 2)):
        assert validate_data_dir(tmp_path / name, require_text=False) == n
        assert not (tmp_path / name / "text").exists()
    assert len(load_data_dir(tmp_path / "dev").utt2spk) == 2
    assert main([str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 1
