"""``compile_layers``: compiled Transformer layers compute what the eager ones do, one graph
serves every layer and every batch shape, checkpoints keep their keys, and the ESPnet models'
``torch_compile`` option turns it on. No timing here: ``python -m benchmarks pretrain --compile``.
"""

import copy
import dataclasses

import pytest
import torch
from torch._dynamo.testing import CompileCounter

from espnet_ext.wav2vec2.compile import compile_layers
from espnet_ext.wav2vec2.model import wav2vec2_model
from espnet_ext.wav2vec2.presets import tiny_config
from espnet_ext.wav2vec2.transformer import EncoderLayer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def _model(**overrides):
    torch.manual_seed(0)
    return wav2vec2_model(dataclasses.replace(tiny_config(), **overrides))


def _batch(lengths, seed):
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    waves = torch.randn(len(lengths), int(lengths.max()), generator=generator)
    return waves * (torch.arange(waves.size(1)) < lengths[:, None]), lengths


def _run(model, waves, lengths):
    """Every hidden state, and the gradient of every parameter for a loss on the last one."""
    model.zero_grad(set_to_none=True)
    out = model(waves, lengths)
    valid = (torch.arange(out.hidden_states[-1].size(1)) < out.lengths[:, None]).unsqueeze(-1)
    weights = torch.randn(out.hidden_states[-1].shape, generator=torch.Generator().manual_seed(7))
    # a random projection: the gradient of a sum of squares of a LayerNorm output cancels to ~0
    (out.hidden_states[-1] * valid * weights).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return [h.detach() for h in out.hidden_states], out.lengths, grads


def _assert_close(actual, expected, floor=0.0):
    """Within 1e-4 of ``expected``'s largest magnitude (or of ``floor``, when larger)."""
    scale = max(float(expected.abs().max()), floor) or 1.0
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-4 * scale)


def test_compiled_layers_equal_eager_at_two_shapes_and_keep_the_state_dict_keys():
    eager = _model().eval()
    compiled = copy.deepcopy(eager)
    assert compile_layers(compiled, fullgraph=True) == eager.num_layers  # fullgraph: no graph break
    assert list(compiled.state_dict()) == list(eager.state_dict())
    for lengths, seed in (([4000, 3100], 1), ([5200, 2600, 4400], 2)):
        waves, lens = _batch(lengths, seed)
        states, out_lengths, grads = _run(compiled, waves, lens)
        want_states, want_lengths, want_grads = _run(eager, waves, lens)
        assert torch.equal(out_lengths, want_lengths)
        valid = (torch.arange(states[0].size(1)) < out_lengths[:, None]).unsqueeze(-1)
        for state, want in zip(states, want_states):
            _assert_close(state * valid, want * valid)
        layer_params = {name for name, _ in eager.named_parameters() if name.startswith("encoder.layers.")}
        assert grads.keys() == want_grads.keys() and layer_params and layer_params <= grads.keys()
        # k_proj.bias's gradient is 0 in exact arithmetic (softmax ignores a shift of every score):
        # its rounding noise is compared with the largest gradient's scale
        floor = 1e-3 * max(float(g.abs().max()) for g in want_grads.values())
        for name in want_grads:
            _assert_close(grads[name], want_grads[name], floor)


def test_one_graph_for_all_layers_and_batch_shapes_in_training_with_dropout():
    # dropout on: inside the graph the CPU-only dropout and attention paths must step aside
    model = _model(dropout=0.1, attention_dropout=0.1, activation_dropout=0.1).train()
    counter = CompileCounter()
    compile_layers(model, backend=counter, fullgraph=True)
    for lengths, seed in (([4000, 3100], 1), ([5200, 2600, 4400], 2), ([3000, 2990, 1700, 2000], 3)):
        waves, lens = _batch(lengths, seed)
        out = model(waves, lens)
        out.hidden_states[-1].sum().backward()
        assert torch.isfinite(out.hidden_states[-1]).all()
    assert model.num_layers > 1
    assert counter.frame_count == 1, f"{counter.frame_count} graphs compiled for {model.num_layers} layers, 3 shapes"


def test_compile_layers_refuses_a_model_without_transformer_layers():
    with pytest.raises(ValueError, match="no EncoderLayer in Linear"):
        compile_layers(torch.nn.Linear(2, 2))


def _compiled_layers(module):
    layers = [m for m in module.modules() if isinstance(m, EncoderLayer)]
    assert layers
    return [layer._compiled_call_impl is not None for layer in layers]  # set by nn.Module.compile


@pytest.mark.parametrize("flag", [False, True])
def test_espnet_frontend_and_pretraining_model_option(flag):
    import espnet_ext  # noqa: F401  (registers the ESPnet classes)
    from espnet_ext.espnet.frontend import Wav2Vec2Frontend
    from espnet_ext.espnet.ssl_model import ESPnetWav2Vec2Model

    assert set(_compiled_layers(Wav2Vec2Frontend(preset="tiny", torch_compile=flag))) == {flag}
    assert set(_compiled_layers(ESPnetWav2Vec2Model(preset="tiny", torch_compile=flag))) == {flag}
