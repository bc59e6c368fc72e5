"""Tests of stage 3, espnet_ext.data.format and python -m espnet_ext.bin.format_wav_scp."""

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_ext.data import datadir as dd
from espnet_ext.data import kaldi_files as kf
from espnet_ext.data import subsets
from espnet_ext.data.format import file_name, format_wav_scp

pytestmark = pytest.mark.skipif(
    shutil.which("sox") is None or shutil.which("flac") is None,
    reason="needs the sox and flac programs (Debian packages sox, flac)",
)


def ceil_div(a, b):
    return -(-a // b)


def pcm(n, seed, channels=1):
    """Random 16-bit PCM samples (frames x channels)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, channels)) * 6000).clip(-32768, 32767).astype(np.int16)


def make_corpus(root: Path):
    """Audio of every kind the stage must handle; returns (data dir, {uttid: (path, int16 frames x ch, fs)})."""
    audio_dir = root / "audio"
    audio_dir.mkdir(parents=True)
    made = {}

    def write(name, samples, fs, **kwargs):
        path = audio_dir / name
        sf.write(path, samples, fs, subtype="PCM_16", **kwargs)
        return path

    for uttid, name, n, fs, ch, kwargs in [
        ("good16", "good16.wav", 1600, 16000, 1, {}),
        ("rate08", "rate08.wav", 801, 8000, 1, {}),
        ("rate44", "rate44.wav", 4411, 44100, 1, {}),
        ("rate48", "rate48.flac", 4800, 48000, 1, {}),
        ("stereo", "stereo.wav", 1000, 16000, 2, {}),
        ("flac16", "flac16.flac", 1234, 16000, 1, {}),
        ("sphere", "sphere.sph", 999, 16000, 1, {"format": "NIST"}),
        ("zero", "zero.wav", 0, 16000, 1, {}),
    ]:
        samples = pcm(n, seed=len(made), channels=ch)
        made[uttid] = (write(name, samples, fs, **kwargs), samples, fs)
    dat = audio_dir / "soxonly.dat"  # sox's text format: libsndfile cannot read it
    subprocess.run(["sox", str(made["good16"][0]), str(dat)], check=True)
    made["soxonly"] = (dat, made["good16"][1], 16000)
    corrupt = audio_dir / "corrupt.wav"
    corrupt.write_bytes(np.random.default_rng(7).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    wav_scp = {u: str(p) for u, (p, _, _) in made.items()}
    wav_scp.update(
        {
            "corrupt": str(corrupt),
            "missing": str(audio_dir / "missing.wav"),
            "pipesox": f"sox {made['good16'][0]} -t wav - |",
            "pipeflac": f"flac -c -d -s {made['rate48'][0]} |",
            "pipefail": f"cat {audio_dir / 'nothere.wav'} |",
        }
    )
    data = root / "data"
    data.mkdir()
    kf.write_map(data / "wav.scp", wav_scp)
    kf.write_map(data / "text", {u: f"text of {u}" for u in wav_scp})
    kf.write_map(data / "utt2spk", {u: "spk" + u[:2] for u in wav_scp})
    kf.write_spk2utt(data / "spk2utt", kf.read_map(data / "utt2spk"))
    return data, made


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def read_dump(dump: Path, uttid: str):
    wav_scp = kf.read_map(dump / "wav.scp")
    samples, fs = sf.read(wav_scp[uttid], dtype="int16")
    return samples, fs, sf.info(wav_scp[uttid])


BAD = {"corrupt", "missing", "pipefail", "zero"}


def test_excluded_list_and_reasons(corpus, tmp_path):
    data, made = corpus
    audio = made["good16"][0].parent
    excluded = format_wav_scp(data, tmp_path / "dump", fs=16000, nj=1)
    assert set(excluded) == BAD
    assert excluded["missing"] == f"no such file: {audio}/missing.wav (expected an audio file)"
    assert excluded["zero"] == f"zero samples in {audio}/zero.wav (expected at least one sample)"
    assert excluded["pipefail"] == (
        f"pipe 'cat {audio}/nothere.wav' failed with exit status 1: cat: {audio}/nothere.wav: "
        "No such file or directory (expected a command that writes audio to stdout)"
    )
    assert excluded["corrupt"].startswith(f"cannot decode {audio}/corrupt.wav: soundfile: ")
    assert "; sox: " in excluded["corrupt"]
    lines = (tmp_path / "dump" / "excluded.txt").read_text().splitlines()
    assert lines == [f"{u}\t{excluded[u]}" for u in sorted(BAD)]


def test_dump_dir_contents(corpus, tmp_path):
    data, made = corpus
    dump = tmp_path / "dump"
    format_wav_scp(data, dump, fs=16000, nj=1, audio_format="flac")
    kept = sorted(set(kf.read_map(data / "wav.scp")) - BAD)
    assert dd.validate_data_dir(dump) == len(kept)
    assert (dump / "feats_type").read_text() == "raw\n"
    assert (dump / "audio_format").read_text() == "flac\n"
    assert sorted(kf.read_map(dump / "text")) == kept
    assert kf.read_map(dump / "wav.scp")["good16"] == f"{dump}/data/good16.flac"
    assert sorted(p.name for p in (dump / "data").iterdir()) == [f"{u}.flac" for u in kept]
    num_samples = {u: int(n) for u, n in kf.read_map(dump / "utt2num_samples").items()}
    for uttid in kept:
        samples, fs, info = read_dump(dump, uttid)
        assert (fs, info.channels, info.subtype, info.format) == (16000, 1, "PCM_16", "FLAC")
        assert num_samples[uttid] == len(samples)


@pytest.mark.parametrize("uttid", ["good16", "flac16", "sphere", "stereo", "soxonly", "pipesox"])
def test_good_16k_audio_is_untouched(corpus, tmp_path, uttid):
    data, made = corpus
    format_wav_scp(data, tmp_path / "dump", fs=16000, nj=1, audio_format="wav")
    source = made["good16" if uttid == "pipesox" else uttid][1]
    samples, _, info = read_dump(tmp_path / "dump", uttid)
    assert info.format == "WAV"
    np.testing.assert_array_equal(samples, source[:, 0])  # channel 0 of the stereo file


@pytest.mark.parametrize("uttid", ["rate08", "rate44", "rate48", "pipeflac"])
def test_resampled_lengths(corpus, tmp_path, uttid):
    data, made = corpus
    format_wav_scp(data, tmp_path / "dump", fs=16000, nj=1)
    _, source, source_fs = made["rate48" if uttid == "pipeflac" else uttid]
    samples, fs, _ = read_dump(tmp_path / "dump", uttid)
    assert fs == 16000
    assert len(samples) == ceil_div(len(source) * 16000, source_fs)  # resample_poly's length
    assert len(samples) in (1600, 1601, 1602)


def test_resampling_preserves_a_sine(tmp_path):
    t8 = np.arange(8000) / 8000
    sf.write(tmp_path / "sine.wav", 0.5 * np.sin(2 * np.pi * 440 * t8), 8000, subtype="PCM_16")
    data = tmp_path / "data"
    data.mkdir()
    for name, content in {"wav.scp": f"s {tmp_path}/sine.wav\n", "utt2spk": "s s\n", "spk2utt": "s s\n"}.items():
        (data / name).write_text(content)
    format_wav_scp(data, tmp_path / "dump", fs=16000)
    samples, _, _ = read_dump(tmp_path / "dump", "s")
    expected = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert np.abs(samples[100:-100] / 32768 - expected[100:-100]).max() < 2e-3


def test_expected_fs_excludes_other_rates(corpus, tmp_path):
    data, made = corpus
    excluded = format_wav_scp(data, tmp_path / "dump", fs=16000, expected_fs=[8000, 16000])
    assert set(excluded) == BAD | {"rate44", "rate48", "pipeflac"}
    assert excluded["rate44"] == f"sample rate 44100 Hz in {made['rate44'][0]}, expected one of 8000, 16000 Hz"
    assert excluded["pipeflac"] == (
        f"sample rate 48000 Hz in pipe 'flac -c -d -s {made['rate48'][0]}', expected one of 8000, 16000 Hz"
    )


def test_rerun_overwrites_cleanly(corpus, tmp_path):
    data, _ = corpus
    dump = tmp_path / "dump"
    format_wav_scp(data, dump, fs=16000, audio_format="wav")
    first = {p.name: p.read_bytes() for p in dump.iterdir() if p.is_file()}
    small = tmp_path / "small"
    subsets.subset_data_dir(data, small, utt_list=["good16", "rate08", "missing"])
    (dump / "data" / "leftover.tmp").write_bytes(b"x")
    format_wav_scp(small, dump, fs=16000, audio_format="flac")
    assert sorted(p.name for p in (dump / "data").iterdir()) == ["good16.flac", "rate08.flac"]
    assert (dump / "excluded.txt").read_text().startswith("missing\tno such file")
    assert dd.validate_data_dir(dump) == 2
    format_wav_scp(data, dump, fs=16000, audio_format="wav")
    assert {p.name: p.read_bytes() for p in dump.iterdir() if p.is_file()} == first


def test_logging(corpus, tmp_path, caplog):
    data, _ = corpus
    stereo2 = tmp_path / "data"
    shutil.copytree(data, stereo2)
    wav_scp = kf.read_map(data / "wav.scp")
    wav_scp["stereo2"] = wav_scp["stereo"]
    kf.write_map(stereo2 / "wav.scp", wav_scp)
    kf.write_map(stereo2 / "text", {u: "x" for u in wav_scp})
    kf.write_map(stereo2 / "utt2spk", {u: "s" for u in wav_scp})
    kf.write_spk2utt(stereo2 / "spk2utt", {u: "s" for u in wav_scp})
    with caplog.at_level(logging.INFO, logger="espnet_ext.data.format"):
        format_wav_scp(stereo2, tmp_path / "dump", fs=16000)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("taking channel 0 (logged once)" in m for m in messages) == 1
    assert "2 multi-channel utterance(s): took channel 0 of each" in messages
    assert sum(m.startswith("excluded ") for m in messages) == len(BAD)
    total = len(wav_scp)
    progress = [m for m in messages if " files done (" in m]
    assert progress[-1].startswith(f"{total}/{total} files done (100%), elapsed ")
    step = -(-total // 10)  # a line every ~10%
    assert len(progress) == total // step + (total % step > 0)
    assert "resampled 1 utterance(s) from 8000 Hz to 16000 Hz" in messages


def test_all_bad_fails_but_lists_them(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name, content in {
        "wav.scp": "a /no/a.wav\nb /no/b.wav\n",
        "utt2spk": "a s\nb s\n",
        "spk2utt": "s a b\n",
    }.items():
        (data / name).write_text(content)
    with pytest.raises(ValueError, match="all 2 utterance\\(s\\) excluded"):
        format_wav_scp(data, tmp_path / "dump")
    assert len((tmp_path / "dump" / "excluded.txt").read_text().splitlines()) == 2


def test_invalid_source_dir_is_rejected(corpus, tmp_path):
    data, _ = corpus
    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    (broken / "text").write_text("good16 only one\n")
    with pytest.raises(ValueError, match=f"{broken}/text: no entry for utterance"):
        format_wav_scp(broken, tmp_path / "dump")


def test_file_name_escapes_slashes():
    assert file_name("a/b%c") == "a%2Fb%25c"
    assert file_name("spk1-utt_01") == "spk1-utt_01"


def test_cli_parallel_matches_serial(corpus, tmp_path):
    data, _ = corpus
    format_wav_scp(data, tmp_path / "serial", fs=16000, nj=1)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "espnet_ext.bin.format_wav_scp",
            str(data),
            str(tmp_path / "par"),
            "--fs",
            "16000",
            "--nj",
            "2",
            "--audio_format",
            "flac",
            "--expected_fs",
            "8000,16000,44100,48000",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert " WARNING: excluded missing: no such file" in proc.stderr
    for name in ("utt2num_samples", "text", "utt2spk", "spk2utt", "excluded.txt"):
        assert (tmp_path / "par" / name).read_text() == (tmp_path / "serial" / name).read_text()
    for uttid in kf.read_map(tmp_path / "par" / "wav.scp"):
        assert np.array_equal(read_dump(tmp_path / "par", uttid)[0], read_dump(tmp_path / "serial", uttid)[0])
    bad = subprocess.run(
        [sys.executable, "-m", "espnet_ext.bin.format_wav_scp", str(data), str(tmp_path / "x"), "--expected_fs", "16k"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "expected comma-separated sample rates" in bad.stderr


def test_parallel_small_chunks_keep_the_order(corpus, tmp_path, monkeypatch):
    """Many chunks in flight (2 utterances each): the outputs equal the serial run's."""
    import espnet_ext.data.format as fmt

    data, _ = corpus
    format_wav_scp(data, tmp_path / "serial", fs=16000, nj=1)
    monkeypatch.setattr(fmt, "CHUNK_SIZE", 2)
    monkeypatch.setattr(fmt, "CHUNKS_IN_FLIGHT_PER_JOB", 1)
    format_wav_scp(data, tmp_path / "par", fs=16000, nj=2)
    for name in ("wav.scp", "utt2num_samples", "text", "utt2spk", "spk2utt", "excluded.txt"):
        serial = (tmp_path / "serial" / name).read_text().replace(str(tmp_path / "serial"), "DUMP")
        assert (tmp_path / "par" / name).read_text().replace(str(tmp_path / "par"), "DUMP") == serial


def test_parallel_reads_a_bounded_window_ahead(tmp_path, monkeypatch):
    """The pool is fed at most CHUNK_SIZE * CHUNKS_IN_FLIGHT_PER_JOB * nj utterances ahead of
    the results taken (``Pool.imap`` would read the whole corpus ahead)."""
    import espnet_ext.data.format as fmt

    monkeypatch.setattr(fmt, "CHUNK_SIZE", 3)
    monkeypatch.setattr(fmt, "CHUNKS_IN_FLIGHT_PER_JOB", 2)
    read = []

    def items():
        for i in range(100):
            read.append(i)
            yield fmt.Job(f"u{i:03d}", str(tmp_path / "none.wav"), str(tmp_path / f"{i}.flac"), 16000, "flac", None), i

    taken = 0
    for job, extra, result in fmt._run_in_order(items(), nj=2):
        assert extra == taken and result.uttid == job.uttid and result.reason.startswith("no such file")
        taken += 1
        assert len(read) <= taken + 3 * 2 * 2 + 3  # the window, and the chunk being refilled
    assert taken == 100


def test_interrupted_run_keeps_the_previous_audio(corpus, tmp_path, monkeypatch):
    import espnet_ext.data.format as fmt

    data, _ = corpus
    dump = tmp_path / "dump"
    format_wav_scp(data, dump, fs=16000)
    before = {p.name: p.read_bytes() for p in (dump / "data").iterdir()}
    before_scp = (dump / "wav.scp").read_text()
    calls = []

    def failing(job):
        calls.append(job.uttid)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return fmt.process(job)

    monkeypatch.setattr(fmt, "process", failing)
    with pytest.raises(KeyboardInterrupt):
        format_wav_scp(data, dump, fs=16000)
    assert {p.name: p.read_bytes() for p in (dump / "data").iterdir()} == before
    assert (dump / "wav.scp").read_text() == before_scp
    assert not list(dump.glob("*.tmp"))
    assert (dump / "data.new").is_dir()  # the interrupted run's partial audio ...
    monkeypatch.undo()
    format_wav_scp(data, dump, fs=16000)  # ... is cleared by the next run
    assert not (dump / "data.new").exists()
    assert {p.name: p.read_bytes() for p in (dump / "data").iterdir()} == before
