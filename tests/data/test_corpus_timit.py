"""TIMIT preparation (espnet_ext.data.corpora.timit) on the mini corpus laid out as TIMIT
(tools.mini_layouts): phone folding, speaker sets, case of names, bad input."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_ext.bin import corpus as corpus_cli
from espnet_ext.data.corpora import timit
from espnet_ext.data.datadir import validate_data_dir
from espnet_ext.data.kaldi_files import read_map
from tools import mini_corpus, mini_layouts

ROOT = Path(__file__).resolve().parents[2]
PHONE_MAP = ROOT / "egs2" / "timit" / "asr1" / "conf" / "phones.60-48-39.map"
CORPUS = mini_layouts.DEFAULT_CORPUS
SETS = ("train", "dev", "test")


@pytest.fixture(scope="module")
def upper(tmp_path_factory) -> Path:
    return mini_layouts.write_timit(CORPUS, tmp_path_factory.mktemp("timit"), case="upper").path


@pytest.fixture(scope="module")
def prepared(upper, tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    return out, timit.prepare_timit(upper, out, PHONE_MAP)


@pytest.fixture
def copy(upper, tmp_path) -> Path:
    return Path(shutil.copytree(upper, tmp_path / "TIMIT"))


def data_files(out: Path, suffix: str = "") -> dict:
    """{set: (text, utt2spk, wav.scp keys)}."""
    return {
        s: (
            read_map(out / f"{s}{suffix}" / "text"),
            read_map(out / f"{s}{suffix}" / "utt2spk"),
            sorted(read_map(out / f"{s}{suffix}" / "wav.scp")),
        )
        for s in SETS
    }


def excluded(data_dir: Path) -> dict:
    lines = (data_dir / "excluded.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split("\t", 1) for line in lines)


# ---------------------------------------------------------------------------------------------
# Phone map and speaker lists
# ---------------------------------------------------------------------------------------------


def test_phone_map_folds_61_to_48_and_39():
    maps = {n: timit.read_phone_map(PHONE_MAP, n) for n in (60, 48, 39)}
    assert all(len(m) == 61 and m["q"] is None for m in maps.values())
    assert [len({v for v in m.values() if v}) for m in maps.values()] == [60, 48, 39]
    assert all(maps[60][p] == p for p in maps[60] if p != "q")
    folded39 = {
        "ao": "aa",
        "ax": "ah",
        "ax-h": "ah",
        "axr": "er",
        "el": "l",
        "em": "m",
        "en": "n",
        "eng": "ng",
        "nx": "n",
        "hv": "hh",
        "ix": "ih",
        "ux": "uw",
        "zh": "sh",
    }
    assert {p: maps[39][p] for p in folded39} == folded39
    silences = ("h#", "pau", "epi", "bcl", "dcl", "gcl", "pcl", "tcl", "kcl")
    assert {maps[39][p] for p in silences} == {"sil"}
    assert [maps[48][p] for p in silences] == ["sil", "sil", "epi", "vcl", "vcl", "vcl", "cl", "cl", "cl"]
    assert timit.map_phones(["h#", "q", "ao", "dcl", "d", "h#"], maps[39], "x") == ["sil", "aa", "sil", "d", "sil"]


def test_bad_phone_map_lines_name_the_line(tmp_path):
    bad = tmp_path / "map"
    bad.write_text("# comment\naa aa aa\nb b\n")
    with pytest.raises(ValueError, match=rf"{bad}:3: expected '<60-set> <48-set> <39-set>'"):
        timit.read_phone_map(bad)
    bad.write_text("aa aa aa\naa ao aa\n")
    with pytest.raises(ValueError, match=rf"{bad}:2: 'aa' is mapped twice"):
        timit.read_phone_map(bad)
    with pytest.raises(ValueError, match="phone_set: expected one of"):
        timit.read_phone_map(PHONE_MAP, 61)


def test_speaker_sets_are_timit_s_real_ones():
    assert len(timit.DEV_SPEAKERS) == len(set(timit.DEV_SPEAKERS)) == 50
    assert len(timit.CORE_TEST_SPEAKERS) == len(set(timit.CORE_TEST_SPEAKERS)) == 24
    assert not set(timit.DEV_SPEAKERS) & set(timit.CORE_TEST_SPEAKERS)
    # the core test set: two men and a woman from each of the 8 dialect regions
    assert [s[0] for s in timit.CORE_TEST_SPEAKERS] == list("MMF" * 8)


# ---------------------------------------------------------------------------------------------
# Preparation
# ---------------------------------------------------------------------------------------------


def test_sets_speakers_and_phone_transcripts(prepared):
    out, results = prepared
    info, utts = mini_corpus.load_language(CORPUS, "en")
    speakers = mini_layouts.timit_speakers(info)
    names = mini_layouts.timit_utterance_names(utts)
    phones = mini_corpus.read_segments(CORPUS / "en" / "phones")
    phone_map = timit.read_phone_map(PHONE_MAP, 39)
    expected = {s: {} for s in SETS}
    for utt in utts:
        where = speakers[utt.spk]
        if names[utt.uttid].startswith("SA"):
            continue
        name = (
            "dev"
            if where.timit_id in timit.DEV_SPEAKERS
            else "test"
            if where.timit_id in timit.CORE_TEST_SPEAKERS
            else "train"
        )
        labels = [seg.label for seg in phones[utt.uttid]]
        expected[name][f"{where.timit_id}_{names[utt.uttid]}"] = " ".join(timit.map_phones(labels, phone_map, ""))
    files = data_files(out)
    for name in SETS:
        text, utt2spk, _ = files[name]
        assert text == expected[name]
        assert all(utt2spk[u] == u.split("_")[0] for u in text)
        assert results[name].count == validate_data_dir(out / name) == len(text)
        assert excluded(out / name) == {}
    assert [len(files[s][0]) for s in SETS] == [130, 39, 39]  # 10/3/3 speakers x 13 (SA left out)
    assert {files["test"][1][u] for u in files["test"][0]} <= set(timit.CORE_TEST_SPEAKERS)
    assert {files["dev"][1][u] for u in files["dev"][0]} <= set(timit.DEV_SPEAKERS)


def test_wav_scp_lists_the_sphere_files(prepared, upper):
    """Stage 1 writes no audio: wav.scp points at the corpus's .WAV files, which stage 3 decodes."""
    out, _ = prepared
    for name in SETS:
        wav = read_map(out / name / "wav.scp")
        for utt, path in wav.items():
            spk, utt_name = utt.split("_")
            (sphere,) = upper.glob(f"*/DR*/{spk}/{utt_name}.WAV")
            assert path == str(sphere.resolve())
    assert not (out / "local").exists()


def test_audio_check_wants_16k_mono_non_empty_sphere(tmp_path):
    good, rate8k, stereo, empty = (tmp_path / f"{n}.WAV" for n in ("good", "rate8k", "stereo", "empty"))
    sf.write(str(good), np.zeros(160, np.int16), 16000, format="NIST", subtype="PCM_16")
    sf.write(str(rate8k), np.zeros(80, np.int16), 8000, format="NIST", subtype="PCM_16")
    sf.write(str(stereo), np.zeros((160, 2), np.int16), 16000, format="NIST", subtype="PCM_16")
    sf.write(str(empty), np.zeros(0, np.int16), 16000, format="NIST", subtype="PCM_16")
    timit.check_audio(good)
    with pytest.raises(ValueError, match=rf"{rate8k}: expected 16000 Hz mono audio, found 8000 Hz, 1 channel"):
        timit.check_audio(rate8k)
    with pytest.raises(ValueError, match=rf"{stereo}: expected 16000 Hz mono audio, found 16000 Hz, 2 channel"):
        timit.check_audio(stereo)
    with pytest.raises(
        ValueError, match=rf"{empty}: expected 16000 Hz mono audio, found 16000 Hz, 1 channel\(s\), 0 samples"
    ):
        timit.check_audio(empty)
    # shorten-compressed SPHERE (some non-LDC copies): libsndfile does not decode it
    shorten = tmp_path / "shorten.WAV"
    header = "\n".join(
        [
            "NIST_1A",
            "   1024",
            "channel_count -i 1",
            "sample_count -i 100",
            "sample_rate -i 16000",
            "sample_n_bytes -i 2",
            "sample_byte_format -s2 01",
            "sample_coding -s26 pcm,embedded-shorten-v2.00",
            "end_head",
            "",
        ]
    )
    shorten.write_bytes(header.encode().ljust(1024, b" ") + bytes(200))
    with pytest.raises(ValueError, match=rf"{shorten}: expected NIST SPHERE audio, libsndfile says: .*unimplemented"):
        timit.check_audio(shorten)


def test_word_transcripts_and_other_phone_sets(upper, prepared, tmp_path):
    out, _ = prepared
    timit.prepare_timit(upper, tmp_path, PHONE_MAP, trans_type="word", suffix="_word")
    _, utts = mini_corpus.load_language(CORPUS, "en")
    words = {u.text for u in utts}
    files = data_files(tmp_path, "_word")
    for name in SETS:
        assert set(files[name][0].values()) <= words
        assert sorted(files[name][0]) == sorted(read_map(out / name / "text"))
    timit.prepare_timit(upper, tmp_path, PHONE_MAP, phone_set=48, suffix="_phn48")
    phones48 = {p for t in read_map(tmp_path / "train_phn48" / "text").values() for p in t.split()}
    phones39 = {p for t in read_map(out / "train" / "text").values() for p in t.split()}
    assert {"cl", "vcl", "sil"} <= phones48 and not {"cl", "vcl"} & phones39 and "sil" in phones39
    assert timit.word_transcript(["Don't", "y'all", "carry-on", "."]) == "don't y'all carryon"


def test_lower_and_mixed_case_names_give_the_same_data(prepared, copy, tmp_path):
    out, _ = prepared
    lower = mini_layouts.write_timit(CORPUS, tmp_path / "lower", case="lower").path
    timit.prepare_timit(lower.parent, tmp_path / "a", PHONE_MAP)  # the parent of timit/ also works
    # mixed: lower-case TEST part and dialect regions, some lower-case speakers and files
    (copy / "TEST").rename(copy / "test")
    for region in (copy / "test").iterdir():
        region.rename(region.with_name(region.name.lower()))
    for i, path in enumerate(sorted(copy.glob("TRAIN/*/*/*"))):
        if i % 3 == 0:
            path.rename(path.with_name(path.name.lower()))
    for spk in sorted(copy.glob("TRAIN/*/*"))[::2]:
        spk.rename(spk.with_name(spk.name.lower()))
    timit.prepare_timit(copy, tmp_path / "b", PHONE_MAP)
    reference = data_files(out)
    assert data_files(tmp_path / "a") == reference
    assert data_files(tmp_path / "b") == reference


def test_names_differing_only_in_case_are_an_error(copy, tmp_path):
    (wav,) = copy.glob("TEST/DR*/MJMP0/SX5.WAV")
    shutil.copy(wav, wav.with_name("sx5.wav"))
    with pytest.raises(ValueError, match=r"SX5.WAV and .*sx5.wav: names differ only in case"):
        timit.prepare_timit(copy, tmp_path, PHONE_MAP)


def test_unknown_phone_symbol_names_symbol_and_file(copy, tmp_path):
    phn = sorted(copy.glob("TRAIN/DR*/*/SI*.PHN"))[0]
    phn.write_text(phn.read_text().replace(" h#\n", " zz\n", 1))
    with pytest.raises(ValueError, match=rf"{phn}: unknown phone symbol 'zz'"):
        timit.prepare_timit(copy, tmp_path, PHONE_MAP)
    assert corpus_cli.main(["timit", str(copy), str(tmp_path), "--phone_map", str(PHONE_MAP)]) == 1


def test_bad_utterances_are_excluded_and_listed(copy, tmp_path):
    dev_dir = next(copy.glob("TEST/DR*/FAKS0"))
    files = {p.name: p for p in dev_dir.iterdir()}
    sx = sorted(n[:-4] for n in files if n.startswith("SX") and n.endswith(".WAV"))[0]
    si, si2, si3 = sorted(n[:-4] for n in files if n.startswith("SI") and n.endswith(".WAV"))[:3]
    files[f"{sx}.PHN"].unlink()  # missing transcript
    files[f"{si}.WAV"].write_bytes(b"RIFF not a sphere file")  # corrupt audio
    files[f"{si2}.PHN"].write_text("0 100 h#\nnot a phone line\n")  # malformed transcript
    files[f"{si3}.WAV"].unlink()  # missing audio
    results = timit.prepare_timit(copy, tmp_path, PHONE_MAP)
    reasons = excluded(tmp_path / "dev")
    assert reasons == {
        f"FAKS0_{sx}": f"no transcript file {sx}.PHN in {dev_dir}",
        f"FAKS0_{si}": reasons[f"FAKS0_{si}"],
        f"FAKS0_{si2}": f"{files[si2 + '.PHN']}:2: expected '<start> <end> <label>', found 'not a phone line'",
        f"FAKS0_{si3}": f"no audio file {si3}.WAV in {dev_dir}",
    }
    assert reasons[f"FAKS0_{si}"].startswith(f"{files[si + '.WAV']}: expected NIST SPHERE audio, libsndfile says: ")
    assert results["dev"].count == 39 - 4 and not read_map(tmp_path / "dev" / "text").keys() & reasons.keys()
    assert excluded(tmp_path / "train") == {} and results["train"].count == 130


def test_missing_or_empty_corpus_directory(tmp_path):
    with pytest.raises(ValueError, match=r"nowhere: no such directory; expected TIMIT \(set TIMIT in db.sh\)"):
        timit.prepare_timit(tmp_path / "nowhere", tmp_path / "out", PHONE_MAP)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"empty: expected TRAIN/ and TEST/"):
        timit.prepare_timit(tmp_path / "empty", tmp_path / "out", PHONE_MAP)
    for part in ("TRAIN/DR1", "TEST/DR1"):
        (tmp_path / "empty" / part).mkdir(parents=True)
    with pytest.raises(ValueError, match=r"no recordings found"):
        timit.prepare_timit(tmp_path / "empty", tmp_path / "out", PHONE_MAP)


def test_a_set_without_speakers_is_an_error(copy, tmp_path):
    for spk in timit.CORE_TEST_SPEAKERS:
        for path in copy.glob(f"TEST/DR*/{spk}"):
            shutil.rmtree(path)
    with pytest.raises(ValueError, match="no utterance of the test set found"):
        timit.prepare_timit(copy, tmp_path, PHONE_MAP)
    assert not os.path.exists(tmp_path / "test")
