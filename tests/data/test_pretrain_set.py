"""Tests of espnet_ext.data.pretrain_set (ssl1 stage 2): leaving other sets' sentences out,
concatenating a speaker's consecutive utterances (files or sox pipes), holding a share out."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_ext.data import pretrain_set as ps
from espnet_ext.data.datadir import validate_data_dir
from espnet_ext.data.format import load_audio
from espnet_ext.data.kaldi_files import read_map

RATE = 16000


def _wav(path: Path, n: int, seed: int, rate: int = RATE, channels: int = 1) -> np.ndarray:
    samples = (np.random.default_rng(seed).standard_normal((n, channels)) * 2000).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, rate, subtype="PCM_16")
    return samples[:, 0]


def _data_dir(path: Path, utts, text=True) -> Path:
    """A data dir of ``utts``: (uttid, speaker, wav path, transcript), any order."""
    utts = sorted(utts, key=lambda u: u[0].encode())
    path.mkdir(parents=True, exist_ok=True)
    (path / "wav.scp").write_text("".join(f"{u} {w}\n" for u, _, w, _ in utts))
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _, _ in utts))
    if text:
        (path / "text").write_text("".join(f"{u} {t}\n" if t else f"{u}\n" for u, _, _, t in utts), encoding="utf-8")
    spk2utt: dict = {}
    for u, s, _, _ in utts:
        spk2utt.setdefault(s, []).append(u)
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return path


@pytest.fixture
def corpus(tmp_path):
    """Speaker a: 8 utterances, b: 3, c: 1 (ids prefixed by the speaker); lengths 0.1-0.35 s.

    Returns (data dir, {uttid: samples})."""
    audio, utts = {}, []
    for spk, count in (("a", 8), ("b", 3), ("c", 1)):
        for i in range(count):
            utt = f"{spk}-{i:02d}"
            path = tmp_path / "wav" / spk / f"{utt}.wav"
            audio[utt] = _wav(path, 1600 + 400 * ((i * 7 + len(spk)) % 6), seed=len(audio))
            utts.append((utt, spk, path, f"sentence {spk} {i}"))
    return _data_dir(tmp_path / "src", utts), audio


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines()]


def _excluded(data: Path) -> dict:
    return dict(line.split("\t") for line in (data / "excluded.txt").read_text(encoding="utf-8").splitlines())


# ----------------------------------------------------------------------------- exclude_texts_of


def test_normalize_text():
    assert ps.normalize_text(" 北京 天气\t很好 ") == "北京天气很好"
    assert ps.normalize_text("") == ""


def test_exclude_texts_of(tmp_path, corpus):
    src, _ = corpus
    dev = _data_dir(tmp_path / "dev", [("d1", "x", "/a.wav", "sentence  a 1"), ("d2", "x", "/b.wav", "")])
    test = _data_dir(tmp_path / "test", [("t1", "y", "/c.wav", "sentenceb2"), ("t2", "y", "/d.wav", "other")])
    summary = ps.prepare_pretrain_set(src, tmp_path / "out", exclude_texts_of=[dev, test])
    assert summary == ps.Summary(read=12, excluded=2, utterances=10, train=10, valid=0)
    assert _excluded(tmp_path / "out") == {
        "a-01": f"same transcript (white space ignored) as d1 in {dev}",
        "b-02": f"same transcript (white space ignored) as t1 in {test}",
    }
    validate_data_dir(tmp_path / "out")
    kept = read_map(tmp_path / "out/wav.scp")
    assert set(kept) == set(read_map(src / "wav.scp")) - {"a-01", "b-02"}
    assert kept["a-00"] == read_map(src / "wav.scp")["a-00"]  # nothing joined: the audio as it was
    assert read_map(tmp_path / "out/text", allow_empty_value=True)["a-00"] == "sentence a 0"
    assert not (tmp_path / "out/members.txt").exists()


def test_empty_transcripts_match_nothing(tmp_path):
    src = _data_dir(tmp_path / "src", [("u1", "s", "/a.wav", ""), ("u2", "s", "/b.wav", "x")])
    ref = _data_dir(tmp_path / "ref", [("r1", "s", "/c.wav", ""), ("r2", "s", "/d.wav", "y")])
    assert ps.prepare_pretrain_set(src, tmp_path / "out", exclude_texts_of=[ref]).excluded == 0


def test_exclusion_needs_transcripts(tmp_path, corpus):
    src, _ = corpus
    ref = _data_dir(tmp_path / "ref", [("r1", "s", "/c.wav", "y")], text=False)
    with pytest.raises(ValueError, match=r"ref/text: not found; expected the transcripts of .*--exclude_texts_of"):
        ps.prepare_pretrain_set(src, tmp_path / "out", exclude_texts_of=[ref])
    (src / "text").unlink()
    with pytest.raises(ValueError, match="text"):
        ps.prepare_pretrain_set(src, tmp_path / "out", exclude_texts_of=[src])


def test_everything_excluded_is_an_error(tmp_path, corpus):
    src, _ = corpus
    with pytest.raises(ValueError, match=r"src: no utterance left for pre-training \(a-00: same transcript"):
        ps.prepare_pretrain_set(src, tmp_path / "out", exclude_texts_of=[src])


# ----------------------------------------------------------------------------- concatenation


def _member(utt, spk, seconds, rate=RATE, channels=1):
    return ps.Member(utt, spk, f"/{utt}.wav", None, int(seconds * rate), rate, channels)


def test_iter_groups_by_count_never_across_speakers():
    members = [_member(f"a{i}", "a", 1) for i in range(8)] + [_member("b0", "b", 1), _member("c0", "c", 1)]
    groups = [[m.utt for m in g] for g in ps.iter_groups(members, concat=3)]
    assert groups == [["a0", "a1", "a2"], ["a3", "a4", "a5"], ["a6", "a7"], ["b0"], ["c0"]]


def test_iter_groups_by_seconds():
    lengths = [4, 5, 2, 12, 1, 1, 1]
    members = [_member(f"a{i}", "a", s) for i, s in enumerate(lengths)] + [_member("b0", "b", 3)]
    groups = [[m.utt for m in g] for g in ps.iter_groups(members, seconds=10)]
    assert groups == [["a0", "a1"], ["a2"], ["a3"], ["a4", "a5", "a6"], ["b0"]]  # a 12 s one alone


def test_iter_groups_end_at_a_rate_or_channel_change():
    members = [_member("a0", "a", 1), _member("a1", "a", 1, rate=8000), _member("a2", "a", 1, rate=8000)]
    members += [_member("a3", "a", 1, rate=8000, channels=2)]
    groups = [[m.utt for m in g] for g in ps.iter_groups(members, concat=6)]
    assert groups == [["a0"], ["a1", "a2"], ["a3"]]


@pytest.mark.parametrize("audio", ["files", "pipes"])
def test_concat_audio_is_the_members_joined(tmp_path, corpus, audio):
    if audio == "pipes" and shutil.which("sox") is None:
        pytest.skip("sox is not installed")
    src, samples = corpus
    out = tmp_path / "out"
    summary = ps.prepare_pretrain_set(src, out, concat=3, concat_audio=audio, audio_dir=tmp_path / "joined")
    members = {utt: rest for utt, *rest in _lines(out / "members.txt")}
    assert members == {
        "a-00+a-02": ["a-00", "a-01", "a-02"],
        "a-03+a-05": ["a-03", "a-04", "a-05"],
        "a-06+a-07": ["a-06", "a-07"],  # the remainder, shorter
        "b-00+b-02": ["b-00", "b-01", "b-02"],
        "c-00": ["c-00"],
    }
    assert summary == ps.Summary(read=12, excluded=0, utterances=5, train=5, valid=0)
    validate_data_dir(out)
    utt2spk, scp, dur = read_map(out / "utt2spk"), read_map(out / "wav.scp"), read_map(out / "utt2dur")
    text = read_map(out / "text")
    source_scp = read_map(src / "wav.scp")
    for utt, parts in members.items():
        assert {utt2spk[utt]} == {p[0] for p in parts}  # never across speakers
        joined = np.concatenate([samples[p] for p in parts])
        assert float(dur[utt]) == pytest.approx(len(joined) / RATE, abs=1e-4)
        assert text[utt] == " ".join(f"sentence {p[0]} {int(p[2:])}" for p in parts)
        got, rate = load_audio(scp[utt])
        assert rate == RATE and np.array_equal(np.round(got[:, 0] * 32768).astype(np.int16), joined)
        if len(parts) == 1:
            assert scp[utt] == source_scp[utt]  # alone: its own audio, its own id
        elif audio == "files":
            assert scp[utt] == str((tmp_path / "joined" / utt2spk[utt] / f"{utt}.wav").resolve())
            assert sf.info(scp[utt]).subtype == "PCM_16"
        else:
            assert scp[utt].startswith("sox ") and scp[utt].endswith(" -t wav - |")
    assert (tmp_path / "joined").is_dir() == (audio == "files")


def test_concat_seconds(tmp_path, corpus):
    src, samples = corpus
    out = tmp_path / "out"
    ps.prepare_pretrain_set(src, out, concat_seconds=0.5, audio_dir=tmp_path / "joined")
    members = {utt: rest for utt, *rest in _lines(out / "members.txt")}
    order = sorted(samples)
    assert [m for parts in members.values() for m in parts] == order  # every utterance once, in id order
    for utt, parts in members.items():
        seconds = sum(len(samples[p]) for p in parts) / RATE
        assert seconds <= 0.5 or len(parts) == 1
        nxt = order.index(parts[-1]) + 1
        if nxt < len(order) and order[nxt][0] == parts[0][0]:  # the next one of the speaker did not fit
            assert seconds + len(samples[order[nxt]]) / RATE > 0.5
        assert float(read_map(out / "utt2dur")[utt]) == pytest.approx(seconds, abs=1e-4)


def test_bad_members_are_listed_and_skipped(tmp_path, corpus):
    src, _ = corpus
    scp = read_map(src / "wav.scp")
    Path(scp["a-01"]).unlink()
    Path(scp["a-02"]).write_bytes(b"")
    Path(scp["a-04"]).write_bytes(b"RIFF this is not audio" * 10)
    ps.prepare_pretrain_set(src, tmp_path / "out", concat=3, audio_dir=tmp_path / "joined")
    excluded = _excluded(tmp_path / "out")
    assert excluded == {
        "a-01": f"no audio file {scp['a-01']}",
        "a-02": f"empty audio file {scp['a-02']}",
        "a-04": excluded["a-04"],
    }
    assert excluded["a-04"].startswith(f"cannot read the audio header of {scp['a-04']}: ")
    groups = [parts for _, *parts in _lines(tmp_path / "out/members.txt")]
    assert groups[:3] == [["a-00", "a-03", "a-05"], ["a-06", "a-07"], ["b-00", "b-01", "b-02"]]


def test_a_member_that_fails_to_decode_is_left_out_of_its_group(tmp_path):
    good = [_wav(tmp_path / f"g{i}.wav", 800 + i, seed=i) for i in range(2)]
    (tmp_path / "bad.wav").write_bytes(b"RIFF this is not audio" * 10)
    members = [ps.Member(n, "s", str(tmp_path / f"{n}.wav"), None, 800, RATE, 1) for n in ("g0", "bad", "g1")]
    excluded = {}
    written = ps.write_group_audio(members, str(tmp_path / "out.wav"), excluded)
    assert [m.utt for m in written] == ["g0", "g1"] and [m.frames for m in written] == [800, 801]
    assert list(excluded) == ["bad"] and excluded["bad"].startswith(f"cannot decode {tmp_path / 'bad.wav'}: ")
    assert np.array_equal(sf.read(str(tmp_path / "out.wav"), dtype="int16")[0], np.concatenate(good))
    assert ps.write_group_audio(members[1:2], str(tmp_path / "none.wav"), excluded) == []
    assert not (tmp_path / "none.wav").exists()


def test_commands_in_wav_scp_cannot_be_joined(tmp_path, corpus):
    src, _ = corpus
    scp = (src / "wav.scp").read_text().splitlines()
    scp[0] = scp[0].split()[0] + " cat " + scp[0].split()[1] + " |"
    (src / "wav.scp").write_text("\n".join(scp) + "\n")
    with pytest.raises(ValueError, match=r"wav.scp entry 'cat .*\|' is a command; concatenation joins audio files"):
        ps.prepare_pretrain_set(src, tmp_path / "out", concat=2, audio_dir=tmp_path / "joined")


def test_speakers_not_contiguous_in_id_order(tmp_path, caplog):
    utts = [(f"u{i}", "ab"[i % 2], tmp_path / f"w{i}.wav", "") for i in range(4)]
    for _, _, path, _ in utts:
        _wav(path, 800, seed=0)
    src = _data_dir(tmp_path / "src", utts)
    ps.prepare_pretrain_set(src, tmp_path / "out", concat=2, concat_audio="pipes")
    assert [parts for _, *parts in _lines(tmp_path / "out/members.txt")] == [["u0"], ["u1"], ["u2"], ["u3"]]
    assert "the utterances of 2 speakers come in 4 runs in id order" in caplog.text


def test_audio_dir_of_another_tool_is_refused_and_own_is_renewed(tmp_path, corpus):
    src, _ = corpus
    mine = tmp_path / "joined"
    ps.prepare_pretrain_set(src, tmp_path / "out", concat=4, audio_dir=mine)
    stale = mine / "a" / "stale.wav"
    stale.write_bytes(b"x")
    ps.prepare_pretrain_set(src, tmp_path / "out", concat=4, audio_dir=mine)  # a re-run: its own dir emptied
    assert not stale.exists() and (mine / "a" / "a-00+a-03.wav").is_file()
    with pytest.raises(ValueError, match=r"wav: not empty and not written by espnet_ext.data.pretrain_set"):
        ps.prepare_pretrain_set(src, tmp_path / "out", concat=4, audio_dir=tmp_path / "wav")
    assert (tmp_path / "wav" / "a").is_dir()  # untouched


@pytest.mark.parametrize(
    "options, match",
    [
        ({"concat": 2, "concat_seconds": 3.0}, "expected at most one of them"),
        ({"concat": -1}, "expected at most one of them"),
        ({"concat": 2}, "audio_dir: expected a directory"),
        ({"concat": 2, "concat_audio": "links", "audio_dir": "x"}, "concat_audio: expected one of files, pipes"),
        ({"valid_percent": 1.0}, "expected both"),
        ({"valid_percent": 100.0, "valid_dir": "v"}, r"valid_percent: expected 0 \(off\) up to below 100"),
    ],
)
def test_bad_options(tmp_path, corpus, options, match):
    with pytest.raises(ValueError, match=match):
        ps.prepare_pretrain_set(corpus[0], tmp_path / "out", **options)


def test_source_is_not_an_output(tmp_path, corpus):
    with pytest.raises(ValueError, match="also an output directory"):
        ps.prepare_pretrain_set(corpus[0], corpus[0])


# ----------------------------------------------------------------------------- held-out share


def test_valid_percent_draws_a_seeded_disjoint_share(tmp_path):
    utts = [(f"s{i // 10:02d}-{i % 10}", f"s{i // 10:02d}", f"/w/{i}.wav", "") for i in range(200)]
    src = _data_dir(tmp_path / "src", utts)
    ids = sorted(u for u, *_ in utts)

    def split(name, percent, seed):
        train, valid = tmp_path / name / "train", tmp_path / name / "valid"
        summary = ps.prepare_pretrain_set(src, train, valid, valid_percent=percent, seed=seed)
        return summary, set(read_map(train / "wav.scp")), set(read_map(valid / "wav.scp"))

    summary, train, valid = split("a", 5, 3)
    assert summary == ps.Summary(read=200, excluded=0, utterances=200, train=190, valid=10)
    assert len(valid) == 10 and not train & valid and train | valid == set(ids)
    assert valid == {ids[i] for i in random.Random(3).sample(range(200), 10)}  # seeded, over the id order
    assert split("b", 5, 3)[2] == valid  # same seed: same draw
    assert split("c", 5, 4)[2] != valid
    assert split("d", 0.1, 0)[0].valid == 1  # at least one
    for d in ("a/train", "a/valid"):
        validate_data_dir(tmp_path / d, require_text=False)
    assert (tmp_path / "a/valid/excluded.txt").read_text() == ""
    assert not list(tmp_path.glob(".train.*")) and not list((tmp_path / "a").glob(".*"))  # staging removed


def test_valid_percent_after_exclusion_and_concat(tmp_path, corpus):
    src, samples = corpus
    ref = _data_dir(tmp_path / "ref", [("r", "x", "/r.wav", "sentence c 0")])
    summary = ps.prepare_pretrain_set(
        src,
        tmp_path / "train",
        tmp_path / "valid",
        exclude_texts_of=[ref],
        concat=2,
        audio_dir=tmp_path / "joined",
        valid_percent=20,
        seed=0,
    )
    assert summary == ps.Summary(read=12, excluded=1, utterances=6, train=5, valid=1)  # round(6 * 0.2) = 1
    assert list(_excluded(tmp_path / "train")) == ["c-00"]
    groups = {}
    for name in ("train", "valid"):
        members = {utt: parts for utt, *parts in _lines(tmp_path / name / "members.txt")}
        assert set(members) == set(read_map(tmp_path / name / "wav.scp"))
        groups.update(members)
    assert sorted(m for parts in groups.values() for m in parts) == sorted(set(samples) - {"c-00"})


def test_valid_percent_leaving_nothing_to_train_on(tmp_path, corpus):
    with pytest.raises(ValueError, match=r"95 % of 5 utterances leaves none for training"):
        ps.prepare_pretrain_set(
            corpus[0], tmp_path / "t", tmp_path / "v", concat=3, audio_dir=tmp_path / "j", valid_percent=95
        )


# ----------------------------------------------------------------------------- command line, memory


def test_command_line(tmp_path, corpus):
    src, _ = corpus
    cli = [sys.executable, "-m", "espnet_ext.bin.pretrain_set", str(src), str(tmp_path / "out")]
    ok = subprocess.run(cli + ["--concat", "6", "--concat_audio", "pipes"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert len(read_map(tmp_path / "out/wav.scp")) == 4
    bad = subprocess.run(cli + ["--concat", "6"], capture_output=True, text=True)
    assert bad.returncode == 1 and "audio_dir: expected a directory" in bad.stderr
    both = subprocess.run(cli + ["--concat", "6", "--concat_seconds", "3"], capture_output=True, text=True)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def _peak(func) -> int:
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_set(tmp_path):
    """Exclusion, concatenation into files and a held-out share, on 200 and 1200 utterances (20
    a speaker, hard links to 4 short files): the peak grows by less than 64 bytes per extra
    utterance (measured: ~40, the speaker names the writers keep, one per 20 utterances; holding
    the set would take a kilobyte or more each, see tests/data/test_flat_memory.py)."""
    sources = [tmp_path / f"s{i}.wav" for i in range(4)]
    for i, path in enumerate(sources):
        _wav(path, 800, seed=i)
    ref = _data_dir(tmp_path / "ref", [("r", "x", "/r.wav", "w 3")])
    peaks = {}
    for run, n in enumerate((200, 1200, 200, 1200)):
        utts = []
        for i in range(n):
            wav = tmp_path / f"run{run}" / "wav" / f"{i:05d}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            wav.hardlink_to(sources[i % 4])
            utts.append((f"s{i // 20:04d}-{i:05d}", f"s{i // 20:04d}", wav, f"w {i}"))
        src = _data_dir(tmp_path / f"run{run}" / "src", utts)
        out = tmp_path / f"run{run}"

        def step(src=src, out=out):
            ps.prepare_pretrain_set(
                src, out / "train", out / "valid", [ref], concat=6, audio_dir=out / "joined", valid_percent=1
            )

        peaks.setdefault(n, []).append(_peak(step))
    growth = (min(peaks[1200]) - max(peaks[200])) / 1000
    assert growth < 64, peaks
