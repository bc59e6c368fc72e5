"""The wav2vec 1.0 objective: loss values checked by hand, step alignment, distractors (never
the positive, never padding), padded batches, chance values, statistics, initial loss, and no
host synchronisation on the training path."""

from __future__ import annotations

import ast
import inspect
import math

import pytest
import torch

from espnet_ext.wav2vec1 import loss as loss_module
from espnet_ext.wav2vec1 import model as model_module
from espnet_ext.wav2vec1 import pretraining as pretraining_module
from espnet_ext.wav2vec1.config import preset_config
from espnet_ext.wav2vec1.loss import (
    FutureScores,
    chance_loss,
    future_logits,
    prediction_mask,
    regroup_by_target,
    wav2vec1_loss,
    wav2vec1_stats,
    zero_logit_loss,
)
from espnet_ext.wav2vec1.pretraining import wav2vec1_pretraining
from espnet_ext.wav2vec2.negatives import Negatives


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def hand_case():
    """One utterance of 5 frames, D = 2, K = 2 steps, offset 1, one distractor per target.

    z[u] = (u, 1); every context frame predicts (1 + k, 0) at step k (0-based), so the logit of
    step k against frame v is (1 + k) * v. Distractor of target u: frame (u + 1) % 5.
    """
    targets = torch.tensor([[[float(u), 1.0] for u in range(5)]])
    predictions = torch.tensor([[[[1.0 + k, 0.0] for k in range(2)] for _ in range(5)]])
    indices = torch.tensor([[[(u + 1) % 5] for u in range(5)]])
    negatives = Negatives(indices, torch.ones_like(indices, dtype=torch.bool))
    return future_logits(predictions, targets, negatives, torch.tensor([5]), offset=1)


# (u, k) pairs that exist: step k (0-based) from context t = u - 1 - k >= 0
PAIRS = [(u, k) for k in range(2) for u in range(1 + k, 5)]


def test_binary_cross_entropy_by_hand():
    scores = hand_case()
    out = wav2vec1_loss(scores)
    expected = sum(softplus(-(1 + k) * u) + softplus((1 + k) * ((u + 1) % 5)) for u, k in PAIRS)
    assert int(out.sample_size) == len(PAIRS) == 7  # fairseq: (T - offset) + (T - offset - 1)
    assert math.isclose(float(out.loss), expected, rel_tol=1e-6)
    balanced = wav2vec1_loss(scores, balanced_classes=True)  # distractors weighted 1/N = 1 here
    assert math.isclose(float(balanced.loss), expected, rel_tol=1e-6)
    assert math.isclose(float(out.per_prediction), expected / 7, rel_tol=1e-6)


def test_infonce_by_hand():
    out = wav2vec1_loss(hand_case(), infonce=True)
    expected = 0.0
    for u, k in PAIRS:
        pos, neg = (1 + k) * u, (1 + k) * ((u + 1) % 5)
        expected += -pos + math.log(math.exp(pos) + math.exp(neg))
    assert math.isclose(float(out.loss), expected, rel_tol=1e-6)


def test_balanced_classes_weights_distractors_by_one_over_n():
    torch.manual_seed(0)
    logits = torch.randn(1, 6, 3, 5)
    valid = torch.rand(1, 6, 3) > 0.3
    scores = FutureScores(logits, valid, torch.ones(1, 6, 1, 4, dtype=torch.bool))
    positive = torch.nn.functional.softplus(-logits[..., 0])
    negative = torch.nn.functional.softplus(logits[..., 1:]).sum(-1)
    for balanced, weight in ((False, 1.0), (True, 0.25)):
        expected = ((positive + weight * negative) * valid).sum()
        assert torch.allclose(wav2vec1_loss(scores, balanced_classes=balanced).loss, expected)


def test_regrouping_matches_an_explicit_loop():
    torch.manual_seed(0)
    predictions = torch.randn(2, 9, 4, 3)
    offset = 2
    grouped = regroup_by_target(predictions, offset)
    mask = prediction_mask(torch.tensor([9, 6]), 9, 4, offset)
    for b in range(2):
        for u in range(9):
            for k in range(4):
                t = u - offset - k
                assert bool(mask[b, u, k]) == (t >= 0 and u < [9, 6][b])
                if t >= 0:
                    assert torch.equal(grouped[b, u, k], predictions[b, t, k])


def test_chance_is_the_best_constant_logit():
    grid = torch.linspace(-8, 8, 160001)
    for negatives, balanced in ((10, False), (10, True), (3, False)):
        weight = 1 / negatives if balanced else 1.0
        best = float(
            (torch.nn.functional.softplus(-grid) + weight * negatives * torch.nn.functional.softplus(grid)).min()
        )
        assert math.isclose(chance_loss(negatives, balanced_classes=balanced), best, rel_tol=1e-6)
    assert math.isclose(zero_logit_loss(10), 11 * math.log(2))
    assert math.isclose(chance_loss(10, infonce=True), math.log(11))
    assert chance_loss(10) < zero_logit_loss(10)  # the class prior alone lowers the loss from 7.62 to 3.35


def test_statistics():
    logits = torch.tensor([[[[3.0, 1.0, 2.0], [0.0, 1.0, -1.0]], [[1.0, 1.0, 0.0], [5.0, 4.0, 4.5]]]])
    valid = torch.tensor([[[True, True], [True, False]]])
    stats = wav2vec1_stats(FutureScores(logits, valid, torch.ones(1, 2, 1, 2, dtype=torch.bool)))
    # correct: (u0, k0) yes; (u0, k1) no; (u1, k0) tie with a distractor: no; (u1, k1) not a prediction
    assert math.isclose(float(stats.accuracy), 1 / 3, rel_tol=1e-6)
    assert torch.allclose(stats.step_accuracy, torch.tensor([0.5, 0.0]))
    assert math.isclose(float(stats.prob_pos), float(torch.sigmoid(torch.tensor([3.0, 0.0, 1.0])).mean()), rel_tol=1e-6)


def test_distractors_are_never_the_positive_nor_padding():
    torch.manual_seed(0)
    model = wav2vec1_pretraining(preset_config("tiny").replace({"num_negatives": 10})).eval()
    lengths = torch.tensor([12000, 4000, 2400])
    speech = torch.randn(3, 12000) * 0.1 * (torch.arange(12000) < lengths[:, None])
    with torch.no_grad():
        out = model(speech, lengths, generator=torch.Generator().manual_seed(1))
    indices, frames = out.negatives.indices, out.lengths
    u = torch.arange(indices.size(1)).view(1, -1, 1)
    valid_target = u < frames.view(-1, 1, 1)
    assert frames.tolist() == [int(model.backbone.output_lengths(int(n))) for n in lengths]
    assert not ((indices == u) & valid_target).any()  # never the positive
    assert ((indices < frames.view(-1, 1, 1)) | ~valid_target).all()  # never a padding frame
    # the predictions scored: per utterance sum_k max(0, T - offset - k)
    expected = sum(max(0, t - 3 - k) for t in frames.tolist() for k in range(12))
    assert int(out.loss.sample_size) == expected
    assert not out.scores.valid[1, int(frames[1]) :].any()


def test_padded_batch_scores_positives_as_single_utterances():
    torch.manual_seed(0)
    model = wav2vec1_pretraining("tiny").eval()
    lengths = torch.tensor([9000, 5000])
    speech = torch.randn(2, 9000) * 0.1 * (torch.arange(9000) < lengths[:, None])
    with torch.no_grad():
        batch = model(speech, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone = model(speech[i : i + 1, :n])
            t = alone.scores.logits.size(1)
            assert torch.equal(batch.scores.valid[i, :t], alone.scores.valid[0])
            positives = batch.scores.logits[i, :t, :, 0][alone.scores.valid[0]]
            assert torch.allclose(positives, alone.scores.logits[0, :, :, 0][alone.scores.valid[0]], atol=1e-4)


@pytest.mark.parametrize(
    "overrides", [{}, {"balanced_classes": True}, {"infonce": True}], ids=["bce", "balanced", "infonce"]
)
def test_initial_loss_is_near_its_zero_logit_value(overrides):
    """At initialisation the logits are small: the loss is near its all-zero-logits value and
    the accuracy near 1 / (N + 1)."""
    torch.manual_seed(0)
    model = wav2vec1_pretraining(preset_config("tiny").replace(overrides)).eval()
    t = torch.arange(32000) / 16000
    speech = torch.stack([torch.sin(2 * math.pi * (150 + 100 * t) * t), torch.randn(32000)]) * 0.3
    with torch.no_grad():
        out = model(speech, generator=torch.Generator().manual_seed(0))
    config = model.config
    reference = zero_logit_loss(config.num_negatives, config.infonce, config.balanced_classes)
    assert abs(float(out.loss.per_prediction) - reference) < 0.05 * reference
    assert abs(float(out.stats.accuracy) - 1 / 11) < 0.05


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = wav2vec1_pretraining(preset_config("tiny").replace({"skip_connections_agg": True}))
    out = model(torch.randn(2, 6000) * 0.1, torch.tensor([6000, 4000]))
    out.loss.per_prediction.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


HOST_SYNC_CALLS = {"item", "tolist", "nonzero", "argwhere", "cpu", "numpy", "masked_select", "unique"}


@pytest.mark.parametrize("module", [loss_module, model_module, pretraining_module], ids=lambda m: m.__name__)
def test_no_host_synchronisation_by_construction(module):
    """Nothing on the training path copies data-dependent values or shapes to the host."""
    tree = ast.parse(inspect.getsource(module))
    called = {
        node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not called & HOST_SYNC_CALLS
