"""Tests of espnet_ext.data.datadir and its CLI (python -m espnet_ext.bin.datadir)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from espnet_ext.data import datadir as dd


def write_files(path: Path, files: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content if isinstance(content, bytes) else content.encode("utf-8")
        (path / name).write_bytes(data)
    return path


def make_dir(path: Path, utts, text=True) -> Path:
    """A valid data dir; ``utts`` is a list of (uttid, speaker)."""
    utts = sorted(utts, key=lambda u: u[0].encode())
    files = {
        "wav.scp": "".join(f"{u} /audio/{u}.wav\n" for u, _ in utts),
        "utt2spk": "".join(f"{u} {s}\n" for u, s in utts),
    }
    if text:
        files["text"] = "".join(f"{u} words of {u}\n" for u, _ in utts)
    spk2utt = {}
    for u, s in utts:
        spk2utt.setdefault(s, []).append(u)
    files["spk2utt"] = "".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items()))
    return write_files(path, files)


UTTS = [("a-1", "a"), ("a-2", "a"), ("a-3", "a"), ("b-1", "b"), ("b-2", "b"), ("c-1", "c")]


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "espnet_ext.bin.datadir", *map(str, args)], capture_output=True, text=True
    )


# ----------------------------------------------------------------------------- read/write


def test_read_map_and_write_map_roundtrip(tmp_path):
    mapping = {"b": "two words", "a": "x", "A": "upper", "a-1": "dash", "e": ""}
    dd.write_map(tmp_path / "m", mapping)
    lines = (tmp_path / "m").read_text().splitlines()
    assert lines == ["A upper", "a x", "a-1 dash", "b two words", "e"]  # C-locale byte order
    assert dd.read_map(tmp_path / "m", allow_empty_value=True) == mapping
    assert not list(tmp_path.glob("*.tmp"))


def test_read_map_tabs_and_pipes(tmp_path):
    write_files(tmp_path, {"wav.scp": "u1\tsox a.wav -t wav - |\nu2   /x y/z.wav  \n"})
    assert dd.read_map(tmp_path / "wav.scp") == {"u1": "sox a.wav -t wav - |", "u2": "/x y/z.wav"}


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
def test_read_map_malformed_names_file_and_line(tmp_path, content, message):
    write_files(tmp_path, {"f": content})
    with pytest.raises(ValueError) as err:
        dd.read_map(tmp_path / "f")
    assert str(err.value).startswith(f"{tmp_path / 'f'}{message}")


def test_spk2utt_conversions():
    utt2spk = {"b-1": "b", "a-2": "a", "a-1": "a"}
    spk2utt = dd.utt2spk_to_spk2utt(utt2spk)
    assert spk2utt == {"a": ["a-1", "a-2"], "b": ["b-1"]}
    assert dd.spk2utt_to_utt2spk(spk2utt) == utt2spk
    assert dd.spk2utt_to_utt2spk({"a": "a-1 a-2"}) == {"a-1": "a", "a-2": "a"}
    with pytest.raises(ValueError, match="'a-1' is listed under speaker 'a' and again under 'b'"):
        dd.spk2utt_to_utt2spk({"a": ["a-1"], "b": ["a-1"]})


# ----------------------------------------------------------------------------- validate


def test_validate_ok(tmp_path):
    assert dd.validate_data_dir(make_dir(tmp_path / "d", UTTS)) == len(UTTS)
    assert dd.validate_data_dir(make_dir(tmp_path / "n", UTTS, text=False), require_text=False) == len(UTTS)
    with pytest.raises(ValueError, match=r"/text: missing"):
        dd.validate_data_dir(tmp_path / "n")


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("text", "a-2 x\na-1 y\na-3 z\nb-1 w\nb-2 v\nc-1 u\n", "text:2: key 'a-1' sorts before 'a-2' of line 1"),
        ("text", "a-1 x\na-1 x\n", "text:2: duplicate key 'a-1'"),
        ("text", b"a-1 x\na-2 \xff\xfe\n", "text:2: not UTF-8: byte 0xff"),
        ("text", "a-1 x\na-2 x\na-3 x\nb-1 x\nc-1 x\n", "text: no entry for utterance 'b-2' (utt2spk line 5)"),
        (
            "wav.scp",
            "a-1 x\na-2 x\na-3 x\nb-1 x\nb-2 x\nc-1 x\nd-1 x\n",
            "wav.scp:7: utterance 'd-1' is not in utt2spk",
        ),
        ("wav.scp", "", "wav.scp: empty file"),
        ("utt2num_samples", "a-1 10\na-2 0\n", "utt2num_samples:2: '0' is not a positive integer"),
        ("spk2utt", "a a-1 a-2 a-3\nb b-1\nc c-1 b-2\n", "spk2utt:3: utterance 'b-2' listed under 'c' but utt2spk"),
        ("spk2utt", "a a-1 a-2 a-3\nb b-1 b-2\n", "spk2utt: utterance 'c-1' (utt2spk line 6) is not listed"),
        ("segments", "a-1 rec 0 1\n", "segments: segments files are not supported"),
    ],
)
def test_validate_reports_first_problem(tmp_path, name, content, message):
    path = make_dir(tmp_path / "d", UTTS)
    write_files(path, {name: content})
    with pytest.raises(ValueError) as err:
        dd.validate_data_dir(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_validate_cli_exit_status(tmp_path):
    path = make_dir(tmp_path / "d", UTTS)
    assert run_cli("validate", path).returncode == 0
    write_files(path, {"text": b"a-1 \xff\n"})
    proc = run_cli("validate", path)
    assert proc.returncode == 1
    assert f"{path}/text:1: not UTF-8" in proc.stderr
    assert run_cli("validate", path, "--no-text").returncode == 1  # a text that exists is checked
    (path / "text").unlink()
    assert run_cli("validate", path, "--no-text").returncode == 0


# ----------------------------------------------------------------------------- fix


def test_fix_drops_and_lists_every_utterance(tmp_path):
    path = write_files(
        tmp_path / "d",
        {
            "wav.scp": "u3 c.wav\nu1 a.wav\nu2 b.wav\nu1 a.wav\nu5 e.wav\nu6 f.wav\n",
            "text": b"u1 hello\nu2 world\nu4 no audio here\nu5 caf\xe9\nu6 one\nu6 two\n",
            "utt2spk": "u1 s1\nu2 s2\nu3 s1\nu4 s1\nu5 s1\nu6 s1\n",
            "spk2utt": "s1 u1 u9\n",
            "feats_type": "raw\n",
        },
    )
    original = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    dropped = dd.fix_data_dir(path)
    assert dropped == {
        "u3": "no transcript",
        "u4": "no audio",
        "u5": f"{path}/text:4: not UTF-8: byte 0xe9 at column 7",
        "u6": f"conflicting lines 5 and 6 in {path}/text",
    }
    assert (path / ".backup" / "dropped.txt").read_text().splitlines() == [
        "u3 no transcript",
        "u4 no audio",
        f"u5 {dropped['u5']}",
        f"u6 {dropped['u6']}",
    ]
    assert (path / "wav.scp").read_text() == "u1 a.wav\nu2 b.wav\n"
    assert (path / "text").read_text() == "u1 hello\nu2 world\n"
    assert (path / "spk2utt").read_text() == "s1 u1\ns2 u2\n"
    assert (path / "feats_type").read_text() == "raw\n"
    for name, content in original.items():
        assert (path / ".backup" / name).read_bytes() == content
    assert dd.validate_data_dir(path) == 2
    assert dd.fix_data_dir(path) == {}  # a fixed dir is a fixed point


def test_fix_cli_derives_utt2spk_from_spk2utt(tmp_path):
    path = write_files(tmp_path / "d", {"wav.scp": "u1 a\nu2 b\n", "text": "u1 x\nu2 y\n", "spk2utt": "s u2 u1\n"})
    proc = run_cli("fix", path)
    assert proc.returncode == 0, proc.stderr
    assert "dropped 0" in proc.stderr
    assert (path / "utt2spk").read_text() == "u1 s\nu2 s\n"
    assert (path / "spk2utt").read_text() == "s u1 u2\n"


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
def test_subset_selectors(tmp_path, selector, expected):
    src = make_dir(tmp_path / "src", UTTS)
    write_files(src, {"utt2num_samples": "".join(f"{u} 100\n" for u, _ in sorted(UTTS)), "feats_type": "raw\n"})
    assert dd.subset_data_dir(src, tmp_path / "dst", **selector) == len(expected)
    dst = dd.load_data_dir(tmp_path / "dst")
    assert dst.utts == expected
    assert sorted(dst.utt_maps) == ["text", "utt2num_samples", "utt2spk", "wav.scp"]
    assert dst.scalars == {"feats_type": b"raw\n"}
    assert dd.validate_data_dir(tmp_path / "dst") == len(expected)


def test_subset_random_is_seeded(tmp_path):
    src = make_dir(tmp_path / "src", UTTS)
    picks = []
    for seed in (1, 1, 2):
        dd.subset_data_dir(src, tmp_path / "dst", random_n=3, seed=seed)
        picks.append(dd.load_data_dir(tmp_path / "dst").utts)
    assert picks[0] == picks[1] and len(picks[0]) == 3 and set(picks[0]) <= {u for u, _ in UTTS}
    with pytest.raises(ValueError, match="asked for 7 utterances; expected 1 to 6"):
        dd.subset_data_dir(src, tmp_path / "dst", first=7)
    with pytest.raises(ValueError, match="exactly one"):
        dd.select_utts(dd.load_data_dir(src), first=1, last=1)


def test_subset_cli(tmp_path):
    src = make_dir(tmp_path / "src", UTTS)
    write_files(tmp_path, {"spks": "a\n"})
    assert run_cli("subset", src, tmp_path / "dst", "--spk-list", tmp_path / "spks").returncode == 0
    assert (tmp_path / "dst" / "spk2utt").read_text() == "a a-1 a-2 a-3\n"
    assert run_cli("subset", src, tmp_path / "dst", "--first", "1", "--last", "1").returncode == 2


# ----------------------------------------------------------------------------- split


def test_split_by_utterance_is_balanced_and_contiguous(tmp_path):
    src = make_dir(tmp_path / "d", UTTS + [("d-1", "d")])
    parts = dd.split_data_dir(src, 3)
    assert parts == [src / "split3" / str(i) for i in (1, 2, 3)]
    assert [dd.load_data_dir(p).utts for p in parts] == [["a-1", "a-2", "a-3"], ["b-1", "b-2"], ["c-1", "d-1"]]
    for p in parts:
        dd.validate_data_dir(p)
    with pytest.raises(ValueError, match="cannot split 7 utterances into 8 parts"):
        dd.split_data_dir(src, 8)


def test_split_by_speaker_keeps_speakers_whole(tmp_path):
    utts = (
        [(f"a-{i}", "a") for i in range(5)]
        + [(f"b-{i}", "b") for i in range(3)]
        + [(f"c-{i}", "c") for i in range(2)]
        + [("d-0", "d"), ("e-0", "e")]
    )
    src = make_dir(tmp_path / "d", utts)
    parts = [dd.load_data_dir(p) for p in dd.split_data_dir(src, 3, by_speaker=True)]
    assert [sorted(set(p.utt2spk.values())) for p in parts] == [["a"], ["b", "e"], ["c", "d"]]
    assert [len(p.utts) for p in parts] == [5, 4, 3]
    with pytest.raises(ValueError, match="cannot split 5 speakers into 6 parts"):
        dd.split_data_dir(src, 6, by_speaker=True)


def test_split_is_reused_when_up_to_date(tmp_path):
    src = make_dir(tmp_path / "d", UTTS)
    old = time.time() - 100
    for p in src.iterdir():
        os.utime(p, (old, old))
    dd.split_data_dir(src, 2)
    first = src / "split2" / "1" / "wav.scp"
    stamp = time.time() - 50
    os.utime(first, (stamp, stamp))
    dd.split_data_dir(src, 2)
    assert first.stat().st_mtime == stamp  # reused, not rewritten
    dd.split_data_dir(src, 2, by_speaker=True)  # another mode: rebuilt
    assert (src / "split2" / ".done").read_text() == "speaker\n"
    assert first.stat().st_mtime > stamp
    write_files(src, {"text": "".join(f"{u} new\n" for u, _ in UTTS)})  # newer source: rebuilt
    dd.split_data_dir(src, 2, by_speaker=True)
    assert (src / "split2" / "1" / "text").read_text().endswith("new\n")


def test_split_cli(tmp_path):
    src = make_dir(tmp_path / "d", UTTS)
    proc = run_cli("split", src, 2, "--by-speaker")
    assert proc.returncode == 0, proc.stderr
    assert (src / "split2" / "1" / "spk2utt").read_text() == "a a-1 a-2 a-3\n"
    assert "reused" in run_cli("split", src, 2, "--by-speaker").stderr


# ----------------------------------------------------------------------------- combine, filter


def test_combine(tmp_path):
    one = make_dir(tmp_path / "one", UTTS[:3])
    two = make_dir(tmp_path / "two", UTTS[3:] + [("a-9", "a")])
    write_files(one, {"utt2num_samples": "a-1 1\na-2 2\na-3 3\n", "feats_type": "raw\n"})
    write_files(two, {"feats_type": "raw\n"})
    assert dd.combine_data_dirs(tmp_path / "all", [one, two]) == 7
    combined = dd.load_data_dir(tmp_path / "all")
    assert combined.utts == ["a-1", "a-2", "a-3", "a-9", "b-1", "b-2", "c-1"]
    assert "utt2num_samples" not in combined.utt_maps  # not in every source
    assert (tmp_path / "all" / "spk2utt").read_text().splitlines()[0] == "a a-1 a-2 a-3 a-9"
    assert combined.scalars == {"feats_type": b"raw\n"}
    dd.validate_data_dir(tmp_path / "all")


def test_combine_duplicate_names_both_sources(tmp_path):
    one = make_dir(tmp_path / "one", UTTS[:3])
    two = make_dir(tmp_path / "two", UTTS[2:])
    with pytest.raises(ValueError, match=f"'a-3' is in both {one} and {two}"):
        dd.combine_data_dirs(tmp_path / "all", [one, two])
    proc = run_cli("combine", tmp_path / "all", one, two)
    assert proc.returncode == 1 and f"'a-3' is in both {one} and {two}" in proc.stderr


def test_filter_exclude(tmp_path):
    src = make_dir(tmp_path / "src", UTTS)
    write_files(tmp_path, {"excluded.txt": "a-2\ttoo short: 0.05 s < min_dur 0.1 s\nc-1\tx\nzz\ty\n"})
    proc = run_cli("filter", src, tmp_path / "dst", "--exclude", tmp_path / "excluded.txt")
    assert proc.returncode == 0, proc.stderr
    assert dd.load_data_dir(tmp_path / "dst").utts == ["a-1", "a-3", "b-1", "b-2"]
    assert (tmp_path / "dst" / "spk2utt").read_text() == "a a-1 a-3\nb b-1 b-2\n"
    assert "1 utterance id(s) of the list are not in the data dir" in proc.stderr
    write_files(tmp_path, {"all": "".join(f"{u}\n" for u, _ in UTTS)})
    with pytest.raises(ValueError, match="excludes every utterance"):
        dd.exclude_utts(src, tmp_path / "dst2", tmp_path / "all")


def test_write_data_dir_removes_stale_files(tmp_path):
    src = make_dir(tmp_path / "src", UTTS)
    dst = write_files(tmp_path / "dst", {"utt2num_samples": "old 1\n", "notes.md": "mine"})
    dd.write_data_dir(dd.load_data_dir(src), dst)
    assert not (dst / "utt2num_samples").exists()
    assert (dst / "notes.md").read_text() == "mine"


@pytest.mark.parametrize("tool", ["subset", "split", "combine", "filter"])
def test_tools_refuse_an_inconsistent_source(tmp_path, tool):
    src = make_dir(tmp_path / "src", UTTS)
    write_files(src, {"text": "a-1 only one\n"})  # the other utterances would vanish unnoticed
    write_files(tmp_path, {"list": "a-1\n"})
    call = {
        "subset": lambda: dd.subset_data_dir(src, tmp_path / "dst", first=1),
        "split": lambda: dd.split_data_dir(src, 2),
        "combine": lambda: dd.combine_data_dirs(tmp_path / "dst", [src]),
        "filter": lambda: dd.exclude_utts(src, tmp_path / "dst", tmp_path / "list"),
    }[tool]
    with pytest.raises(ValueError, match=f"{src}/text: no entry for utterance 'a-2'"):
        call()


# ----------------------------------------------------------------------------- streaming


def test_validate_spk2utt_same_pairs_in_another_order_passes(tmp_path):
    path = make_dir(tmp_path / "d", UTTS)
    write_files(path, {"spk2utt": "a a-3 a-1 a-2\nb b-2 b-1\nc c-1\n"})  # within a line any order
    assert dd.validate_data_dir(path) == len(UTTS)


@pytest.mark.parametrize(
    "spk2utt, message",
    [
        ("a a-1 a-2 a-3\nb b-1 b-2 b-2\nc c-1\n", "spk2utt:2: utterance 'b-2' listed again"),
        ("a a-1 a-2 a-3\nb b-1 b-2\nc c-1 x-9\n", "spk2utt:3: utterance 'x-9' is not in utt2spk"),
        ("a a-1 a-2 b-1\nb a-3 b-2\nc c-1\n", "spk2utt:1: utterance 'b-1' listed under 'a'"),
        ("a a-1 a-2 a-3\nc c-1\nb b-1 b-2\n", "spk2utt:3: key 'b' sorts before 'c' of line 2"),
    ],
)
def test_validate_spk2utt_differences_name_the_line(tmp_path, spk2utt, message):
    path = make_dir(tmp_path / "d", UTTS)
    write_files(path, {"spk2utt": spk2utt})
    with pytest.raises(ValueError, match=message):
        dd.validate_data_dir(path)


def test_iter_utterances_reads_the_files_in_lockstep(tmp_path):
    path = make_dir(tmp_path / "d", UTTS)
    got = list(dd.iter_utterances(path, ["wav.scp", "text", "utt2spk"]))
    assert [u for u, _ in got] == [u for u, _ in UTTS]
    assert got[3] == ("b-1", {"wav.scp": "/audio/b-1.wav", "text": "words of b-1", "utt2spk": "b"})
    write_files(path, {"text": "a-1 x\na-2 x\na-3 x\nb-2 x\nb-3 x\nc-1 x\n"})
    with pytest.raises(ValueError, match=r"differ at wav.scp:4 'b-1', text:4 'b-2'"):
        list(dd.iter_utterances(path, ["wav.scp", "text"]))


def _write_with(path, utts):
    writer = dd.SortedDataDirWriter(path, ["wav.scp", "utt2spk"])
    for utt, spk in utts:
        writer.add(utt, {"wav.scp": f"/w/{utt}.wav", "utt2spk": spk})
    return writer


@pytest.mark.parametrize(
    "utts",
    [
        UTTS,  # speakers contiguous and rising: spk2utt streamed
        [("a-1", "z"), ("a-2", "y"), ("b-1", "z"), ("c-1", "a")],  # neither: derived at the end
    ],
)
def test_sorted_writer_equals_write_data_dir(tmp_path, utts):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "text").write_text("stale\n")  # a known file not written: removed
    assert _write_with(tmp_path / "w", utts).close() == len(utts)
    reference = dd.DataDir(utt_maps={"wav.scp": {u: f"/w/{u}.wav" for u, _ in utts}, "utt2spk": dict(utts)})
    dd.write_data_dir(reference, tmp_path / "r")
    for name in ("wav.scp", "utt2spk", "spk2utt"):
        assert (tmp_path / "w" / name).read_text() == (tmp_path / "r" / name).read_text()
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["spk2utt", "utt2spk", "wav.scp"]
    assert dd.validate_data_dir(tmp_path / "w", require_text=False) == len(utts)


def test_sorted_writer_refuses_disorder_and_abort_keeps_the_old_files(tmp_path):
    path = make_dir(tmp_path / "d", UTTS)
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    writer = _write_with(path, [("b-1", "b")])
    with pytest.raises(ValueError, match="'b-1' appears twice"):
        writer.add("b-1", {"wav.scp": "x", "utt2spk": "b"})
    with pytest.raises(ValueError, match="'a-1' arrives out of C-locale order"):
        writer.add("a-1", {"wav.scp": "x", "utt2spk": "a"})
    writer.abort()
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before


# ----------------------------------------------------------------------------- from_manifest

MANIFEST = (
    "uttid\tset\tspk\tduration\tpath\ttext\n"
    "s2-train-1\ttrain\ts2\t1.0\twav/train/s2-train-1.flac\tjekyll had something to hyde\n"
    "s1-unlabeled-2\tunlabeled\ts1\t2.0\twav/unlabeled/s1-unlabeled-2.flac\tsecond one\n"
    "s1-unlabeled-1\tunlabeled\ts1\t1.5\t/abs/one.flac\t\n"
)


def test_from_manifest_takes_one_set_sorted_with_absolute_paths(tmp_path):
    write_files(tmp_path / "corpus", {"manifest.tsv": MANIFEST})
    root = (tmp_path / "corpus").resolve()
    assert dd.data_dir_from_manifest(tmp_path / "corpus" / "manifest.tsv", tmp_path / "unl", "unlabeled") == 2
    data = dd.load_data_dir(tmp_path / "unl")
    assert data.utts == ["s1-unlabeled-1", "s1-unlabeled-2"]
    assert data.utt_maps["wav.scp"] == {
        "s1-unlabeled-1": "/abs/one.flac",
        "s1-unlabeled-2": f"{root}/wav/unlabeled/s1-unlabeled-2.flac",
    }
    assert data.utt_maps["text"] == {"s1-unlabeled-1": "", "s1-unlabeled-2": "second one"}
    assert (tmp_path / "unl" / "spk2utt").read_text() == "s1 s1-unlabeled-1 s1-unlabeled-2\n"
    dd.validate_data_dir(tmp_path / "unl")
    # --no-text through the CLI; the old directory's files do not survive
    proc = run_cli(
        "from_manifest", tmp_path / "corpus" / "manifest.tsv", tmp_path / "unl", "--set", "train", "--no-text"
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "unl").iterdir()) == ["spk2utt", "utt2spk", "wav.scp"]
    assert (tmp_path / "unl" / "utt2spk").read_text() == "s2-train-1 s2\n"


@pytest.mark.parametrize(
    "content, set_name, message",
    [
        (
            "uttid\tset\tpath\ttext\nu\ttrain\tu.flac\tx\n",
            "train",
            r"no column spk in its header \(uttid set path text\)",
        ),
        (MANIFEST + "s3-train-2\ttrain\ts3\n", "train", r"manifest.tsv:5: 3 field\(s\); expected 6"),
        (MANIFEST + MANIFEST.splitlines(keepends=True)[1], "train", "manifest.tsv:5: utterance id s2-train-1 repeated"),
        (MANIFEST, "dev", "no row of set dev; its sets: train, unlabeled"),
    ],
)
def test_from_manifest_errors_name_the_file(tmp_path, content, set_name, message):
    write_files(tmp_path, {"manifest.tsv": content})
    with pytest.raises(ValueError, match=message):
        dd.data_dir_from_manifest(tmp_path / "manifest.tsv", tmp_path / "out", set_name)
    assert not (tmp_path / "out").exists()
    proc = run_cli("from_manifest", tmp_path / "manifest.tsv", tmp_path / "out", "--set", set_name)
    assert proc.returncode == 1 and "manifest.tsv" in proc.stderr
