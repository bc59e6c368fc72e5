"""The leaner training step, each piece against what it replaces: the fused q/k/v projection
against three separate ones (checkpoint keys unchanged), layerdrop drawn once per forward pass
(eagerly on the host, in the graph under ``torch.compile``), the whole encoder compiled with static
shapes on the unpadded path."""

import copy
import dataclasses

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend
from torch.nn import functional as F

from espnet_ext.wav2vec2.compile import compile_encoder
from espnet_ext.wav2vec2.model import wav2vec2_model
from espnet_ext.wav2vec2.presets import tiny_config
from espnet_ext.wav2vec2.transformer import MultiheadAttention

pytestmark = pytest.mark.usefixtures("one_thread")


def _separate_projections(attention: MultiheadAttention, x, memory=None, attn_mask=None):
    """What the attention computed with one GEMM per projection."""
    memory = x if memory is None else memory
    heads = attention._heads
    q, k, v = heads(attention.q_proj(x)), heads(attention.k_proj(memory)), heads(attention.v_proj(memory))
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    return attention.out_proj(y.transpose(1, 2).flatten(2))


def _grads(module):
    return {name: p.grad.clone() for name, p in module.named_parameters()}


@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
def test_fused_qkv_projection_equals_separate_projections(cross):
    torch.manual_seed(0)
    attention = MultiheadAttention(32, 4).eval()
    for p in attention.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(3, 11, 32)
    memory = torch.randn(3, 7, 32) if cross else None
    mask = torch.rand(3, 1, 1, 7 if cross else 11) > 0.3
    mask[..., 0] = True
    weights = torch.randn(3, 11, 32)
    fused = attention(x, mask, memory)
    (fused * weights).sum().backward()
    fused_grads = _grads(attention)
    attention.zero_grad()
    separate = _separate_projections(attention, x, memory, mask)
    (separate * weights).sum().backward()
    separate_grads = _grads(attention)
    torch.testing.assert_close(fused, separate, rtol=1e-5, atol=1e-6)
    largest = max(float(g.abs().max()) for g in separate_grads.values())
    for name, grad in separate_grads.items():
        torch.testing.assert_close(fused_grads[name], grad, rtol=1e-5, atol=1e-6 * largest, msg=name)
    # the checkpoint layout stays fairseq's and Hugging Face's: separate q, k, v weights
    names = [f"{p}_proj.{w}" for p in ("q", "k", "v", "out") for w in ("weight", "bias")]
    assert list(attention.state_dict()) == names


def test_fused_qkv_projection_under_bf16_autocast():
    torch.manual_seed(0)
    attention = MultiheadAttention(32, 4).eval()
    x = torch.randn(2, 9, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fused = attention(x)
        separate = _separate_projections(attention, x)
    assert fused.dtype == separate.dtype == torch.bfloat16
    torch.testing.assert_close(fused.float(), separate.float(), rtol=2e-2, atol=2e-2)


NO_DROPOUT = dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, dropout_input=0.0, dropout_features=0.0)


@pytest.fixture
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _model(**overrides):
    torch.manual_seed(0)
    return wav2vec2_model(dataclasses.replace(tiny_config(), **NO_DROPOUT, **overrides))


def _recorded(encoder, monkeypatch):
    """Record each :meth:`layers_kept` draw and each layer that runs."""
    draws, ran = [], []
    real = encoder.layers_kept
    monkeypatch.setattr(encoder, "layers_kept", lambda *a: draws.append(real(*a)) or draws[-1])
    for i, layer in enumerate(encoder.layers):
        layer.register_forward_hook(lambda module, args, out, i=i: ran.append(i))
    return draws, ran


def test_layerdrop_is_drawn_once_per_pass_on_the_host(monkeypatch):
    model = _model(encoder_layers=6, encoder_layerdrop=0.5).train()
    draws, ran = _recorded(model.encoder, monkeypatch)
    torch.manual_seed(3)
    skipped_some = ran_some = False
    for _ in range(6):
        draws.clear(), ran.clear()
        out = model(torch.randn(2, 1200))
        assert len(draws) == 1 and draws[0].device.type == "cpu" and draws[0].shape == (6,)
        kept = draws[0].tolist()
        assert ran == [i for i, k in enumerate(kept) if k]
        for i, k in enumerate(kept):
            if not k:
                assert torch.equal(out.hidden_states[i + 1], out.hidden_states[i])
        skipped_some |= not all(kept)
        ran_some |= any(kept)
    assert skipped_some and ran_some
    draws.clear()
    model(torch.randn(2, 1200), num_layers=3)
    assert draws[0].shape == (3,)
    model.eval()
    draws.clear(), ran.clear()
    model(torch.randn(2, 1200))
    assert draws == [None] and ran == list(range(6))


def test_compiled_encoder_keeps_the_layerdrop_draw_in_one_graph(monkeypatch, fresh_dynamo):
    """Under ``torch.compile`` (fullgraph: no break) every layer is computed and ``torch.where``
    keeps its output or its input, as drawn; a dropped layer's gradients are zero."""
    model = _model(encoder_layers=4, encoder_layerdrop=0.5).train()
    encoder = model.encoder
    x = torch.randn(2, 20, 64)
    eager_layers = list(encoder.layers)
    counter = CompileCounterWithBackend("aot_eager")
    compile_encoder(model, backend=counter, fullgraph=True)
    torch.manual_seed(0)
    seen_dropped = seen_kept = False
    for _ in range(4):
        model.zero_grad(set_to_none=True)
        states = encoder(x)
        (states[-1] * torch.linspace(-1, 1, 64)).sum().backward()
        for i, layer in enumerate(eager_layers):
            with torch.no_grad():
                computed = layer(states[i], None, None)
            grads = [p.grad for p in layer.parameters()]
            if torch.equal(states[i + 1], states[i]):
                seen_dropped = True
                assert all(g is None or not g.any() for g in grads)
            else:
                seen_kept = True
                torch.testing.assert_close(states[i + 1], computed, rtol=1e-5, atol=1e-5)
    assert seen_dropped and seen_kept
    assert counter.frame_count == 1  # one graph, the draws inside it


def _run(model, waves, lengths=None):
    model.zero_grad(set_to_none=True)
    out = model(waves, lengths)
    weights = torch.randn(out.last_hidden_state.shape, generator=torch.Generator().manual_seed(7))
    (out.last_hidden_state * weights).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return [h.detach() for h in out.hidden_states], grads


def test_compiled_encoder_static_shapes_equal_eager_on_unpadded_batches(fresh_dynamo):
    eager = _model(encoder_layerdrop=0.0)
    compiled = copy.deepcopy(eager)
    counter = CompileCounterWithBackend("aot_eager")
    assert compile_encoder(compiled, backend=counter, fullgraph=True) == 1  # fullgraph: no break unpadded
    assert list(compiled.state_dict()) == list(eager.state_dict())
    for samples, seed in ((3000, 1), (3000, 2), (4000, 3)):
        waves = torch.randn(2, samples, generator=torch.Generator().manual_seed(seed))
        states, grads = _run(compiled, waves)
        want_states, want_grads = _run(eager, waves)
        for state, want in zip(states, want_states):
            torch.testing.assert_close(state, want, rtol=0, atol=1e-5 * float(want.abs().max()))
        floor = 1e-3 * max(float(g.abs().max()) for g in want_grads.values())
        assert grads.keys() == want_grads.keys()
        for name, want in want_grads.items():
            torch.testing.assert_close(grads[name], want, rtol=0, atol=1e-4 * max(float(want.abs().max()), floor))
    assert counter.frame_count == 2  # static shapes: one graph per batch shape, reused for the same shape
    with pytest.raises(ValueError, match="no TransformerEncoder in Linear"):
        compile_encoder(torch.nn.Linear(2, 2))


def test_espnet_pretraining_model_compile_choices(fresh_dynamo):
    import espnet_ext  # noqa: F401
    from espnet_ext.espnet.ssl_model import ESPnetWav2Vec2Model

    model = ESPnetWav2Vec2Model(preset="tiny", torch_compile="encoder")
    assert model.pretraining.backbone.encoder._compiled_call_impl is not None
    assert all(layer._compiled_call_impl is None for layer in model.pretraining.backbone.encoder.layers)
    layers = ESPnetWav2Vec2Model(preset="tiny", torch_compile="layers").pretraining.backbone.encoder.layers
    assert all(layer._compiled_call_impl is not None for layer in layers)
    with pytest.raises(ValueError, match="torch_compile: expected one of"):
        ESPnetWav2Vec2Model(preset="tiny", torch_compile="all")
