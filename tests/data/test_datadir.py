"""Tests of espnet_ext.data.datadir (validate, fix, load and write, the sorted writer, from a manifest)
and its CLI (python -m espnet_ext.bin.datadir validate|fix|from_manifest)."""

import pytest

from espnet_ext.data import datadir as dd

UTTS = [("a-1", "a"), ("a-2", "a"), ("a-3", "a"), ("b-1", "b"), ("b-2", "b"), ("c-1", "c")]


# ----------------------------------------------------------------------------- validate


def test_validate_ok(tmp_path, make_data_dir):
    assert dd.validate_data_dir(make_data_dir(tmp_path / "d", UTTS)) == len(UTTS)
    assert dd.validate_data_dir(make_data_dir(tmp_path / "n", UTTS, text=False), require_text=False) == len(UTTS)
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
        ("segments", "a-1 rec 0 1\n", "segments: no entry for utterance 'a-2' (utt2spk line 2)"),
    ],
)
def test_validate_reports_first_problem(tmp_path, name, content, message, write_files, make_data_dir):
    path = make_data_dir(tmp_path / "d", UTTS)
    write_files(path, {name: content})
    with pytest.raises(ValueError) as err:
        dd.validate_data_dir(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_validate_cli_exit_status(tmp_path, write_files, make_data_dir, datadir_cli):
    path = make_data_dir(tmp_path / "d", UTTS)
    assert datadir_cli("validate", path).returncode == 0
    write_files(path, {"text": b"a-1 \xff\n"})
    proc = datadir_cli("validate", path)
    assert proc.returncode == 1
    assert f"{path}/text:1: not UTF-8" in proc.stderr
    assert datadir_cli("validate", path, "--no-text").returncode == 1  # a text that exists is checked
    (path / "text").unlink()
    assert datadir_cli("validate", path, "--no-text").returncode == 0


# ----------------------------------------------------------------------------- fix


def test_fix_drops_and_lists_every_utterance(tmp_path, write_files):
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


def test_fix_cli_derives_utt2spk_from_spk2utt(tmp_path, write_files, datadir_cli):
    path = write_files(tmp_path / "d", {"wav.scp": "u1 a\nu2 b\n", "text": "u1 x\nu2 y\n", "spk2utt": "s u2 u1\n"})
    proc = datadir_cli("fix", path)
    assert proc.returncode == 0, proc.stderr
    assert "dropped 0" in proc.stderr
    assert (path / "utt2spk").read_text() == "u1 s\nu2 s\n"
    assert (path / "spk2utt").read_text() == "s u1 u2\n"


# ----------------------------------------------------------------------------- load, write


def test_write_data_dir_removes_stale_files(tmp_path, write_files, make_data_dir):
    src = make_data_dir(tmp_path / "src", UTTS)
    dst = write_files(tmp_path / "dst", {"utt2num_samples": "old 1\n", "notes.md": "mine"})
    dd.write_data_dir(dd.load_data_dir(src), dst)
    assert not (dst / "utt2num_samples").exists()
    assert (dst / "notes.md").read_text() == "mine"


# ----------------------------------------------------------------------------- streaming


def test_validate_spk2utt_same_pairs_in_another_order_passes(tmp_path, write_files, make_data_dir):
    path = make_data_dir(tmp_path / "d", UTTS)
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
def test_validate_spk2utt_differences_name_the_line(tmp_path, spk2utt, message, write_files, make_data_dir):
    path = make_data_dir(tmp_path / "d", UTTS)
    write_files(path, {"spk2utt": spk2utt})
    with pytest.raises(ValueError, match=message):
        dd.validate_data_dir(path)


def test_iter_utterances_reads_the_files_in_lockstep(tmp_path, write_files, make_data_dir):
    path = make_data_dir(tmp_path / "d", UTTS)
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


def test_sorted_writer_refuses_disorder_and_abort_keeps_the_old_files(tmp_path, make_data_dir):
    path = make_data_dir(tmp_path / "d", UTTS)
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


def test_from_manifest_takes_one_set_sorted_with_absolute_paths(tmp_path, write_files, datadir_cli):
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
    proc = datadir_cli(
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
def test_from_manifest_errors_name_the_file(tmp_path, content, set_name, message, write_files, datadir_cli):
    write_files(tmp_path, {"manifest.tsv": content})
    with pytest.raises(ValueError, match=message):
        dd.data_dir_from_manifest(tmp_path / "manifest.tsv", tmp_path / "out", set_name)
    assert not (tmp_path / "out").exists()
    proc = datadir_cli("from_manifest", tmp_path / "manifest.tsv", tmp_path / "out", "--set", set_name)
    assert proc.returncode == 1 and "manifest.tsv" in proc.stderr
