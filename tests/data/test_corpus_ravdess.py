"""RAVDESS layout parsing, the speaker-independent split, skipped/strict handling, the download
(from a local zip) and the mini RAVDESS-layout generator."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_ext.bin import corpus as corpus_cli
from espnet_ext.data.corpora import ravdess as rv
from tools import mini_ravdess as mr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The mini corpus in RAVDESS's layout (24 actors x 8 emotions), written once."""
    out = tmp_path_factory.mktemp("mini_ravdess") / "corpus"
    assert mr.write_mini_ravdess(out) == 192
    return out


def copy_corpus(corpus: Path, dest: Path, actors=range(1, 25)) -> Path:
    """A copy (of some actors) that a test may damage."""
    for actor in actors:
        shutil.copytree(corpus / rv.speaker_id(actor), dest / rv.speaker_id(actor))
    return dest


def read(path: Path) -> dict:
    return dict(line.split(" ", 1) for line in path.read_text(encoding="utf-8").splitlines())


def skipped(out: Path) -> dict:
    return dict(line.split("\t", 1) for line in (out / "skipped.txt").read_text(encoding="utf-8").splitlines())


# --------------------------------------------------------------------------------- names


def test_parse_name_fields():
    rid = rv.parse_name("03-01-06-01-02-01-12")
    assert rid == rv.RavdessId(3, 1, 6, 1, 2, 1, 12)
    assert rid.emotion_name == "fearful" and rid.stem == "03-01-06-01-02-01-12"
    assert [rv.parse_name(f"03-01-{e:02d}-01-01-01-01").emotion_name for e in range(1, 9)] == list(rv.EMOTIONS)
    assert rv.utterance_id(rid) == "Actor_12-03-01-06-01-02-01-12"


@pytest.mark.parametrize(
    "stem, message",
    [
        ("03-01-06-01-02-01", "seven two-digit fields"),
        ("03-01-06-01-02-01-12-01", "seven two-digit fields"),
        ("3-01-06-01-02-01-12", "seven two-digit fields"),
        ("happy_actor12", "seven two-digit fields"),
        ("03-01-09-01-02-01-12", "emotion 09 is outside 01-08"),
        ("03-01-06-01-02-01-25", "actor 25 is outside 01-24"),
        ("04-01-06-01-02-01-12", "modality 04 is outside 01-03"),
        ("03-01-06-03-02-01-12", "intensity 03"),
        ("03-01-01-02-01-01-12", "neutral (emotion 01) has no strong intensity"),
    ],
)
def test_parse_name_rejects(stem, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rv.parse_name(stem)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1-20", set(range(1, 21))),
        ("21,22", {21, 22}),
        ("1-3, 7", {1, 2, 3, 7}),
        ("", set()),
    ],
)
def test_parse_actors(text, expected):
    assert rv.parse_actors(text) == expected


@pytest.mark.parametrize("text", ["0-3", "20-25", "a-b", "3-1"])
def test_parse_actors_rejects(text):
    with pytest.raises(ValueError, match="actors"):
        rv.parse_actors(text)


def test_overlapping_split_is_an_error():
    with pytest.raises(ValueError, match="actor 21 is in both the dev and the test actors"):
        rv.actor_splits("1-20", "21-22", "21,23")


# ------------------------------------------------------------------------------ generator


def test_mini_ravdess_layout(corpus):
    dirs = sorted(p.name for p in corpus.iterdir())
    assert dirs == [rv.speaker_id(a) for a in range(1, 25)]
    for actor_dir in corpus.iterdir():
        names = sorted(p.name for p in actor_dir.iterdir())
        rids = [rv.parse_name(n[: -len(".wav")]) for n in names]
        assert sorted(r.emotion for r in rids) == list(range(1, 9))
        assert all(r.actor == int(actor_dir.name[-2:]) and r.modality == 3 and r.vocal_channel == 1 for r in rids)
    info = sf.info(str(corpus / "Actor_01" / "03-01-01-01-01-01-01.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (48000, 1, "PCM_16")


def test_mini_ravdess_voices_follow_sex_and_split():
    speakers = {f"s{i:02d}": {"sex": "m" if i <= 8 else "f"} for i in range(1, 17)}
    voices = mr.actor_voices(speakers)
    assert all((voices[a] <= "s08") == (a % 2 == 1) for a in voices)  # odd actors male
    held_out = {voices[a] for a in (21, 22, 23, 24)}
    assert len(held_out) == 4 and not held_out & {voices[a] for a in range(1, 21)}


def test_mini_ravdess_emotions_carry_their_cue(corpus):
    """Each file has a spectral peak at its emotion's tone, at least twice the other emotions' tones."""
    for actor in (1, 24):
        for emotion in range(1, 9):
            path = corpus / rv.speaker_id(actor) / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav"
            audio, rate = sf.read(str(path))
            spectrum = np.abs(np.fft.rfft(audio))
            freqs = np.fft.rfftfreq(len(audio), 1 / rate)
            at = {e: spectrum[np.argmin(np.abs(freqs - s.tone_hz))] for e, s in mr.STYLES.items()}
            name = rv.EMOTIONS[emotion - 1]
            others = max(v for e, v in at.items() if e != name)
            assert at[name] > 2 * others, (path, at)
            assert np.max(np.abs(audio)) < 1.0


def test_mini_ravdess_speed_changes_duration(tmp_path):
    """The speed of each emotion shows in the duration (same source utterance)."""
    source = np.sin(np.arange(16000) / 7.0) * 0.1
    for style in mr.STYLES.values():
        out = mr.apply_style(source, style)
        assert abs(len(out) - 48000 / float(style.speed)) <= 2


# -------------------------------------------------------------------------------- prepare


def test_prepare_default_split(corpus, tmp_path):
    result = rv.prepare_ravdess(corpus, tmp_path / "data")
    assert result.counts == {"train": 160, "dev": 16, "test": 16} and result.skipped == []
    assert (tmp_path / "data" / "skipped.txt").read_text() == ""
    actors = {}
    for name in rv.SPLITS:
        d = tmp_path / "data" / name
        wav, text, utt2spk = read(d / "wav.scp"), read(d / "text"), read(d / "utt2spk")
        assert list(wav) == sorted(wav) and set(wav) == set(text) == set(utt2spk)
        for uttid, path in wav.items():
            rid = rv.parse_name(Path(path).stem)
            assert Path(path).is_absolute() and Path(path).is_file()
            assert text[uttid] == rid.emotion_name and utt2spk[uttid] == rv.speaker_id(rid.actor)
            assert uttid == rv.utterance_id(rid)
        actors[name] = {int(s[-2:]) for s in utt2spk.values()}
        gender = read(d / "spk2gender")
        assert all(g == ("m" if int(s[-2:]) % 2 else "f") for s, g in gender.items())
    assert actors == {"train": set(range(1, 21)), "dev": {21, 22}, "test": {23, 24}}


def test_custom_split_lists_actors_in_no_split(corpus, tmp_path):
    result = rv.prepare_ravdess(corpus, tmp_path / "data", "1-4", "5", "6")
    assert result.counts == {"train": 32, "dev": 8, "test": 8}
    listed = skipped(tmp_path / "data")
    assert len(listed) == 192 - 48
    assert all("is in no split" in reason for reason in listed.values())


def _damage(root: Path, corpus: Path) -> dict:
    """Add files that must be skipped; returns name -> (path, malformed)."""
    a1, a2 = root / "Actor_01", root / "Actor_02"
    good = corpus / "Actor_01" / "03-01-03-01-01-01-01.wav"
    files = {
        "bad_name": (a1 / "happy_take2.wav", True),
        "wrong_actor": (a1 / "03-01-03-01-02-01-05.wav", True),
        "song": (a1 / "03-02-03-01-01-01-01.wav", False),
        "video": (a2 / "01-01-03-01-01-01-02.mp4", False),
        "hidden": (a2 / ".DS_Store", False),
        "extension": (a2 / "03-01-03-01-02-02-02.flac", True),
        "outside": (root / "extra" / "03-01-03-01-01-01-03.wav", True),
    }
    for path, _ in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(good, path)
    return files


def test_bad_files_are_listed_with_reasons(corpus, tmp_path):
    root = copy_corpus(corpus, tmp_path / "corpus", actors=range(1, 25))
    files = _damage(root, corpus)
    result = rv.prepare_ravdess(root, tmp_path / "data")
    assert result.counts == {"train": 160, "dev": 16, "test": 16}
    listed = skipped(tmp_path / "data")
    assert set(listed) == {str(p) for p, _ in files.values()}
    reasons = {name: listed[str(path)] for name, (path, _) in files.items()}
    assert "does not follow MM-VV-EE-II-SS-RR-AA" in reasons["bad_name"]
    assert "actor 05 in the name, but in directory Actor_01" in reasons["wrong_actor"]
    assert "song" in reasons["song"] and "full-AV video" in reasons["video"]
    assert reasons["hidden"] == "hidden file" and "extension '.flac'" in reasons["extension"]
    assert "not directly in a" in reasons["outside"]
    assert {s.path.name: s.malformed for s in result.skipped} == {p.name: m for p, m in files.values()}


def test_strict_fails_on_malformed_names_only(corpus, tmp_path):
    root = copy_corpus(corpus, tmp_path / "corpus")
    files = _damage(root, corpus)
    with pytest.raises(ValueError, match="4 file\\(s\\) do not follow the RAVDESS layout") as err:
        rv.prepare_ravdess(root, tmp_path / "data", strict=True)
    for path, malformed in files.values():
        assert (str(path) in str(err.value)) == malformed
    assert not (tmp_path / "data").exists()
    for path, malformed in files.values():  # song, video and hidden files alone are fine
        if malformed:
            path.unlink()
    assert rv.prepare_ravdess(root, tmp_path / "data", strict=True).counts["train"] == 160


def test_missing_corpus_and_missing_actors(tmp_path):
    with pytest.raises(ValueError, match="not a directory; expected the unzipped Audio_Speech_Actors_01-24.zip"):
        rv.prepare_ravdess(tmp_path / "nowhere", tmp_path / "data")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no Actor_NN directories"):
        rv.prepare_ravdess(tmp_path / "empty", tmp_path / "data")


def test_empty_split_is_an_error(corpus, tmp_path):
    root = copy_corpus(corpus, tmp_path / "corpus", actors=range(1, 23))
    with pytest.raises(ValueError, match=r"no audio-only speech files of the test actors \[23, 24\]"):
        rv.prepare_ravdess(root, tmp_path / "data")


def test_command_line(corpus, tmp_path, capsys):
    assert (
        corpus_cli.main(
            ["ravdess", "prepare", str(corpus), str(tmp_path / "data"), "--dev_actors", "21", "--test_actors", "22-24"]
        )
        == 0
    )
    assert len(read(tmp_path / "data" / "test" / "text")) == 24
    assert corpus_cli.main(["ravdess", "prepare", str(tmp_path / "missing"), str(tmp_path / "d2")]) == 1
    assert "missing: not a directory" in capsys.readouterr().err


# ------------------------------------------------------------------------------- download


def test_download_from_a_local_zip(corpus, tmp_path):
    archive = tmp_path / "Audio_Speech_Actors_01-24.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted((corpus / "Actor_01").iterdir()) + sorted((corpus / "Actor_02").iterdir()):
            zf.write(path, path.relative_to(corpus).as_posix())
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    target = tmp_path / "RAVDESS"
    assert rv.download_ravdess(target, url=archive.as_uri(), md5=md5) == target
    assert sorted(p.name for p in target.glob("Actor_*")) == ["Actor_01", "Actor_02"]
    assert len(list(target.glob("Actor_*/*.wav"))) == 16 and (target / ".done_download").is_file()
    shutil.rmtree(target / "Actor_02")  # the marker makes a second call do nothing
    rv.download_ravdess(target, url=archive.as_uri(), md5=md5)
    assert not (target / "Actor_02").exists()
    with pytest.raises(ValueError, match="md5"):
        rv.download_ravdess(tmp_path / "other", url=archive.as_uri(), md5="0" * 32)
