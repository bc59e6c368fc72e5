"""wav2vec 2.0 pre-training: negative sampling, logits and fairseq's loss scaling, numerical equality
with ``transformers.Wav2Vec2ForPreTraining``, behaviour at initialisation and under training,
padding, and the downsampling context network."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math

import pytest
import torch
import torch.nn.functional as F

from espnet_ext.wav2vec2 import losses, negatives, pretraining, quantizer
from espnet_ext.wav2vec2.downsample import downsample_mask
from espnet_ext.wav2vec2.losses import contrastive_logits, same_codes, wav2vec2_loss
from espnet_ext.wav2vec2.masking import span_mask
from espnet_ext.wav2vec2.negatives import Negatives, sample_negatives
from espnet_ext.wav2vec2.presets import preset_config
from espnet_ext.wav2vec2.pretraining import downsampling_context, pretraining_from_checkpoint, wav2vec2_pretraining

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**overrides):
    return dataclasses.replace(preset_config("tiny"), **overrides)


def tiny(seed=0, **overrides):
    torch.manual_seed(seed)
    return wav2vec2_pretraining(tiny_config(**overrides))


# ---------------------------------------------------------------------------- negatives
def random_candidates(generator):
    batch = int(torch.randint(1, 5, (1,), generator=generator))
    steps = int(torch.randint(1, 40, (1,), generator=generator))
    lengths = torch.randint(0, steps + 1, (batch,), generator=generator)
    density = float(torch.rand((), generator=generator))
    candidates = torch.rand(batch, steps, generator=generator) < density
    return candidates & (torch.arange(steps) < lengths[:, None]), lengths


def test_negatives_are_other_candidates_of_the_same_utterance():
    generator = torch.Generator().manual_seed(0)
    for _ in range(300):
        candidates, lengths = random_candidates(generator)
        num = int(torch.randint(1, 9, (1,), generator=generator))
        neg = sample_negatives(candidates, num, generator)
        batch, steps = candidates.shape
        assert neg.indices.shape == neg.valid.shape == (batch, steps, num)
        assert neg.indices.dtype == torch.long and bool(((neg.indices >= 0) & (neg.indices < steps)).all())
        frames = torch.arange(steps).view(1, steps, 1).expand_as(neg.indices)
        picked = candidates.gather(1, neg.indices.view(batch, -1)).view_as(neg.indices)
        valid = neg.valid
        assert bool(picked[valid].all())  # only candidates (never padding)
        assert bool((neg.indices[valid] < lengths.view(batch, 1, 1).expand_as(valid)[valid]).all())
        own = candidates.unsqueeze(-1).expand_as(valid)
        assert not bool((neg.indices == frames)[valid & own].any())  # never the positive itself
        others = candidates.sum(1, keepdim=True) - candidates.long()  # candidates besides the frame
        assert torch.equal(valid, (others > 0).unsqueeze(-1).expand_as(valid))
        assert torch.equal(neg.indices[~valid], frames[~valid])


def test_negatives_are_uniform_over_the_other_candidates():
    candidates = torch.zeros(2, 12, dtype=torch.bool)
    candidates[0, [1, 4, 5, 9, 10]] = True
    candidates[1, :] = True
    neg = sample_negatives(candidates, 20000, torch.Generator().manual_seed(0))
    counts = torch.bincount(neg.indices[0, 4], minlength=12).float() / 20000
    assert counts[4] == 0 and float(counts[[0, 2, 3, 6, 7, 8, 11]].sum()) == 0
    assert torch.allclose(counts[[1, 5, 9, 10]], torch.full((4,), 0.25), atol=0.02)
    assert int(torch.bincount(neg.indices[1, 0], minlength=12)[0]) == 0


def test_sampler_shapes_depend_only_on_input_shapes():
    generator = torch.Generator().manual_seed(0)
    shapes = set()
    for density in (0.0, 0.05, 0.5, 1.0):
        candidates = torch.rand(3, 17, generator=generator) < density
        neg = sample_negatives(candidates, 5, generator)
        shapes.add((tuple(neg.indices.shape), tuple(neg.valid.shape)))
    assert shapes == {((3, 17, 5), (3, 17, 5))}


HOST_SYNC_CALLS = {"item", "tolist", "nonzero", "argwhere", "cpu", "numpy", "masked_select", "unique"}


@pytest.mark.parametrize("module", [negatives, losses, quantizer, pretraining], ids=lambda m: m.__name__)
def test_no_host_synchronisation_by_construction(module):
    """The training path calls nothing that copies data-dependent values or shapes to the host.
    (``torch.cuda.set_sync_debug_mode`` would check this on a GPU; see the GPU test below.)"""
    tree = ast.parse(inspect.getsource(module))
    called = {
        node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert not called & HOST_SYNC_CALLS


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_objective_does_not_synchronise_on_gpu():
    torch.manual_seed(0)
    device = torch.device("cuda")
    model = wav2vec2_pretraining(tiny_config()).to(device)
    frames = torch.randn(2, 30, 32, device=device)
    predictions = torch.randn(2, 30, model.project_q.out_features, device=device, requires_grad=True)
    mask = span_mask(torch.tensor([30, 20], device=device), 30, 0.65, 5, 2)
    temperature = model.temperature(torch.tensor(1000, device=device))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        neg = sample_negatives(mask, 10)
        q = model.quantizer(frames, temperature, mask)
        targets = model.project_q(q.quantized)
        scores = contrastive_logits(predictions, targets, neg, 0.1, same_codes(q.codes, neg.indices))
        loss = wav2vec2_loss(scores.logits, mask, q.prob_perplexity, q.num_vars, frames.square().mean())
        losses.contrastive_stats(scores, mask)
        loss.per_frame.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")


# ---------------------------------------------------------------------------- logits and loss
def test_logits_match_an_explicit_computation():
    torch.manual_seed(0)
    pred, targ = torch.randn(2, 9, 6), torch.randn(2, 9, 6)
    codes = torch.randint(0, 3, (2, 9, 2))
    mask = torch.rand(2, 9) < 0.7
    neg = sample_negatives(mask, 4)
    scores = contrastive_logits(pred, targ, neg, 0.1, same_codes(codes, neg.indices))
    for b in range(2):
        for t in range(9):
            sims = [F.cosine_similarity(pred[b, t], targ[b, t], dim=0)]
            sims += [F.cosine_similarity(pred[b, t], targ[b, k], dim=0) for k in neg.indices[b, t]]
            expected = torch.stack(sims) / 0.1
            for k, j in enumerate(neg.indices[b, t].tolist()):
                if not neg.valid[b, t, k] or torch.equal(codes[b, j], codes[b, t]):
                    expected[k + 1] = float("-inf")
            assert torch.allclose(scores.logits[b, t], expected, atol=1e-5)


def test_loss_follows_fairseq_criterion_scaling():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4)
    logits[0, 1, 2] = float("-inf")
    mask = torch.tensor([[True, True, False, True, False], [False, True, True, False, False]])
    ppl, penalty = torch.tensor(12.0), torch.tensor(0.3)
    out = wav2vec2_loss(logits, mask, ppl, 16, penalty, diversity_weight=0.1, feature_penalty_weight=10.0)
    contrastive = F.cross_entropy(logits[mask], torch.zeros(5, dtype=torch.long), reduction="sum")
    assert int(out.sample_size) == 5 and torch.allclose(out.contrastive, contrastive)
    assert float(out.diversity) == pytest.approx((16 - 12) / 16)
    expected = contrastive + 0.1 * (4 / 16) * 5 + 10.0 * 0.3 * 5
    assert torch.allclose(out.loss, expected) and torch.allclose(out.per_frame, expected / 5)
    assert torch.allclose(out.contrastive_per_frame, contrastive / 5)


# ---------------------------------------------------------------------------- the model
def waves(lengths=(32000, 32000, 32000, 32000), seed=1):
    generator = torch.Generator().manual_seed(seed)
    speech = torch.randn(len(lengths), max(lengths), generator=generator) * 0.1
    for i, n in enumerate(lengths):
        speech[i, n:] = 0
    return speech, torch.tensor(lengths)


def test_at_initialisation_loss_is_chance_and_codes_are_diverse():
    model = tiny().eval()
    speech, lengths = waves()
    with torch.no_grad():
        out = model(speech, lengths)
    chance = math.log(model.options.num_negatives + 1)
    assert int(out.loss.sample_size) > 150
    assert abs(float(out.loss.contrastive_per_frame) / chance - 1) < 0.1
    assert float(out.quantizer.prob_perplexity) > 0.5 * out.quantizer.num_vars
    assert float(out.stats.accuracy) < 0.2


def test_padding_is_never_masked_scored_or_sampled_and_utterances_are_independent():
    model = tiny(dropout=0.0, attention_dropout=0.0, dropout_input=0.0, dropout_features=0.0).eval()
    speech, lengths = waves((24000, 16000, 9000))
    with torch.no_grad():
        out = model(speech, lengths)
        frames = model.backbone.output_lengths(lengths)
        assert not bool((out.mask & out.padding_mask).any()) and torch.isfinite(out.loss.loss)
        scored = out.negatives.valid & out.mask.unsqueeze(-1)
        sampled_padding = out.padding_mask.gather(1, out.negatives.indices.flatten(1)).view_as(scored)
        assert not bool(sampled_padding[scored].any())
        for i, n in enumerate(frames.tolist()):  # the same masks and negatives, one utterance alone
            alone = model(
                speech[i : i + 1, : int(lengths[i])],
                temperature=2.0,
                time_mask=out.mask[i : i + 1, :n],
                negatives=Negatives(out.negatives.indices[i : i + 1, :n], out.negatives.valid[i : i + 1, :n]),
            )
            keep = out.mask[i, :n]
            assert torch.allclose(alone.logits[0][keep], out.logits[i, :n][keep], atol=1e-4)


def test_matches_transformers_wav2vec2_for_pretraining(tmp_path, monkeypatch):
    """Same weights (saved by transformers, mapped by the importer), same mask, same negatives,
    same Gumbel noise: same projections, logits, perplexity and losses."""
    from transformers import Wav2Vec2Config as HFConfig
    from transformers import Wav2Vec2ForPreTraining

    torch.manual_seed(0)
    config = HFConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(32,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="group",
        do_stable_layer_norm=False,
        codevector_dim=32,
        proj_codevector_dim=24,
        num_codevectors_per_group=16,
        num_codevector_groups=2,
        num_negatives=20,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        feat_quantizer_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.65,
        mask_feature_prob=0.0,
    )
    reference = Wav2Vec2ForPreTraining(config)
    reference.save_pretrained(tmp_path, safe_serialization=False)
    ours = pretraining_from_checkpoint(tmp_path, feature_penalty_weight=0.0).train()  # HF has no feature penalty
    reference.train().set_gumbel_temperature(2.0)
    speech = torch.randn(2, 16000, generator=torch.Generator().manual_seed(1)) * 0.1
    steps = int(ours.backbone.output_lengths(16000))
    mask = span_mask(torch.tensor([steps, steps]), steps, 0.65, 10, 2, torch.Generator().manual_seed(2))
    neg = sample_negatives(mask, 20, torch.Generator().manual_seed(3))
    flat = neg.indices + torch.arange(2).view(2, 1, 1) * steps  # HF indexes the flattened batch

    gumbel_softmax = F.gumbel_softmax

    def same_noise(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
        torch.manual_seed(123)
        return gumbel_softmax(logits, tau=tau, hard=hard, dim=dim)

    monkeypatch.setattr(F, "gumbel_softmax", same_noise)
    ref = reference(speech, mask_time_indices=mask, sampled_negative_indices=flat)
    out = ours(speech, temperature=2.0, time_mask=mask, negatives=neg)
    assert torch.allclose(out.predictions, ref.projected_states, atol=1e-5)
    assert torch.allclose(out.targets, ref.projected_quantized_states, atol=1e-5)
    assert torch.allclose(out.quantizer.prob_perplexity, ref.codevector_perplexity, atol=1e-4)
    # HF's logits, from its own tensors and functions (K, B, T) -> (B, T, K) at the masked frames
    targets = ref.projected_quantized_states
    negs = targets.reshape(-1, 24)[flat.view(-1)].view(2, steps, 20, 24).permute(2, 0, 1, 3)
    logits = reference.compute_contrastive_logits(targets[None], negs, ref.projected_states, 0.1)
    logits[1:][(targets == negs).all(-1)] = float("-inf")
    ref_logits, our_logits = logits.permute(1, 2, 0)[mask], out.logits[mask]
    assert torch.equal(torch.isinf(ref_logits), torch.isinf(our_logits))
    finite = torch.isfinite(ref_logits)
    assert (ref_logits[finite] - our_logits[finite]).abs().max() < 1e-4
    assert torch.allclose(out.loss.contrastive, ref.contrastive_loss, rtol=1e-5)
    assert torch.allclose(out.loss.diversity * out.loss.sample_size, ref.diversity_loss, rtol=1e-5)
    assert torch.allclose(out.loss.loss, ref.loss, rtol=1e-5)  # HF's scaling: L_m + 0.1 * L_d * M


def test_a_few_updates_learn_the_task():
    """Straight-through gradients and all: on a fixed batch, L_m falls well below log(K + 1)
    (to about 1.5 from 3.04 in 60 Adam updates)."""
    model = tiny(
        num_negatives=20,
        dropout=0.0,
        attention_dropout=0.0,
        dropout_input=0.0,
        dropout_features=0.0,
        feature_grad_mult=1.0,
    )
    t = torch.arange(16000) / 16000
    speech = 0.5 * torch.stack(
        [
            torch.sin(2 * math.pi * (200 + 300 * torch.sin(2 * math.pi * 1.5 * t)) * t),
            torch.sin(2 * math.pi * (500 + 200 * torch.cos(2 * math.pi * 2 * t)) * t),
        ]
    )
    speech = speech + 0.01 * torch.randn(speech.shape, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(60):
        out = model(speech, num_updates=step)
        out.loss.per_frame.backward()
        assert model.quantizer.weight_proj.weight.grad.abs().sum() > 0
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        final = sum(float(model(speech).loss.contrastive_per_frame) for _ in range(4)) / 4
    assert final < 0.75 * math.log(21), final


def test_downsampling_context_network_variant():
    config = tiny_config(encoder_layers=0)
    torch.manual_seed(0)
    context = downsampling_context(
        config, num_encoder_layers=1, num_decoder_layers=1, downsample_rate=0.7, conv_ffn=True, pos_conv_kernel=0
    )
    model = wav2vec2_pretraining(config, context=context)
    speech, lengths = waves((24000, 17000))
    steps = int(model.backbone.output_lengths(24000))
    frames = model.backbone.output_lengths(lengths)
    time_mask = span_mask(frames, steps, 0.65, 10, 2)
    out = model(speech, lengths, time_mask=time_mask)
    out.loss.per_frame.backward()
    assert out.logits.shape[:2] == (2, math.ceil(0.7 * steps))
    assert torch.equal(out.mask, downsample_mask(time_mask, frames, 0.7))
    assert torch.equal((~out.padding_mask).sum(1), (frames * 7 + 9) // 10)
    assert torch.isfinite(out.loss.loss) and int(out.loss.sample_size) > 0
    assert all(p.grad is not None for p in model.context_network.parameters())
    assert any(name.startswith("context_network.decoder_layers.") for name in model.pretraining_state())


def test_heads_state_and_bad_configurations():
    model = tiny()
    state = model.pretraining_state()
    other = tiny(seed=1)
    other.load_pretraining_state(state)
    assert torch.equal(other.quantizer.vars, model.quantizer.vars)
    with pytest.raises(ValueError, match=r"missing keys \['project_q.bias'\]"):
        other.load_pretraining_state({k: v for k, v in state.items() if k != "project_q.bias"})
    with pytest.raises(ValueError, match="quantize_targets: expected True"):
        wav2vec2_pretraining(tiny_config(quantize_targets=False))
    with pytest.raises(ValueError, match="codebook_negatives: expected 0"):
        wav2vec2_pretraining(tiny_config(codebook_negatives=10))
    with pytest.raises(ValueError, match="num_negatives: expected a positive integer"):
        sample_negatives(torch.ones(1, 3, dtype=torch.bool), 0)
    with pytest.raises(ValueError, match="mask_dropout: expected 0.0"):
        wav2vec2_pretraining(tiny_config(mask_dropout=0.1))


def test_require_same_masks_follows_the_config():
    """fairseq's default: every utterance of a batch is masked as much as the least masked one
    (time masks as the config says; channel masks always, as fairseq's)."""
    frames = torch.tensor([120, 90, 60, 0])
    for same in (True, False):
        model = tiny(require_same_masks=same, mask_channel_prob=0.5, mask_channel_length=4)
        assert model.options.require_same_masks is same
        counts = set()
        for seed in range(10):
            time_mask, channel_mask = model.make_masks(frames, 120, torch.Generator().manual_seed(seed))
            assert not time_mask[3].any() and len(set(channel_mask.sum(1).tolist())) == 1
            counts.add(len(set(time_mask[:3].sum(1).tolist())))
        assert counts == {1} if same else max(counts) > 1


def test_bf16_autocast_keeps_the_objective_in_float32_and_close():
    """What ``use_amp: true`` does on a bf16 GPU, here with CPU autocast: the Transformer runs in
    bfloat16, the logits and losses stay float32, and the loss is within bf16 rounding of the
    float32 one (same masks, negatives and Gumbel noise)."""
    model = tiny(dropout=0.0, attention_dropout=0.0, dropout_input=0.0, dropout_features=0.0).eval()
    speech, lengths = waves((16000, 12000))
    with torch.no_grad():
        reference = model(speech, lengths, temperature=2.0)
    given = dict(temperature=2.0, time_mask=reference.mask, negatives=reference.negatives)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(speech, lengths, **given)
    assert out.predictions.dtype == torch.bfloat16  # the network did run in bf16
    assert out.logits.dtype == torch.float32 and out.loss.per_frame.dtype == torch.float32
    out.loss.per_frame.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
    assert float(out.loss.per_frame.detach()) == pytest.approx(float(reference.loss.per_frame), rel=0.02)
