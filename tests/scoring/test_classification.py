"""Classification scoring (espnet_ext.scoring.classification): accuracy, macro-F1 and the
confusion matrix, checked against scikit-learn and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from espnet_ext.scoring.classification import score

CLASSES = ["neutral", "calm", "happy", "sad"]


def test_hand_computed_case():
    refs = {"u1": "neutral", "u2": "neutral", "u3": "calm", "u4": "happy", "u5": "happy", "u6": "sad"}
    hyps = {"u1": "neutral", "u2": "calm", "u3": "calm", "u4": "happy", "u5": "neutral"}  # u6: none
    s = score(refs, hyps, CLASSES)
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
    s = score({"a": "calm", "b": "happy"}, {"a": "calm", "b": "calm"}, CLASSES)
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
    s = score(refs, hyps, CLASSES)
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
        score(refs, hyps, CLASSES)
