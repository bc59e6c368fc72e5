"""Data dirs with a ``segments`` file: validate, fix, subset/split/combine, speed perturbation, and
stage 3 (espnet_ext.data.format) cutting one audio file per utterance out of the recordings."""

import logging
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from espnet_ext.data import datadir as dd
from espnet_ext.data import kaldi_files as kf
from espnet_ext.data import subsets
from espnet_ext.data.format import MAX_OVERSHOOT, format_wav_scp
from espnet_ext.data.perturb import speed_perturb

FS = 16000


def _pcm(n, seed, channels=1):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, channels)) * 6000).clip(-32768, 32767).astype(np.int16)


def _write_dir(path, wav_scp, segments, speakers=None, text=True):
    """A data dir from {recording: value} and {utt: (recording, start, end)} (utt2spk: the
    utterance id's first part, or ``speakers``)."""
    path.mkdir(parents=True, exist_ok=True)
    kf.write_map(path / "wav.scp", wav_scp)
    kf.write_map(path / "segments", {u: f"{r} {s} {e}" for u, (r, s, e) in segments.items()})
    utt2spk = {u: (speakers or {}).get(u, u.split("-")[0]) for u in segments}
    kf.write_map(path / "utt2spk", utt2spk)
    kf.write_spk2utt(path / "spk2utt", utt2spk)
    if text:
        kf.write_map(path / "text", {u: f"words of {u}" for u in segments})
    return path


SEGMENTS = {
    "a-r1-0000": ("r1", "0", "0.5"),
    "a-r1-0001": ("r1", "0.5", "1.25"),
    "b-r2-0000": ("r2", "0.1", "0.3"),
}
WAV = {"r1": "/audio/r1.wav", "r2": "/audio/r2.wav"}


# ----------------------------------------------------------------------------- validate


def test_validate_accepts_segments(tmp_path):
    path = _write_dir(tmp_path / "d", WAV, SEGMENTS)
    assert dd.validate_data_dir(path) == 3
    data = dd.load_data_dir(path)
    assert data.reco_maps == {"wav.scp": WAV} and "wav.scp" not in data.utt_maps
    assert data.utt_maps["segments"]["a-r1-0001"] == "r1 0.5 1.25"


@pytest.mark.parametrize(
    "segments, wav, message",
    [
        ({"a-r1-0000": ("r1", "1", "1")}, WAV, "segments:1: end 1 s is not after start 1 s; expected '<recording-id>"),
        ({"a-r1-0000": ("r1", "-0.5", "1")}, WAV, "segments:1: start -0.5 s is negative"),
        ({"a-r1-0000": ("r1", "0", "-1")}, WAV, "segments:1: end -1 s is not after start 0 s"),
        ({"a-r1-0000": ("r1", "x", "1")}, WAV, "segments:1: 'r1 x 1': a time is not a number"),
        ({"a-r1-0000": ("r1", "0", "nan")}, WAV, "segments:1: 'r1 0 nan': a time is not finite"),
        ({"a-r3-0000": ("r3", "0", "1")}, {"r3x": "/x.wav"}, "segments:1: recording 'r3' is not in"),
        (SEGMENTS, {**WAV, "r0": "/r0.wav"}, "wav.scp:1: recording 'r0' is used by no segment (1 such)"),
    ],
)
def test_validate_rejects_bad_segments(tmp_path, segments, wav, message):
    path = _write_dir(tmp_path / "d", wav, segments)
    with pytest.raises(ValueError) as err:
        dd.validate_data_dir(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_validate_rejects_a_segments_line_with_missing_fields(tmp_path):
    path = _write_dir(tmp_path / "d", WAV, SEGMENTS)
    (path / "segments").write_text("a-r1-0000 r1 0\na-r1-0001 r1 0.5 1.25\nb-r2-0000 r2 0.1 0.3\n")
    with pytest.raises(ValueError, match=r"segments:1: 'r1 0' has 2 field\(s\); expected"):
        dd.validate_data_dir(path)


def test_recording_index_reads_in_step_and_out_of_order(tmp_path, caplog):
    path = tmp_path / "wav.scp"
    kf.write_map(path, {"r1": "a", "r2": "b", "r3": "c", "r4": "d"})
    index = dd.RecordingIndex(path)
    with caplog.at_level(logging.INFO):
        assert [index.get(r) for r in ("r1", "r1", "r3")] == ["a", "a", "c"]
        assert "read whole" not in caplog.text
        assert index.get("r1") == "a" and "read whole" in caplog.text  # back: the whole file
    assert index.get("r9") is None
    assert index.unused() == {"r2": 2, "r4": 4}
    in_step = dd.RecordingIndex(path)
    assert in_step.get("r2") == "b" and in_step.get("r0") is None and in_step.unused() == {"r1": 1, "r3": 3, "r4": 4}


# ----------------------------------------------------------------------------- fix


def test_fix_drops_bad_segments_and_unused_recordings(tmp_path, caplog):
    path = _write_dir(
        tmp_path / "d",
        {"r1": "/r1.wav", "r2": "/r2.wav", "r9": "/r9.wav"},
        {
            "a-r1-0000": ("r1", "0", "0.5"),
            "a-r1-0001": ("r1", "2", "1"),  # end before start
            "a-r3-0000": ("r3", "0", "1"),  # no such recording
            "b-r2-0000": ("r2", "0", "1"),
        },
    )
    with caplog.at_level(logging.INFO):
        dropped = dd.fix_data_dir(path)
    assert dropped == {
        "a-r1-0001": f"{path}/segments:2: bad segment: end 1 s is not after start 2 s",
        "a-r3-0000": f"no audio: recording 'r3' is not in {path}/wav.scp",
    }
    assert (path / ".backup" / "dropped.txt").read_text().splitlines() == [f"{u} {r}" for u, r in dropped.items()]
    assert kf.read_map(path / "wav.scp") == {"r1": "/r1.wav", "r2": "/r2.wav"}
    assert "removed 1 recording(s) that no kept segment uses: r9" in caplog.text
    assert dd.validate_data_dir(path) == 2
    assert dd.fix_data_dir(path) == {}


# ----------------------------------------------------------------------------- subset, split, combine


def test_subset_split_combine_carry_segments(tmp_path):
    path = _write_dir(tmp_path / "d", WAV, SEGMENTS)
    subsets.subset_data_dir(path, tmp_path / "b", spk_list=["b"])
    assert kf.read_map(tmp_path / "b" / "segments") == {"b-r2-0000": "r2 0.1 0.3"}
    assert kf.read_map(tmp_path / "b" / "wav.scp") == {"r2": "/audio/r2.wav"}
    parts = subsets.split_data_dir(path, 3)
    assert [kf.read_map(p / "wav.scp") for p in parts] == [{"r1": WAV["r1"]}, {"r1": WAV["r1"]}, {"r2": WAV["r2"]}]
    for part in parts:
        dd.validate_data_dir(part)
    assert subsets.combine_data_dirs(tmp_path / "all", parts) == 3
    for name in ("wav.scp", "segments", "text", "utt2spk"):
        assert (tmp_path / "all" / name).read_text() == (path / name).read_text()


def test_combine_refuses_mixed_or_conflicting_recordings(tmp_path, make_data_dir):
    seg = _write_dir(tmp_path / "seg", WAV, SEGMENTS)
    whole = make_data_dir(tmp_path / "whole", [("c-1", "c")])
    with pytest.raises(ValueError, match=f"{seg}/segments exists but {whole} has none"):
        subsets.combine_data_dirs(tmp_path / "out", [seg, whole])
    other = _write_dir(tmp_path / "other", {"r1": "/elsewhere/r1.wav"}, {"c-r1-0000": ("r1", "0", "1")})
    with pytest.raises(ValueError, match=f"recording 'r1' differs between {seg}/wav.scp and {other}/wav.scp"):
        subsets.combine_data_dirs(tmp_path / "out", [seg, other])


# ----------------------------------------------------------------------------- speed perturbation


def test_speed_perturb_scales_the_segments_of_prefixed_recordings(tmp_path):
    path = _write_dir(tmp_path / "d", WAV, SEGMENTS)
    assert speed_perturb(path, tmp_path / "sp", [0.9, 1.0, 1.1]) == 9
    out = tmp_path / "sp"
    segments, wav = kf.read_map(out / "segments"), kf.read_map(out / "wav.scp")
    assert segments["a-r1-0001"] == "r1 0.5 1.25"
    assert segments["sp0.9-a-r1-0001"] == "sp0.9-r1 0.5555556 1.3888889"
    assert segments["sp1.1-b-r2-0000"] == "sp1.1-r2 0.0909091 0.2727273"
    assert wav["sp1.1-r1"] == "sox /audio/r1.wav -t wav - speed 1.1 |" and wav["r2"] == "/audio/r2.wav"
    assert len(wav) == 6
    assert dd.validate_data_dir(out) == 9


# ----------------------------------------------------------------------------- stage 3


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Recordings of several kinds: {recording: (wav.scp value, int16 frames x channels, rate)}."""
    if shutil.which("sox") is None:
        pytest.skip("needs the sox program (Debian package sox)")
    root = tmp_path_factory.mktemp("recordings")
    made = {}
    for name, n, rate, channels, fmt in [
        ("flac", 3 * FS, FS, 1, "FLAC"),
        ("wav8k", 8000, 8000, 1, "WAV"),
        ("stereo", FS, FS, 2, "WAV"),
    ]:
        samples = _pcm(n, len(made), channels)
        path = root / f"{name}.{fmt.lower()}"
        sf.write(path, samples, rate, subtype="PCM_16", format=fmt)
        made[name] = (str(path), samples, rate)
    made["pipe"] = (f"cat {made['flac'][0]} |", made["flac"][1], FS)
    dat = root / "soxonly.dat"  # sox's text format: only sox reads it
    subprocess.run(["sox", made["stereo"][0], str(dat), "remix", "1"], check=True)
    made["soxonly"] = (str(dat), made["stereo"][1][:, :1], FS)
    made["missing"] = (str(root / "missing.wav"), None, FS)
    return made


def _segment_dir(path, recordings, segments):
    return _write_dir(path, {r: recordings[r][0] for _, (r, _, _) in segments.items()}, segments)


GOOD = {  # utt -> (recording, start, end): sample-exact spans at the recordings' rates
    "a-flac-0": ("flac", "0", "1.0000625"),
    "a-flac-1": ("flac", "1.5", "2.9999375"),
    "a-pipe-0": ("pipe", "0.25", "0.5"),
    "b-soxonly-0": ("soxonly", "0.125", "0.5"),
    "b-stereo-0": ("stereo", "0.5", "1"),
    "c-flac-2": ("flac", "0.0000625", "0.001"),  # after c-... the flac recording comes again
}


def test_stage3_cuts_each_segment_exactly(tmp_path, recordings):
    src = _segment_dir(tmp_path / "d", recordings, GOOD)
    assert format_wav_scp(src, tmp_path / "dump") == {}
    dump = tmp_path / "dump"
    assert not (dump / "segments").exists()
    assert dd.validate_data_dir(dump) == len(GOOD)
    wav = kf.read_map(dump / "wav.scp")
    num_samples = kf.read_map(dump / "utt2num_samples")
    for utt, (recording, start, end) in GOOD.items():
        _, samples, rate = recordings[recording]
        audio, fs = sf.read(wav[utt], dtype="int16")
        assert fs == FS and wav[utt] == f"{dump}/data/{utt}.flac"
        expected = samples[round(float(start) * rate) : round(float(end) * rate), 0]
        np.testing.assert_array_equal(audio, expected, err_msg=utt)
        assert int(num_samples[utt]) == len(expected)
    assert kf.read_map(dump / "text") == kf.read_map(src / "text")


def test_stage3_resamples_the_cut_segment(tmp_path, recordings):
    src = _segment_dir(tmp_path / "d", recordings, {"a-wav8k-0": ("wav8k", "0.25", "0.75")})
    format_wav_scp(src, tmp_path / "dump")
    audio, fs = sf.read(kf.read_map(tmp_path / "dump" / "wav.scp")["a-wav8k-0"], dtype="int16")
    assert fs == FS and len(audio) == 8000


def test_stage3_end_beyond_the_recording(tmp_path, recordings, caplog):
    """A little beyond the end: cut at the end; MAX_OVERSHOOT or more: excluded, as is a start at the end."""
    flac = recordings["flac"][0]
    segments = {
        "a-flac-0": ("flac", "2.5", "3.2"),  # 0.2 s beyond the 3 s recording
        "a-flac-1": ("flac", "2.5", f"{3 + MAX_OVERSHOOT}"),
        "a-flac-2": ("flac", "3", "3.1"),
        "a-flac-3": ("flac", "0", "1"),
        "b-missing-0": ("missing", "0", "1"),
        "b-missing-1": ("missing", "1", "2"),
    }
    src = _segment_dir(tmp_path / "d", recordings, segments)
    with caplog.at_level(logging.INFO):
        excluded = format_wav_scp(src, tmp_path / "dump")
    assert excluded == {
        "a-flac-1": "segment 2.5-3.5 s of recording flac ends 0.500 s beyond the recording's end "
        f"(3 s, {flac}); expected at most 0.5 s beyond",
        "a-flac-2": f"segment 3-3.1 s of recording flac starts at or after the recording's end (3 s, {flac})",
        "b-missing-0": f"recording missing: no such file: {recordings['missing'][0]} (expected an audio file)",
        "b-missing-1": f"recording missing: no such file: {recordings['missing'][0]} (expected an audio file)",
    }
    lines = (tmp_path / "dump" / "excluded.txt").read_text().splitlines()
    assert lines == [f"{u}\t{r}" for u, r in excluded.items()]
    assert kf.read_map(tmp_path / "dump" / "utt2num_samples") == {"a-flac-0": "8000", "a-flac-3": "16000"}
    assert "1 segment(s) ended less than 0.5 s beyond their recording: cut at its end" in caplog.text


def test_stage3_parallel_equals_serial(tmp_path, recordings):
    src = _segment_dir(tmp_path / "d", recordings, GOOD)
    format_wav_scp(src, tmp_path / "serial", nj=1)
    format_wav_scp(src, tmp_path / "parallel", nj=2)
    for name in ("text", "utt2num_samples", "utt2spk", "spk2utt"):
        assert (tmp_path / "serial" / name).read_text() == (tmp_path / "parallel" / name).read_text()
    for utt in GOOD:
        serial, _ = sf.read(tmp_path / "serial" / "data" / f"{utt}.flac", dtype="int16")
        parallel, _ = sf.read(tmp_path / "parallel" / "data" / f"{utt}.flac", dtype="int16")
        np.testing.assert_array_equal(serial, parallel)


def test_stage3_speed_perturbed_segments(tmp_path, recordings):
    """The perturbed segments cut from the perturbed recording last about 1/factor as long."""
    src = _segment_dir(tmp_path / "d", recordings, {"a-flac-0": ("flac", "0", "1"), "a-flac-1": ("flac", "2", "3")})
    speed_perturb(src, tmp_path / "sp", [0.9, 1.1])
    assert format_wav_scp(tmp_path / "sp", tmp_path / "dump") == {}
    num_samples = {u: int(n) for u, n in kf.read_map(tmp_path / "dump" / "utt2num_samples").items()}
    for factor in (0.9, 1.1):
        for utt in ("a-flac-0", "a-flac-1"):
            assert abs(num_samples[f"sp{factor}-{utt}"] - FS / factor) <= 2
