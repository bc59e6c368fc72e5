"""Classification scoring (accuracy, macro-F1, confusion matrix; checked against scikit-learn
and hand-computed cases) and the stage-4 label list."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from espnet_ext.bin import cls_labels, cls_score

CLASSES = ["neutral", "calm", "happy", "sad"]


def write(path: Path, mapping: dict) -> Path:
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(mapping.items())), encoding="utf-8")
    return path


def test_hand_computed_case():
    refs = {"u1": "neutral", "u2": "neutral", "u3": "calm", "u4": "happy", "u5": "happy", "u6": "sad"}
    hyps = {"u1": "neutral", "u2": "calm", "u3": "calm", "u4": "happy", "u5": "neutral"}  # u6: none
    s = cls_score.score(refs, hyps, CLASSES)
    assert (s.total, s.correct, s.missing) == (6, 3, ["u6"])
    assert s.accuracy == pytest.approx(50.0)
    stats = s.per_class()
    # neutral: TP 1, predicted 2, refs 2 -> P 50, R 50; calm: TP 1, pred 2, refs 1 -> P 50, R 100
    # happy: TP 1, pred 1, refs 2 -> P 100, R 50; sad: TP 0, pred 0, refs 1 -> 0
    np.testing.assert_allclose(stats["precision"], [50, 50, 100, 0])
    np.testing.assert_allclose(stats["recall"], [50, 100, 50, 0])
    np.testing.assert_allclose(stats["f1"], [50, 200 / 3, 200 / 3, 0])
    assert s.macro_f1 == pytest.approx((50 + 200 / 3 + 200 / 3 + 0) / 4)
    assert s.confusion.tolist() == [[1, 1, 0, 0, 0], [0, 1, 0, 0, 0], [1, 0, 1, 0, 0], [0, 0, 0, 0, 1]]


def test_absent_classes_do_not_count_in_macro_f1():
    s = cls_score.score({"a": "calm", "b": "happy"}, {"a": "calm", "b": "calm"}, CLASSES)
    # calm: P 50 R 100 F1 66.7; happy: 0; neutral and sad absent from both -> not averaged
    assert s.macro_f1 == pytest.approx((200 / 3 + 0) / 2)


@pytest.mark.parametrize("seed", range(5))
def test_matches_scikit_learn(seed):
    from sklearn import metrics  # a dependency of librosa, hence of ESPnet

    rng = np.random.default_rng(seed)
    n = 60
    y_true = rng.integers(0, len(CLASSES), n)
    y_pred = np.where(rng.random(n) < 0.5, y_true, rng.integers(0, len(CLASSES) - 1, n))
    refs = {f"u{i:03d}": CLASSES[t] for i, t in enumerate(y_true)}
    hyps = {f"u{i:03d}": CLASSES[p] for i, p in enumerate(y_pred)}
    s = cls_score.score(refs, hyps, CLASSES)
    assert s.accuracy == pytest.approx(100 * metrics.accuracy_score(y_true, y_pred))
    assert s.macro_f1 == pytest.approx(100 * metrics.f1_score(y_true, y_pred, average="macro", zero_division=0))
    np.testing.assert_array_equal(s.confusion[:, :-1], metrics.confusion_matrix(y_true, y_pred, labels=range(4)))


@pytest.mark.parametrize(
    "refs, hyps, message",
    [
        ({"a": "calm"}, {"a": "calm", "b": "calm"}, "not in the reference"),
        ({"a": "bored"}, {"a": "calm"}, "reference of a: 'bored' is not a class"),
        ({"a": "calm"}, {"a": "bored"}, "prediction for a: 'bored' is not a class"),
    ],
)
def test_bad_input(refs, hyps, message):
    with pytest.raises(ValueError, match=message):
        cls_score.score(refs, hyps, CLASSES)


def test_command_line_writes_metrics_markdown_png_and_results(tmp_path, capsys):
    labels = tmp_path / "labels.txt"
    cls_labels.write_label_list(labels, CLASSES)
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


def test_label_list_and_checks(tmp_path):
    train = write(tmp_path / "train", {"a": "sad", "b": "calm", "c": "sad"})
    dev = write(tmp_path / "dev", {"d": "calm"})
    out = tmp_path / "token_list" / "labels.txt"
    assert cls_labels.make_label_list([train], out, checks=[dev]) == ["calm", "sad"]
    assert out.read_text().split() == ["calm", "sad", "<unk>"]
    assert cls_labels.read_label_list(out) == ["calm", "sad"]
    assert cls_labels.make_label_list([train], out, classes=["sad", "happy", "calm"]) == ["sad", "happy", "calm"]
    bad = write(tmp_path / "test", {"e": "bored"})
    with pytest.raises(ValueError, match=r"test: 1 label\(s\) not among the classes \(calm sad\): e: 'bored'"):
        cls_labels.make_label_list([train], out, checks=[bad])
    two = tmp_path / "two"
    two.write_text("f calm sad\n")
    with pytest.raises(ValueError, match="utterance f has label 'calm sad'; expected exactly one class label"):
        cls_labels.make_label_list([two], out)
    with pytest.raises(ValueError, match="distinct class names"):
        cls_labels.make_label_list([train], out, classes=["sad", "sad"])
    assert cls_labels.main(["--text", str(train), "--out", str(out), "--check", str(bad)]) == 1
