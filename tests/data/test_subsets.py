"""Tests of espnet_ext.data.subsets (subset, split, combine, exclude) and their CLI
(python -m espnet_ext.bin.datadir subset|split|combine|filter)."""

import os
import time

import pytest

from espnet_ext.data import datadir as dd
from espnet_ext.data import subsets

UTTS = [("a-1", "a"), ("a-2", "a"), ("a-3", "a"), ("b-1", "b"), ("b-2", "b"), ("c-1", "c")]


# ----------------------------------------------------------------------------- subset


@pytest.mark.parametrize(
    "selector, expected",
    [
        (dict(first=2), ["a-1", "a-2"]),
        (dict(last=2), ["b-2", "c-1"]),
        (dict(utt_list=["c-1", "a-2", "zz"]), ["a-2", "c-1"]),
        (dict(spk_list=["b", "c"]), ["b-1", "b-2", "c-1"]),
    ],
)
def test_subset_selectors(tmp_path, selector, expected, write_files, make_data_dir):
    src = make_data_dir(tmp_path / "src", UTTS)
    write_files(src, {"utt2num_samples": "".join(f"{u} 100\n" for u, _ in sorted(UTTS)), "feats_type": "raw\n"})
    assert subsets.subset_data_dir(src, tmp_path / "dst", **selector) == len(expected)
    dst = dd.load_data_dir(tmp_path / "dst")
    assert dst.utts == expected
    assert sorted(dst.utt_maps) == ["text", "utt2num_samples", "utt2spk", "wav.scp"]
    assert dst.scalars == {"feats_type": b"raw\n"}
    assert dd.validate_data_dir(tmp_path / "dst") == len(expected)


def test_subset_random_is_seeded(tmp_path, make_data_dir):
    src = make_data_dir(tmp_path / "src", UTTS)
    picks = []
    for seed in (1, 1, 2):
        subsets.subset_data_dir(src, tmp_path / "dst", random_n=3, seed=seed)
        picks.append(dd.load_data_dir(tmp_path / "dst").utts)
    assert picks[0] == picks[1] and len(picks[0]) == 3 and set(picks[0]) <= {u for u, _ in UTTS}
    with pytest.raises(ValueError, match="asked for 7 utterances; expected 1 to 6"):
        subsets.subset_data_dir(src, tmp_path / "dst", first=7)
    with pytest.raises(ValueError, match="exactly one"):
        subsets.select_utts(dd.load_data_dir(src), first=1, last=1)


def test_subset_cli(tmp_path, write_files, make_data_dir, datadir_cli):
    src = make_data_dir(tmp_path / "src", UTTS)
    write_files(tmp_path, {"spks": "a\n"})
    assert datadir_cli("subset", src, tmp_path / "dst", "--spk-list", tmp_path / "spks").returncode == 0
    assert (tmp_path / "dst" / "spk2utt").read_text() == "a a-1 a-2 a-3\n"
    assert datadir_cli("subset", src, tmp_path / "dst", "--first", "1", "--last", "1").returncode == 2


# ----------------------------------------------------------------------------- split


def test_split_by_utterance_is_balanced_and_contiguous(tmp_path, make_data_dir):
    src = make_data_dir(tmp_path / "d", UTTS + [("d-1", "d")])
    parts = subsets.split_data_dir(src, 3)
    assert parts == [src / "split3" / str(i) for i in (1, 2, 3)]
    assert [dd.load_data_dir(p).utts for p in parts] == [["a-1", "a-2", "a-3"], ["b-1", "b-2"], ["c-1", "d-1"]]
    for p in parts:
        dd.validate_data_dir(p)
    with pytest.raises(ValueError, match="cannot split 7 utterances into 8 parts"):
        subsets.split_data_dir(src, 8)


def test_split_by_speaker_keeps_speakers_whole(tmp_path, make_data_dir):
    utts = (
        [(f"a-{i}", "a") for i in range(5)]
        + [(f"b-{i}", "b") for i in range(3)]
        + [(f"c-{i}", "c") for i in range(2)]
        + [("d-0", "d"), ("e-0", "e")]
    )
    src = make_data_dir(tmp_path / "d", utts)
    parts = [dd.load_data_dir(p) for p in subsets.split_data_dir(src, 3, by_speaker=True)]
    assert [sorted(set(p.utt2spk.values())) for p in parts] == [["a"], ["b", "e"], ["c", "d"]]
    assert [len(p.utts) for p in parts] == [5, 4, 3]
    with pytest.raises(ValueError, match="cannot split 5 speakers into 6 parts"):
        subsets.split_data_dir(src, 6, by_speaker=True)


def test_split_is_reused_when_up_to_date(tmp_path, write_files, make_data_dir):
    src = make_data_dir(tmp_path / "d", UTTS)
    old = time.time() - 100
    for p in src.iterdir():
        os.utime(p, (old, old))
    subsets.split_data_dir(src, 2)
    first = src / "split2" / "1" / "wav.scp"
    stamp = time.time() - 50
    os.utime(first, (stamp, stamp))
    subsets.split_data_dir(src, 2)
    assert first.stat().st_mtime == stamp  # reused, not rewritten
    subsets.split_data_dir(src, 2, by_speaker=True)  # another mode: rebuilt
    assert (src / "split2" / ".done").read_text() == "speaker\n"
    assert first.stat().st_mtime > stamp
    write_files(src, {"text": "".join(f"{u} new\n" for u, _ in UTTS)})  # newer source: rebuilt
    subsets.split_data_dir(src, 2, by_speaker=True)
    assert (src / "split2" / "1" / "text").read_text().endswith("new\n")


def test_split_cli(tmp_path, make_data_dir, datadir_cli):
    src = make_data_dir(tmp_path / "d", UTTS)
    proc = datadir_cli("split", src, 2, "--by-speaker")
    assert proc.returncode == 0, proc.stderr
    assert (src / "split2" / "1" / "spk2utt").read_text() == "a a-1 a-2 a-3\n"
    assert "reused" in datadir_cli("split", src, 2, "--by-speaker").stderr


# ----------------------------------------------------------------------------- combine, exclude


def test_combine(tmp_path, write_files, make_data_dir):
    one = make_data_dir(tmp_path / "one", UTTS[:3])
    two = make_data_dir(tmp_path / "two", UTTS[3:] + [("a-9", "a")])
    write_files(one, {"utt2num_samples": "a-1 1\na-2 2\na-3 3\n", "feats_type": "raw\n"})
    write_files(two, {"feats_type": "raw\n"})
    assert subsets.combine_data_dirs(tmp_path / "all", [one, two]) == 7
    combined = dd.load_data_dir(tmp_path / "all")
    assert combined.utts == ["a-1", "a-2", "a-3", "a-9", "b-1", "b-2", "c-1"]
    assert "utt2num_samples" not in combined.utt_maps  # not in every source
    assert (tmp_path / "all" / "spk2utt").read_text().splitlines()[0] == "a a-1 a-2 a-3 a-9"
    assert combined.scalars == {"feats_type": b"raw\n"}
    dd.validate_data_dir(tmp_path / "all")


def test_combine_duplicate_names_both_sources(tmp_path, make_data_dir, datadir_cli):
    one = make_data_dir(tmp_path / "one", UTTS[:3])
    two = make_data_dir(tmp_path / "two", UTTS[2:])
    with pytest.raises(ValueError, match=f"'a-3' is in both {one} and {two}"):
        subsets.combine_data_dirs(tmp_path / "all", [one, two])
    proc = datadir_cli("combine", tmp_path / "all", one, two)
    assert proc.returncode == 1 and f"'a-3' is in both {one} and {two}" in proc.stderr


def test_filter_exclude(tmp_path, write_files, make_data_dir, datadir_cli):
    src = make_data_dir(tmp_path / "src", UTTS)
    write_files(tmp_path, {"excluded.txt": "a-2\ttoo short: 0.05 s < min_dur 0.1 s\nc-1\tx\nzz\ty\n"})
    proc = datadir_cli("filter", src, tmp_path / "dst", "--exclude", tmp_path / "excluded.txt")
    assert proc.returncode == 0, proc.stderr
    assert dd.load_data_dir(tmp_path / "dst").utts == ["a-1", "a-3", "b-1", "b-2"]
    assert (tmp_path / "dst" / "spk2utt").read_text() == "a a-1 a-3\nb b-1 b-2\n"
    assert "1 utterance id(s) of the list are not in the data dir" in proc.stderr
    write_files(tmp_path, {"all": "".join(f"{u}\n" for u, _ in UTTS)})
    with pytest.raises(ValueError, match="excludes every utterance"):
        subsets.exclude_utts(src, tmp_path / "dst2", tmp_path / "all")


@pytest.mark.parametrize("tool", ["subset", "split", "combine", "filter"])
def test_tools_refuse_an_inconsistent_source(tmp_path, tool, write_files, make_data_dir):
    src = make_data_dir(tmp_path / "src", UTTS)
    write_files(src, {"text": "a-1 only one\n"})  # the other utterances would vanish unnoticed
    write_files(tmp_path, {"list": "a-1\n"})
    call = {
        "subset": lambda: subsets.subset_data_dir(src, tmp_path / "dst", first=1),
        "split": lambda: subsets.split_data_dir(src, 2),
        "combine": lambda: subsets.combine_data_dirs(tmp_path / "dst", [src]),
        "filter": lambda: subsets.exclude_utts(src, tmp_path / "dst", tmp_path / "list"),
    }[tool]
    with pytest.raises(ValueError, match=f"{src}/text: no entry for utterance 'a-2'"):
        call()
