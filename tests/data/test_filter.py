"""Tests of stage 4, espnet_ext.data.filter and python -m espnet_ext.bin.filter_data."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from espnet_ext.data import datadir as dd
from espnet_ext.data import kaldi_files as kf
from espnet_ext.data.filter import char_tokens, ctc_requirement, filter_data, make_tokenizer
from espnet_ext.data.frames import frames_from_config, frames_from_dict

# wav2vec 2.0 conv stack, no further subsampling: (n - 400) // 320 + 1 frames (20 ms)
W2V2 = dict(frontend="wav2vec2", encoder="transformer", encoder_conf={"input_layer": None})


def frames_to_samples(frames):
    return (frames - 1) * 320 + 400


def make_dump(path: Path, entries):
    """A stage-3 dump dir; ``entries`` is {uttid: (num_samples, transcript)}."""
    path.mkdir(parents=True)
    kf.write_map(path / "wav.scp", {u: f"dump/data/{u}.flac" for u in entries})
    kf.write_map(path / "utt2num_samples", {u: str(n) for u, (n, _) in entries.items()})
    kf.write_map(path / "text", {u: t for u, (_, t) in entries.items()})
    kf.write_map(path / "utt2spk", {u: u.split("-")[0] for u in entries})
    kf.write_spk2utt(path / "spk2utt", kf.read_map(path / "utt2spk"))
    (path / "feats_type").write_text("raw\n")
    (path / "audio_format").write_text("flac\n")
    return path


ENTRIES = {
    "s1-short": (800, "a b"),  # 0.05 s
    "s1-edge": (1600, "ok"),  # exactly min_dur: kept
    "s1-long": (16000 * 21, "far too long"),
    "s1-maxedge": (16000 * 20, "exactly max"),  # kept
    "s2-empty": (16000, ""),
    "s2-blank": (16000, "   "),
    "s2-ctc": (frames_to_samples(12), "hello world aa"),  # 14 char labels + 2 repeats > 12 frames
    "s2-fits": (frames_to_samples(16), "hello world aa"),  # 16 >= 14 + 2
    "s2-tight": (frames_to_samples(15), "hello world aa"),  # 15 < 16
}


def test_char_tokens_match_espnet_char_tokenizer():
    assert char_tokens("ab  c") == ["a", "b", "<space>", "c"]
    assert char_tokens("a<noise>b <noise>", ["<noise>"]) == ["a", "<noise>", "b", "<space>", "<noise>"]
    assert char_tokens("你好 世界") == ["你", "好", "<space>", "世", "界"]
    from espnet2.text.char_tokenizer import CharTokenizer  # the reference, for single-spaced text

    ref = CharTokenizer(non_linguistic_symbols=["<noise>"], space_symbol="<space>")
    for text in ["hello world", "a<noise>b <noise> cc", "日本語 テキスト"]:
        assert char_tokens(text, ["<noise>"]) == ref.text2tokens(text)


def test_ctc_requirement_counts_adjacent_repeats():
    assert ctc_requirement(list("hello")) == (5, 1)
    assert ctc_requirement(list("aaa")) == (3, 2)
    assert ctc_requirement(["a", "<space>", "a"]) == (3, 0)
    assert ctc_requirement([]) == (0, 0)


def test_filter_reasons(tmp_path):
    src = make_dump(tmp_path / "src", ENTRIES)
    removed = filter_data(
        src,
        tmp_path / "dst",
        fs=16000,
        min_dur=0.1,
        max_dur=20,
        tokenizer=make_tokenizer("char"),
        frames_fn=frames_from_dict(W2V2),
    )
    assert removed == {
        "s1-short": "too short: 0.05 s < min_dur 0.1 s",
        "s1-long": "too long: 21 s > max_dur 20 s",
        "s2-empty": "empty transcript",
        "s2-blank": "empty transcript",
        "s2-ctc": "CTC-infeasible: 12 frames < 14 labels + 2 repeats",
        "s2-tight": "CTC-infeasible: 15 frames < 14 labels + 2 repeats",
    }
    assert (tmp_path / "dst" / "removed.txt").read_text().splitlines() == [
        f"{u}\t{removed[u]}" for u in kf.sorted_keys(removed)
    ]
    kept = dd.load_data_dir(tmp_path / "dst")
    assert kept.utts == ["s1-edge", "s1-maxedge", "s2-fits"]
    assert dd.validate_data_dir(tmp_path / "dst") == 3
    assert kept.scalars == {"feats_type": b"raw\n", "audio_format": b"flac\n"}
    assert kept.utt_maps["wav.scp"]["s2-fits"] == "dump/data/s2-fits.flac"  # untouched
    assert (tmp_path / "dst" / "spk2utt").read_text() == "s1 s1-edge s1-maxedge\ns2 s2-fits\n"


@pytest.mark.parametrize(
    "token_type, text, labels, repeats",
    [
        ("char", "hello world aa", 14, 2),
        ("word", "the the cat", 3, 1),
        ("phn", "sil hh ah l ow ow sil", 7, 1),
    ],
)
def test_token_types(tmp_path, token_type, text, labels, repeats):
    need = labels + repeats
    src = make_dump(
        tmp_path / "src", {"s-fit": (frames_to_samples(need), text), "s-off": (frames_to_samples(need - 1), text)}
    )
    removed = filter_data(
        src, tmp_path / "dst", min_dur=0, tokenizer=make_tokenizer(token_type), frames_fn=frames_from_dict(W2V2)
    )
    assert removed == {"s-off": f"CTC-infeasible: {need - 1} frames < {labels} labels + {repeats} repeats"}


def test_bpe(tmp_path):
    import sentencepiece

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["hello world", "good morning world", "hello again"] * 20) + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(tmp_path / "bpe"),
        vocab_size=30,
        model_type="bpe",
        character_coverage=1.0,
        minloglevel=2,
    )
    model = tmp_path / "bpe.model"
    processor = sentencepiece.SentencePieceProcessor(model_file=str(model))
    pieces = processor.encode_as_pieces("hello world")
    labels, repeats = ctc_requirement(pieces)
    need = labels + repeats
    src = make_dump(
        tmp_path / "src",
        {"s-fit": (frames_to_samples(need), "hello world"), "s-off": (frames_to_samples(need - 1), "hello world")},
    )
    removed = filter_data(
        src, tmp_path / "dst", min_dur=0, tokenizer=make_tokenizer("bpe", model), frames_fn=frames_from_dict(W2V2)
    )
    assert removed == {"s-off": f"CTC-infeasible: {need - 1} frames < {labels} labels + {repeats} repeats"}
    with pytest.raises(ValueError, match="expected the sentencepiece model"):
        make_tokenizer("bpe", None)


def test_nlsyms_count_as_one_label(tmp_path):
    text = "<noise> ab"  # <noise> <space> a b: 4 labels
    src = make_dump(tmp_path / "src", {"s-a": (frames_to_samples(4), text)})
    filter_data(
        src,
        tmp_path / "dst",
        min_dur=0,
        tokenizer=make_tokenizer("char", nlsyms=["<noise>"]),
        frames_fn=frames_from_dict(W2V2),
    )
    with pytest.raises(ValueError, match="all 1 utterance"):  # without nlsyms: 10 labels
        filter_data(
            src, tmp_path / "dst2", min_dur=0, tokenizer=make_tokenizer("char"), frames_fn=frames_from_dict(W2V2)
        )


def test_without_config_skips_ctc_check(tmp_path, caplog):
    src = make_dump(tmp_path / "src", ENTRIES)
    removed = filter_data(src, tmp_path / "dst")
    assert sorted(removed) == ["s1-long", "s1-short", "s2-blank", "s2-empty"]
    assert "CTC feasibility not checked: no ASR config given" in caplog.text


def test_nothing_left_fails(tmp_path):
    src = make_dump(tmp_path / "src", {"a-1": (100, "x"), "a-2": (16000, "")})
    with pytest.raises(ValueError, match=r"all 2 utterance\(s\) removed"):
        filter_data(src, tmp_path / "dst")
    assert len((tmp_path / "dst" / "removed.txt").read_text().splitlines()) == 2


def test_needs_a_dump_dir(tmp_path):
    src = make_dump(tmp_path / "src", {"a-1": (16000, "x")})
    (src / "utt2num_samples").unlink()
    with pytest.raises(ValueError, match=f"{src}/utt2num_samples: missing"):
        filter_data(src, tmp_path / "dst")


def test_cli_with_asr_config(tmp_path):
    src = make_dump(tmp_path / "src", ENTRIES)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(dict(W2V2, encoder_conf={"input_layer": "linear"})))
    assert frames_from_config(config)(frames_to_samples(12)) == 12
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "espnet_ext.bin.filter_data",
            str(src),
            str(tmp_path / "dst"),
            "--fs",
            "16000",
            "--min_dur",
            "0.1",
            "--max_dur",
            "20",
            "--token_type",
            "char",
            "--asr_config",
            str(config),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "removed 2 utterance(s): CTC-infeasible" in proc.stderr
    assert "removed 2 utterance(s): empty transcript" in proc.stderr
    assert "removed 1 utterance(s): too short" in proc.stderr
    assert dd.load_data_dir(tmp_path / "dst").utts == ["s1-edge", "s1-maxedge", "s2-fits"]
    bad = subprocess.run(
        [sys.executable, "-m", "espnet_ext.bin.filter_data", str(src), str(tmp_path / "x"), "--token_type", "bpe"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "expected the sentencepiece model for token_type bpe" in bad.stderr


def test_untranscribed_dir_gets_duration_checks_only(tmp_path):
    from espnet_ext.data.filter import filter_data

    src = tmp_path / "src"
    src.mkdir()
    (src / "wav.scp").write_text("a-1 /x/1.flac\na-2 /x/2.flac\na-3 /x/3.flac\n")
    (src / "utt2spk").write_text("a-1 a\na-2 a\na-3 a\n")
    (src / "spk2utt").write_text("a a-1 a-2 a-3\n")
    (src / "utt2num_samples").write_text("a-1 800\na-2 16000\na-3 480000\n")
    removed = filter_data(src, tmp_path / "dst", fs=16000, min_dur=0.1, max_dur=20)
    assert set(removed) == {"a-1", "a-3"}
    assert removed["a-1"].startswith("too short") and removed["a-3"].startswith("too long")
    assert (tmp_path / "dst" / "wav.scp").read_text() == "a-2 /x/2.flac\n"
    assert not (tmp_path / "dst" / "text").exists()
