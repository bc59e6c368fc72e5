"""Fixtures of the ESPnet-layer tests."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _write_set(directory: Path, utterances) -> Path:
    """wav.scp, text and speech_shape of mini-corpus utterances (id, transcript)."""
    import soundfile

    wav_dir = ROOT / "egs2/mini/corpus/en/wav"
    directory.mkdir(parents=True)
    with (
        open(directory / "wav.scp", "w") as scp,
        open(directory / "text", "w") as text,
        open(directory / "speech_shape", "w") as shape,
    ):
        for utt, words in utterances:
            scp.write(f"{utt} {wav_dir / utt}.flac\n")
            text.write(f"{utt} {words}\n")
            shape.write(f"{utt} {soundfile.info(str(wav_dir / f'{utt}.flac')).frames}\n")
    return directory


def _tiny_asr_data(directory: Path) -> list:
    """The mini corpus's first 8 English utterances as ESPnet's ASR training reads them:
    ``directory/{train,valid}`` (6 and 2) and ``directory/tokens.txt`` (characters). Returns the
    training options that read them (tokens, data and shape files)."""
    lines = (ROOT / "egs2/mini/corpus/en/text").read_text().splitlines()[:8]
    utterances = [line.split(maxsplit=1) for line in lines]
    sets = {
        "train": _write_set(directory / "train", utterances[:6]),
        "valid": _write_set(directory / "valid", utterances[6:]),
    }
    tokens = ["<blank>", "<unk>", "<space>", *sorted({c for _, w in utterances for c in w if c != " "}), "<sos/eos>"]
    (directory / "tokens.txt").write_text("\n".join(tokens) + "\n")
    options = ["--token_type", "char", "--token_list", str(directory / "tokens.txt")]
    for name, d in sets.items():
        options += [
            f"--{name}_data_path_and_name_and_type",
            f"{d}/wav.scp,speech,sound",
            f"--{name}_data_path_and_name_and_type",
            f"{d}/text,text,text",
            f"--{name}_shape_file",
            f"{d}/speech_shape",
        ]
    return options


@pytest.fixture(scope="session")
def tiny_asr_data():
    """``tiny_asr_data(directory)``: see :func:`_tiny_asr_data`."""
    return _tiny_asr_data
