"""``python -m benchmarks decode`` at a tiny size: the figures it prints are consistent with
each other and with the audio, and our batched greedy decoder gives ESPnet's best path."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from benchmarks import decode

ROW = re.compile(
    r"^  (ESPnet Speech2Text|ours \(ctc_greedy\))\s+(\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\S+)$", re.MULTILINE
)
NUM_UTTS = 4
THREADS_BEFORE = torch.get_num_threads()


def mini_audio_seconds(count: int) -> float:
    paths = sorted(decode.MINI_WAVS.glob("*.flac"))[:count]
    return sum(soundfile.info(str(p)).frames for p in paths) / 16000


def parse_rows(out: str):
    rows = [
        (name, int(batch), float(s), float(per_s), float(rtf), ratio)
        for name, batch, s, per_s, rtf, ratio in ROW.findall(out)
    ]
    assert rows, out
    return rows


def check_figures(out: str, audio_s: float, batch_sizes, check_ratio) -> None:
    rows = parse_rows(out)
    assert [(r[0], r[1]) for r in rows] == [("ESPnet Speech2Text", 1)] + [("ours (ctc_greedy)", b) for b in batch_sizes]
    ref_s = rows[0][2]
    for name, _, seconds, per_s, rtf, ratio in rows:
        assert seconds > 0
        assert per_s == pytest.approx(audio_s / seconds, rel=0.02, abs=0.06)
        assert rtf == pytest.approx(seconds / audio_s, rel=0.02, abs=6e-6)
        if name.startswith("ours"):
            check_ratio(float(ratio), seconds, ref_s, half_unit=0.00005)  # seconds printed to 0.1 ms
        else:
            assert ratio == "-"


def differing(out: str, label: str):
    line = next(x for x in out.splitlines() if x.startswith(f"  hypotheses differing from {label}"))
    return [(int(n), int(total), int(batch)) for n, total, batch in re.findall(r"(\d+) of (\d+) at batch (\d+)", line)]


@pytest.fixture(scope="module")
def built_run():
    """One run on the built tiny model, shared by the tests below."""
    import contextlib
    import io

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        assert (
            decode.main(["--num_utts", str(NUM_UTTS), "--batch_sizes", "1", "3", "--repeats", "1", "--threads", "1"])
            == 0
        )
    return sink.getvalue()


def test_built_model_run_prints_consistent_figures(built_run, check_ratio):
    out = built_run
    audio_s = mini_audio_seconds(NUM_UTTS)
    assert f"{NUM_UTTS} utterances, {audio_s:.1f} s of audio" in out, out
    assert ", 1 torch threads," in out and torch.get_num_threads() == THREADS_BEFORE  # for that call only
    assert "tiny model (random weights" in out and "M parameters" in out
    check_figures(out, audio_s, [1, 3], check_ratio)


def test_batched_greedy_equals_espnets_best_path_at_every_batch_size(built_run):
    out = built_run
    assert differing(out, "ESPnet's CTC.argmax best path") == [(0, NUM_UTTS, 1), (0, NUM_UTTS, 3)], out
    assert differing(out, "ours at the first batch size") == [(0, NUM_UTTS, 1), (0, NUM_UTTS, 3)], out
    reference = differing(out, "the reference")
    assert [(total, batch) for _, total, batch in reference] == [(NUM_UTTS, 1), (NUM_UTTS, 3)]
    assert all(0 <= n <= NUM_UTTS for n, _, _ in reference)
    lengths = re.search(r"mean hypothesis length: ours (\d+\.\d) tokens, reference (\d+\.\d)", out)
    assert lengths and float(lengths.group(1)) > 0 and float(lengths.group(2)) > 0, out


def test_sharpened_ctc_layer_makes_the_asked_fraction_of_frames_blank(tmp_path):
    utts = decode.mini_utterances(6)
    files = decode.build_model_files("tiny", str(tmp_path), utts, blank_fraction=0.6)
    model, _ = decode.load_ours(files)  # through the saved files: the change was saved
    speech, lengths = decode.pad_batch(utts)
    with torch.no_grad():
        enc, enc_lens = model.encode(speech, lengths)
        best = model.ctc.argmax(enc)
    valid = torch.arange(enc.size(1)) < enc_lens[:, None]
    blank = float((best[valid] == model.blank_id).float().mean())
    assert blank == pytest.approx(0.6, abs=0.03)


def write_data_dir(directory: Path, utts) -> Path:
    directory.mkdir()
    lines = []
    for u in utts:
        path = directory / f"{u.uttid}.wav"
        soundfile.write(str(path), u.audio, 16000, subtype="PCM_16")
        lines.append(f"{u.uttid} {path}\n")
    (directory / "wav.scp").write_text("".join(sorted(lines)), encoding="utf-8")
    return directory


def test_trained_model_files_and_a_data_dir(tmp_path, capsys, check_ratio):
    utts = decode.mini_utterances(3)
    files = decode.build_model_files("tiny", str(tmp_path), utts, blank_fraction=0.8)
    data = write_data_dir(tmp_path / "data", utts)
    assert (
        decode.main(
            [
                "--asr_train_config",
                files["asr_train_config"],
                "--asr_model_file",
                files["asr_model_file"],
                "--data_dir",
                str(data),
                "--num_utts",
                "0",
                "--batch_sizes",
                "2",
                "--repeats",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    audio_s = sum(len(u.audio) for u in utts) / 16000
    assert f"model {files['asr_model_file']}, " in out and f"3 utterances, {audio_s:.1f} s of audio" in out, out
    check_figures(out, audio_s, [2], check_ratio)
    assert differing(out, "ESPnet's CTC.argmax best path") == [(0, 3, 2)], out


def test_data_dir_audio_at_another_rate_is_refused_naming_the_file(tmp_path):
    (tmp_path / "wav.scp").write_text(f"a {tmp_path / 'a.wav'}\n", encoding="utf-8")
    soundfile.write(str(tmp_path / "a.wav"), np.zeros(800, dtype=np.float32), 8000)
    with pytest.raises(ValueError, match=r"wav.scp: utterance a: 8000 Hz audio; expected 16000"):
        decode.data_dir_utterances(str(tmp_path), 0)
    with pytest.raises(ValueError, match=r"missing; expected a data dir"):
        decode.data_dir_utterances(str(tmp_path / "nowhere"), 0)


def test_bad_options_are_refused():
    for argv in (["--batch_sizes", "0"], ["--asr_model_file", "x.pth"], ["--blank_fraction", "1.0"]):
        with pytest.raises(SystemExit):
            decode.parse_args(argv)
