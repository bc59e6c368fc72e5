"""The classification command lines: scoring (python -m espnet_ext.bin.cls_score: metrics.json,
confusion.md and .png, RESULTS.md) and the stage-4 label list (python -m espnet_ext.bin.cls_labels)."""

from __future__ import annotations

import json
from pathlib import Path

from espnet_ext.bin import cls_labels, cls_score
from espnet_ext.data.labels import write_label_list

CLASSES = ["neutral", "calm", "happy", "sad"]


def write(path: Path, mapping: dict) -> Path:
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(mapping.items())), encoding="utf-8")
    return path


def test_command_line_writes_metrics_markdown_png_and_results(tmp_path, capsys):
    labels = tmp_path / "labels.txt"
    write_label_list(labels, CLASSES)
    ref = write(tmp_path / "ref", {"u1": "calm", "u2": "sad", "u3": "happy"})
    exp = tmp_path / "exp" / "cls_x"
    hyp_dir = exp / "inference_best" / "test"
    hyp_dir.mkdir(parents=True)
    hyp = write(hyp_dir / "text", {"u1": "calm", "u2": "calm"})
    out = hyp_dir / "scoring"
    assert cls_score.main(["--ref", str(ref), "--hyp", str(hyp), "--labels", str(labels), "--out_dir", str(out)]) == 0
    assert "test: 3 utterances, accuracy 33.3%" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["missing"] == ["u3"] and metrics["correct"] == 1
    table = (out / "confusion.md").read_text()
    assert table.splitlines()[0] == "|ref \\ hyp|neutral|calm|happy|sad|(none)|"
    assert "|happy|0|0|0|0|1|" in table and "|sad|0|1|0|0|0|" in table
    png = (out / "confusion.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(str(out / "confusion.png")).ndim == 3
    assert cls_score.main(["collect", str(exp)]) == 0
    results = (exp / "RESULTS.md").read_text()
    assert "|test|3|33.3|" in results and "## cls_x/inference_best" in results
    assert "![test confusion matrix](inference_best/test/scoring/confusion.png)" in results
    assert (
        cls_score.main(
            ["--ref", str(ref), "--hyp", str(tmp_path / "nope"), "--labels", str(labels), "--out_dir", str(out)]
        )
        == 1
    )


def test_label_list_command_line(tmp_path, capsys):
    train = write(tmp_path / "train", {"a": "sad", "b": "calm", "c": "sad"})
    out = tmp_path / "token_list" / "labels.txt"
    assert cls_labels.main(["--text", str(train), "--out", str(out), "--classes", "sad calm"]) == 0
    assert out.read_text().split() == ["sad", "calm", "<unk>"]
    bad = write(tmp_path / "test", {"e": "bored"})
    assert cls_labels.main(["--text", str(train), "--out", str(out), "--check", str(bad)]) == 1
    assert "test: 1 label(s) not among the classes" in capsys.readouterr().err
