"""Tests of the native-layout writers (LibriSpeech, TIMIT, JSUT, AISHELL-1, AISHELL-2)."""

import re
import tarfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tools import mini_corpus as mc
from tools import mini_layouts as ml

CORPUS = Path(__file__).resolve().parents[2] / "egs2" / "mini" / "corpus"


def _files(root: Path):
    """Relative paths of all files under ``root``, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _extract_tar(path: Path, dest: Path):
    with tarfile.open(path) as tar:
        tar.extractall(dest, filter="data")
        return tar.getnames()


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("layouts")


# ---------------------------------------------------------------------------------------------
# LibriSpeech
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def librispeech(out):
    return ml.write_librispeech(CORPUS, out / "ls")


def test_librispeech_layout(librispeech):
    root, count = librispeech
    assert root.name == "LibriSpeech" and count == 240
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(ml.LIBRISPEECH_PARTS)
    assert {"README.TXT", "SPEAKERS.TXT", "CHAPTERS.TXT"} <= {p.name for p in root.iterdir()}
    readers = {}
    flacs = list(root.glob("*/*/*/*.flac"))
    assert len(flacs) == 240
    for flac in flacs:
        part, reader, chapter = flac.parts[-4:-1]
        assert re.fullmatch(rf"{reader}-{chapter}-\d{{4}}\.flac", flac.name)
        assert reader.isdigit() and chapter.isdigit()
        readers.setdefault(reader, set()).add(part)
        assert sf.info(str(flac)).samplerate == 16000
    assert all(len(parts) == 1 for parts in readers.values())  # speakers disjoint between parts
    for trans in root.glob("*/*/*/*.trans.txt"):
        reader, chapter = trans.parts[-3:-1]
        assert trans.name == f"{reader}-{chapter}.trans.txt"
        for line in trans.read_text().splitlines():
            utt_id, text = line.split(" ", 1)
            assert (trans.parent / f"{utt_id}.flac").is_file()
            assert text == text.upper() and re.fullmatch(r"[A-Z' ]+", text)
    speakers = (root / "SPEAKERS.TXT").read_text().splitlines()
    assert {line.split("|")[0].strip() for line in speakers[1:]} == set(readers)


def test_librispeech_tarballs_unpack_to_the_tree(librispeech, out, tmp_path):
    root, _ = librispeech
    result = ml.write_librispeech(CORPUS, out / "ls_tar", tarballs=True)
    assert result.count == 240
    tarballs = sorted(p.name for p in result.path.iterdir())
    assert tarballs == sorted(f"{part}.tar.gz" for part in ml.LIBRISPEECH_PARTS)
    for name in tarballs:
        names = _extract_tar(result.path / name, tmp_path)
        assert all(n.split("/")[0] == "LibriSpeech" for n in names)
        assert "LibriSpeech/SPEAKERS.TXT" in names
    assert _files(tmp_path / "LibriSpeech") == _files(root)


def test_librispeech_parts_need_enough_speakers():
    with pytest.raises(ValueError, match="English speakers"):
        ml.librispeech_parts(["s01", "s02"])


# ---------------------------------------------------------------------------------------------
# TIMIT
# ---------------------------------------------------------------------------------------------

TIMIT_UPPER = re.compile(r"TIMIT/(TRAIN|TEST)/DR[1-8]/[MF][A-Z]{3}\d/(SA[12]|SX\d+|SI\d+)\.(WAV|PHN|WRD|TXT)")


@pytest.fixture(scope="module")
def timit(out):
    return ml.write_timit(CORPUS, out / "timit")


def test_timit_upper_case_layout(timit):
    root, count = timit
    assert count == 240
    files = _files(root.parent)
    assert len(files) == 4 * 240
    assert all(TIMIT_UPPER.fullmatch(f) for f in files), [f for f in files if not TIMIT_UPPER.fullmatch(f)][:3]
    speakers = {}
    for f in files:
        _, part, region, spk, name = f.split("/")
        speakers.setdefault((part, region, spk), set()).add(name.split(".")[0])
    for names in speakers.values():
        assert {"SA1", "SA2"} <= names
        assert any(n.startswith("SX") for n in names) and any(n.startswith("SI") for n in names)
    sa1 = {(root / part / region / spk / "SA1.TXT").read_text().split(" ", 2)[2] for part, region, spk in speakers}
    assert len(sa1) == 1  # every speaker reads the same SA1 sentence


def test_timit_test_speakers_are_real_core_and_dev_ids(timit):
    root, _ = timit
    test = {p.name: int(p.parent.name[2:]) for p in (root / "TEST").glob("DR*/*")}
    train = {p.name for p in (root / "TRAIN").glob("DR*/*")}
    core = [s for s in test if s in ml.CORE_TEST_SPEAKERS]
    dev = [s for s in test if s in ml.DEV_SPEAKERS]
    assert len(core) == 3 and len(dev) == 3 and len(test) == 6 and len(train) == 10
    for spk in core:
        assert test[spk] == ml.CORE_TEST_SPEAKERS.index(spk) // 3 + 1
    for spk in dev:
        assert test[spk] == ml.DEV_SPEAKER_REGIONS[spk]
    assert not train & (set(ml.CORE_TEST_SPEAKERS) | set(ml.DEV_SPEAKERS))


def test_timit_speaker_lists():
    core, dev = ml.CORE_TEST_SPEAKERS, ml.DEV_SPEAKERS
    assert len(core) == len(set(core)) == 24 and len(dev) == len(set(dev)) == 50
    assert not set(core) & set(dev)
    for region in range(8):  # two men and one woman per dialect region
        assert sorted(s[0] for s in core[3 * region : 3 * region + 3]) == ["F", "M", "M"]
    assert set(ml.DEV_SPEAKER_REGIONS) <= set(dev)


def test_timit_files_content(timit):
    root, _ = timit
    spk_dir = next((root / "TEST").glob("DR*/*"))
    for wav in sorted(spk_dir.glob("*.WAV")):
        raw = wav.read_bytes()
        lines = raw[:1024].decode("ascii").rstrip(" ").split("\n")
        assert lines[:2] == ["NIST_1A", "   1024"] and lines[-2:] == ["end_head", ""]
        header = {name: value for name, _, value in (line.split(" ", 2) for line in lines[2:-2])}
        n = int(header.pop("sample_count"))
        samples = np.frombuffer(raw[1024:], "<i2")
        assert (
            header
            == {  # the fields of LDC's TIMIT headers, in their order
                "database_id": "TIMIT",
                "database_version": "1.0",
                "utterance_id": f"{spk_dir.name[1:]}_{wav.stem}".lower(),  # "aks0_sa1"
                "channel_count": "1",
                "sample_rate": "16000",
                "sample_min": str(samples.min()),
                "sample_max": str(samples.max()),
                "sample_n_bytes": "2",
                "sample_byte_format": "01",
                "sample_sig_bits": "16",
            }
        )
        assert list(header)[:3] == ["database_id", "database_version", "utterance_id"]
        assert len(samples) == n
        audio, rate = sf.read(str(wav), dtype="int16")  # what the TIMIT preparation reads them with
        assert sf.info(str(wav)).format == "NIST" and rate == 16000 and np.array_equal(audio, samples)
        txt = wav.with_suffix(".TXT").read_text()
        assert re.fullmatch(rf"0 {n} [A-Z][a-z ]+\.\n", txt)
        phn = [line.split() for line in wav.with_suffix(".PHN").read_text().splitlines()]
        assert phn[0][2] == phn[-1][2] == "h#" and phn[0][0] == "0" and int(phn[-1][1]) == n
        assert {p[2] for p in phn} <= set(mc.TIMIT_PHONES)
        wrd = [line.split() for line in wav.with_suffix(".WRD").read_text().splitlines()]
        assert " ".join(w[2] for w in wrd) == txt.split(" ", 2)[2].rstrip(".\n").lower()
    info, utts = mc.load_language(CORPUS, "en")
    mini_spk = next(s for s, t in ml.timit_speakers(info).items() if t.timit_id == spk_dir.name)
    original = next(u for u in utts if u.spk == mini_spk and u.text == mc.SHARED_SENTENCES[0])
    sa1, _ = sf.read(str(spk_dir / "SA1.WAV"), dtype="int16")
    assert np.array_equal(sa1, sf.read(str(original.audio), dtype="int16")[0])


def test_timit_lower_case_via_cli(timit, out):
    result = ml.main(["timit", "--corpus", str(CORPUS), "--out", str(out / "timit_lower"), "--case", "lower"])
    assert result.path.name == "timit" and result.count == 240
    files = _files(result.path.parent)
    assert all(f == f.lower() for f in files)
    assert files == sorted(f.lower() for f in _files(timit.path.parent))
    assert sf.info(str(result.path / files[0].split("/", 1)[1].rsplit(".", 1)[0]) + ".wav").samplerate == 16000


def test_timit_names_need_distinct_readings():
    utt = mc.CorpusUtterance("s01-en-0000", "s01", "go up", Path("x.flac"))
    with pytest.raises(ValueError, match="twice"):
        ml.timit_utterance_names([utt, utt._replace(uttid="s01-en-0001")])


# ---------------------------------------------------------------------------------------------
# JSUT
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jsut(out):
    return ml.write_jsut(CORPUS, out / "jsut")


def test_jsut_layout(jsut):
    root, count = jsut
    assert root.name == "jsut_ver1.1" and count == 90
    assert (root / "README.txt").is_file()
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(ml.JSUT_SUBSETS)
    total = 0
    for subset in ml.JSUT_SUBSETS:
        lines = (root / subset / "transcript_utf8.txt").read_text(encoding="utf-8").splitlines()
        assert lines == sorted(lines) and lines
        ids = [line.split(":", 1)[0] for line in lines]
        digits = 4 if subset == "basic5000" else 3
        assert all(re.fullmatch(rf"{subset.upper()}_\d{{{digits}}}", i) for i in ids)
        assert sorted(p.stem for p in (root / subset / "wav").iterdir()) == ids
        total += len(ids)
    assert total == 90
    wav = root / "basic5000" / "wav" / "BASIC5000_0001.wav"
    info = sf.info(str(wav))
    assert (info.samplerate, info.channels, info.subtype) == (48000, 1, "PCM_16")
    first = mc.load_language(CORPUS, "ja")[1][0]
    assert info.frames == 3 * sf.info(str(first.audio)).frames
    assert (
        (root / "basic5000" / "transcript_utf8.txt")
        .read_text(encoding="utf-8")
        .startswith(f"BASIC5000_0001:{first.text}\n")
    )


def test_jsut_zip_unpacks_to_the_tree(jsut, out, tmp_path):
    result = ml.main(["jsut", "--corpus", str(CORPUS), "--out", str(out / "jsut_zip"), "--zip"])
    assert result.count == 90
    archive = result.path / "jsut_ver1.1.zip"
    assert [p.name for p in result.path.iterdir()] == ["jsut_ver1.1.zip"]
    with zipfile.ZipFile(archive) as zf:
        assert all(n.startswith("jsut_ver1.1/") for n in zf.namelist())
        zf.extractall(tmp_path)
    assert _files(tmp_path / "jsut_ver1.1") == _files(jsut.path)


# ---------------------------------------------------------------------------------------------
# AISHELL-1
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aishell(out):
    return ml.write_aishell(CORPUS, out / "aishell")


def test_aishell_layout(aishell):
    root, count = aishell
    assert root.name == "data_aishell" and count == 90
    wavs = sorted((root / "wav").glob("*/*/*.wav"))
    assert len(wavs) == 90
    split_of = {}
    for wav in wavs:
        split, spk = wav.parts[-3:-1]
        assert split in ("train", "dev", "test") and re.fullmatch(r"S\d{4}", spk)
        assert re.fullmatch(rf"BAC009{spk}W\d{{4}}\.wav", wav.name)
        assert split_of.setdefault(spk, split) == split
    assert Counter(split_of.values()) == {"train": 4, "dev": 1, "test": 1}
    assert split_of["S0002"] == "train" and split_of["S0724"] == "dev" and split_of["S0764"] == "test"
    info = sf.info(str(wavs[0]))
    assert (info.samplerate, info.format, info.subtype) == (16000, "WAV", "PCM_16")
    lines = (root / "transcript" / ml.AISHELL_TRANSCRIPT).read_text(encoding="utf-8").splitlines()
    assert lines == sorted(lines) and len(lines) == 90
    assert {line.split()[0] for line in lines} == {w.stem for w in wavs}
    vocab = {w for w, _ in mc.ZH_WORDS}
    assert all(len(line.split()) >= 3 and set(line.split()[1:]) <= vocab for line in lines)


def test_aishell_tarballs_unpack_to_the_tree(aishell, out, tmp_path):
    result = ml.write_aishell(CORPUS, out / "aishell_tar", tarballs=True)
    assert sorted(p.name for p in result.path.iterdir()) == [
        "data_aishell.tgz",
        "resource_aishell.tgz",
    ]
    names = _extract_tar(result.path / "data_aishell.tgz", tmp_path)
    inner = sorted(n for n in names if n.endswith(".tar.gz"))
    assert inner == sorted(f"data_aishell/wav/{p.name}.tar.gz" for p in aishell.path.glob("wav/*/*"))
    for name in inner:
        members = _extract_tar(tmp_path / name, tmp_path / "data_aishell" / "wav")
        spk = Path(name).name[: -len(".tar.gz")]
        assert all(re.fullmatch(rf"(train|dev|test)/{spk}(/BAC009{spk}W\d{{4}}\.wav)?", m) for m in members)
        (tmp_path / name).unlink()
    assert _files(tmp_path / "data_aishell") == _files(aishell.path)
    _extract_tar(result.path / "resource_aishell.tgz", tmp_path)
    lexicon = (tmp_path / "resource_aishell" / "lexicon.txt").read_text(encoding="utf-8").splitlines()
    assert "北京 b ei3 j ing1" in lexicon
    assert {w for w, _ in mc.ZH_WORDS} <= {line.split()[0] for line in lexicon}


def test_archives_are_reproducible(tmp_path):
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "f.txt").write_text("x\n")
    ml.write_tar_gz(tmp_path / "a.tgz", tree, ["d"])
    ml.write_tar_gz(tmp_path / "b.tgz", tree, ["d"])
    assert (tmp_path / "a.tgz").read_bytes() == (tmp_path / "b.tgz").read_bytes()


# ---------------------------------------------------------------------------------------------
# AISHELL-2
# ---------------------------------------------------------------------------------------------


def test_aishell2_layout(out, aishell):
    result = ml.main(["aishell2", "--corpus", str(CORPUS), "--out", str(out / "aishell2")])
    root = result.path
    assert root.name == "AISHELL-2" and result.count == 90
    wavs = sorted((root / "iOS/data/wav").glob("*/*.wav"))
    assert len(wavs) == 90 and {w.parent.name for w in wavs} == {f"C{n:04d}" for n in range(1, 7)}
    assert all(re.fullmatch(rf"I{w.parent.name}W\d{{4}}\.wav", w.name) for w in wavs)
    info = sf.info(str(wavs[0]))
    assert (info.samplerate, info.format, info.subtype) == (16000, "WAV", "PCM_16")
    trans = (root / "iOS/data/trans.txt").read_text(encoding="utf-8").splitlines()
    assert trans == sorted(trans) and [line.split("\t")[0] for line in trans] == [w.stem for w in wavs]
    scp = (root / "iOS/data/wav.scp").read_text(encoding="utf-8").splitlines()
    assert scp == [f"{w.stem}\twav/{w.parent.name}/{w.name}" for w in wavs]
    # the texts are AISHELL-1's without the spaces: the held-out speakers' sentences are AISHELL-1's dev/test
    aishell1 = {}
    for line in (aishell.path / "transcript" / ml.AISHELL_TRANSCRIPT).read_text(encoding="utf-8").splitlines():
        utt, words = line.split(maxsplit=1)
        aishell1[utt] = words.replace(" ", "")
    texts = [line.split("\t")[1] for line in trans]
    assert sorted(texts) == sorted(aishell1.values()) and all(" " not in t for t in texts)
    for name, spk in ml.AISHELL2_EVAL_SPEAKERS.items():
        aishell1_split = {aishell1[p.stem] for p in (aishell.path / "wav" / name).rglob("*.wav")}
        for channel, letter in ml.AISHELL2_CHANNELS.items():
            set_dir = root / "AISHELL-DEV-TEST-SET" / channel / name
            lines = (set_dir / "trans.txt").read_text(encoding="utf-8").splitlines()
            assert len(lines) == ml.AISHELL2_EVAL_UTTS
            assert all(re.fullmatch(rf"{letter}{spk}W\d{{4}}\t\S+", line) for line in lines)
            assert {line.split("\t")[1] for line in lines} <= aishell1_split
            assert len(list((set_dir / "wav" / spk).glob("*.wav"))) == ml.AISHELL2_EVAL_UTTS


def test_aishell2_without_eval_sets(out):
    result = ml.write_aishell2(CORPUS, out / "aishell2_train", eval_sets=False)
    assert sorted(p.name for p in result.path.iterdir()) == ["iOS"]


# ---------------------------------------------------------------------------------------------
# Long recordings with segments
# ---------------------------------------------------------------------------------------------


def test_mini_recordings_hold_every_utterance_at_its_segment(out):
    result = ml.main(["recordings", "--corpus", str(CORPUS), "--out", str(out / "recordings"), "--bad_segments"])
    root = result.path / "en"
    _, utts = mc.load_language(CORPUS, "en")
    assert result.count == len(utts) + len(ml.BAD_SEGMENTS)
    speakers = sorted({u.spk for u in utts})
    assert sorted(p.name for p in (root / "wav").iterdir()) == [f"{spk}-en.flac" for spk in speakers]
    segments = {}
    for line in (root / "segments").read_text().splitlines():
        utt, recording, start, end = line.split()
        segments[utt] = (recording, round(float(start) * 16000), round(float(end) * 16000))
    assert (root / "text").read_text().splitlines() == sorted((root / "text").read_text().splitlines())
    assert set(segments) == {line.split()[0] for line in (root / "text").read_text().splitlines()}
    recordings = {spk: sf.read(str(root / "wav" / f"{spk}-en.flac"), dtype="int16")[0] for spk in speakers}
    gap = round(ml.RECORDING_GAP * 16000)
    for utt in utts:
        recording, start, end = segments[utt.uttid]
        original, _ = sf.read(str(utt.audio), dtype="int16")
        np.testing.assert_array_equal(recordings[utt.spk][start:end], original)
        assert recording == f"{utt.spk}-en" and not recordings[utt.spk][start - gap : start].any()
    first = speakers[0]
    _, start, end = segments[f"{first}-en-9998"]
    assert end < start
    _, start, end = segments[f"{first}-en-9999"]
    assert start < len(recordings[first]) and end == len(recordings[first]) + 2 * 16000


def test_prepare_mini_reads_the_recordings_layout(out, tmp_path):
    from espnet_ext.data import datadir
    from espnet_ext.data.mini import prepare_mini

    result = ml.write_mini_recordings(CORPUS, out / "recordings_prep")
    speakers = {u.spk for u in mc.load_language(CORPUS, "en")[1]}
    counts = prepare_mini(result.path, tmp_path / "data")
    assert counts == {"train": 176, "dev": 32, "test": 32}
    for name, count in counts.items():
        assert datadir.validate_data_dir(tmp_path / "data" / name) == count
        wav = (tmp_path / "data" / name / "wav.scp").read_text().splitlines()
        assert len(wav) == len(speakers) and all(line.split()[1].endswith(f"/{line.split()[0]}.flac") for line in wav)
