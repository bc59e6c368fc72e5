"""The CPU kernels equal the plain modules: the channels-last GEMM feature extractor (outputs at
every frame, padding included, and the gradients of the input and of every weight) and the
written-out attention with dropout (SDPA's math path with the project's dropout mask); the
kernel hook (nothing registered on import; enable, enabled, disable, the plain modules without
kernels). Every test here runs with the kernels registered (:func:`registered`). No timing here: see
``python -m benchmarks extractor``.
"""

import ast
import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import espnet_ext.wav2vec2
from espnet_ext.wav2vec2 import cpu_kernels
from espnet_ext.wav2vec2.cpu_kernels import extractor as cpu_extractor
from espnet_ext.wav2vec2.cpu_kernels.attention import attention_with_dropout
from espnet_ext.wav2vec2.cpu_kernels.dropout import scaled_mask_dropout
from espnet_ext.wav2vec2.model import wav2vec2_model
from espnet_ext.wav2vec2.modules import (
    KERNELS,
    ConvFeatureExtractor,
    ConvLayerBlock,
    Dropout,
    conv_feature_extractor,
    conv_output_lengths,
)
from espnet_ext.wav2vec2.presets import tiny_config
from espnet_ext.wav2vec2.transformer import MultiheadAttention

TOLERANCE = 1e-4  # relative to the largest magnitude of each compared tensor (see _assert_close)
TINY_LAYERS = [(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2
MODES = [("default", False), ("layer_norm", True), ("default", True), ("layer_norm", False)]
MODE_IDS = ["group", "layer-bias", "group-bias", "layer"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def registered():
    """The CPU kernels registered for the test (importing the package registers none), then the
    registry as it was."""
    with cpu_kernels.enabled():
        yield


def _randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Perturb every parameter (norm gains and biases too) so that equality is not trivial."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    return module


def _extractor(mode: str, conv_bias: bool, layers=TINY_LAYERS) -> ConvFeatureExtractor:
    torch.manual_seed(0)
    return _randomize(conv_feature_extractor(layers, mode, conv_bias))


def _batch(lengths, seed: int = 1, dirty=()):
    """Waveforms zero-padded after ``lengths`` (but the utterances in ``dirty``: random padding)."""
    lengths = torch.tensor(lengths)
    generator = torch.Generator().manual_seed(seed)
    waves = torch.randn(len(lengths), int(lengths.max()), generator=generator)
    keep = torch.arange(waves.size(1))[None] < lengths[:, None]
    keep[list(dirty)] = True
    return waves * keep, lengths


def _kernel(fast: bool):
    """A context that runs the extractor's CPU kernel (``fast``) or its plain path."""
    return (cpu_kernels.enabled if fast else cpu_kernels.disabled)("conv_feature_extractor")


def _run(extractor: ConvFeatureExtractor, fast: bool, waves, lengths, input_grad: bool):
    """Output ``(B, C, T)``, and the gradients of a loss on every output frame (padding too)."""
    extractor.zero_grad(set_to_none=True)
    waves = waves.clone().requires_grad_(input_grad)
    with _kernel(fast):
        out = extractor(waves, lengths)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    (out * weights).sum().backward()
    grads = {name: param.grad for name, param in extractor.named_parameters()}
    if input_grad:
        grads["waveforms"] = waves.grad
    return out.detach(), grads


def _assert_close(fast, plain, what: str, floor: float = 0.0) -> None:
    """``max |fast - plain| <= TOLERANCE * max(max |plain|, floor)``. ``floor``: for gradients, 1% of the
    largest one in the model (a gradient that is mathematically zero, e.g. a convolution's bias
    before a GroupNorm, is rounding noise in both paths)."""
    assert fast.shape == plain.shape, what
    fast, plain = fast.detach(), plain.detach()
    diff = float((fast - plain).abs().max())
    scale = float(plain.abs().max())
    assert diff <= TOLERANCE * max(scale, floor, 1e-12), f"{what}: max diff {diff:.3g} (scale {scale:.3g})"


def _gradient_floor(grads) -> float:
    return 0.01 * max(float(grad.abs().max()) for grad in grads.values())


def _assert_paths_agree(extractor, waves, lengths, input_grad: bool = False) -> None:
    plain_out, plain_grads = _run(extractor, False, waves, lengths, input_grad)
    fast_out, fast_grads = _run(extractor, True, waves, lengths, input_grad)
    _assert_close(fast_out, plain_out, "output")
    assert plain_grads.keys() == fast_grads.keys()
    floor = _gradient_floor(plain_grads)
    for name, grad in plain_grads.items():
        _assert_close(fast_grads[name], grad, f"gradient of {name}", floor)


@pytest.mark.parametrize("mode,conv_bias", MODES, ids=MODE_IDS)
@pytest.mark.parametrize(
    "lengths",
    [[4000], [4001, 4001], [3999, 2777, 1000], [4321, 400, 2500, 4321]],
    ids=["one", "equal-odd", "padded", "padded-unsorted"],
)
def test_extractor_kernel_equals_plain_path(mode, conv_bias, lengths):
    waves, lengths = _batch(lengths)
    _assert_paths_agree(_extractor(mode, conv_bias), waves, lengths)


@pytest.mark.parametrize("mode,conv_bias", MODES[:2], ids=MODE_IDS[:2])
def test_extractor_kernel_without_lengths_and_input_gradient(mode, conv_bias):
    waves, _ = _batch([3001, 3001])
    _assert_paths_agree(_extractor(mode, conv_bias), waves, None, input_grad=True)
    waves, lengths = _batch([3001, 1717])
    _assert_paths_agree(_extractor(mode, conv_bias), waves, lengths, input_grad=True)


@pytest.mark.parametrize("mode,conv_bias", MODES[:2], ids=MODE_IDS[:2])
@pytest.mark.parametrize("dirty", [(), (2, 4)], ids=["zero-padding", "random-padding"])
def test_trimmed_padded_utterances_equal_plain_path(monkeypatch, mode, conv_bias, dirty):
    """Padded utterances run on trimmed waveforms; frames past the trim repeat the last one exactly
    (gradients too), and utterances with non-zero padding are not trimmed."""
    monkeypatch.setattr(cpu_extractor, "TRIM_MIN_MACS", 0)
    extractor = _extractor(mode, conv_bias)
    waves, lengths = _batch([6000, 5800, 2100, 399, 0, 1300], dirty=dirty)
    groups = cpu_extractor.trimmed_groups(extractor, waves, lengths)
    assert groups is not None and sorted(i for members, _ in groups for i in members) == list(range(6))
    assert groups[0][1] == 6000 and set(dirty) <= set(groups[0][0]) and len(groups) >= 3
    _assert_paths_agree(extractor, waves, lengths)


@pytest.mark.parametrize("mode,conv_bias", MODES[:2], ids=MODE_IDS[:2])
@pytest.mark.parametrize("trim", [False, True], ids=["batch", "trimmed"])
def test_frozen_extractor_under_no_grad_equals_plain_path(monkeypatch, mode, conv_bias, trim):
    """Without gradients the kernel applies each GELU in place: same output."""
    if trim:
        monkeypatch.setattr(cpu_extractor, "TRIM_MIN_MACS", 0)
    extractor = _extractor(mode, conv_bias)
    waves, lengths = _batch([5000, 4321, 999])
    for args in ((waves, lengths), (waves[:1], None)):
        with torch.no_grad():
            with _kernel(False):
                plain = extractor(*args)
            _assert_close(extractor(*args), plain, "output")


def test_no_trimming_when_it_saves_little_or_the_waveform_needs_a_gradient(monkeypatch):
    extractor = _extractor("default", False)
    waves, lengths = _batch([6000, 3000])
    assert cpu_extractor.trimmed_groups(extractor, waves, lengths) is None  # tiny layers: below TRIM_MIN_MACS
    monkeypatch.setattr(cpu_extractor, "TRIM_MIN_MACS", 0)
    assert cpu_extractor.trimmed_groups(extractor, waves, lengths) is not None
    assert cpu_extractor.trimmed_groups(extractor, waves.requires_grad_(), lengths) is None
    assert cpu_extractor.trimmed_groups(extractor, *_batch([6000, 5900])) is None  # saves less than 10%


def test_other_block_configurations():
    """GroupNorm without affine parameters, GroupNorm on a later layer (the unfused norm), a kernel
    shorter than its stride, a wider first layer."""
    torch.manual_seed(0)
    blocks = nn.ModuleList(
        [
            ConvLayerBlock(nn.Conv1d(1, 8, 4, stride=2, bias=False), nn.GroupNorm(8, 8, affine=False)),
            ConvLayerBlock(nn.Conv1d(8, 8, 3, stride=2), nn.GroupNorm(8, 8)),
            ConvLayerBlock(nn.Conv1d(8, 6, 2, stride=3), None),
            ConvLayerBlock(nn.Conv1d(6, 6, 5, stride=2), nn.LayerNorm(6)),
        ]
    )
    extractor = _randomize(ConvFeatureExtractor(blocks))
    waves, lengths = _batch([901, 640, 250])
    _assert_paths_agree(extractor, waves, lengths, input_grad=True)
    layers = [(8, 30, 3)] + [(8, 3, 2)] * 2  # first window 30 values wide: strided views, not copied
    _assert_paths_agree(_extractor("default", False, layers), waves, lengths)


def test_utterances_shorter_than_the_receptive_field_get_finite_frames():
    extractor = _extractor("default", False)
    waves, lengths = _batch([2000, 399, 0])
    _assert_paths_agree(extractor, waves, lengths)
    out = extractor(waves, lengths)
    assert torch.isfinite(out).all()
    assert out.size(-1) == conv_output_lengths(2000, extractor.layer_specs)


def test_extractor_kernel_only_for_float32_cpu_outside_autocast():
    waves = torch.zeros(1, 800)
    assert cpu_extractor.applies(waves)
    assert not cpu_extractor.applies(waves.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not cpu_extractor.applies(waves)
    extractor = _extractor("default", False).double()
    waves, lengths = _batch([1500, 900])
    assert cpu_extractor.extractor_kernel(extractor, waves.double(), lengths) is None
    fast = extractor(waves.double(), lengths)  # float64 takes the plain path
    with _kernel(False):
        assert torch.equal(fast, extractor(waves.double(), lengths))


@pytest.mark.parametrize("mode", ["default", "layer_norm"])
def test_model_outputs_and_gradients_equal_with_and_without_the_extractor_kernel(mode):
    config = dataclasses.replace(
        tiny_config(), extractor_mode=mode, conv_bias=mode == "layer_norm", feature_grad_mult=0.1
    )
    torch.manual_seed(0)
    model = _randomize(wav2vec2_model(config)).eval()
    waves, lengths = _batch([4000, 3100, 1999])
    results = []
    for fast in (False, True):
        model.zero_grad(set_to_none=True)
        with _kernel(fast):
            out = model(waves, lengths)
        loss = sum(h.square().mean() for h in out.hidden_states) + out.feature_penalty
        loss = loss + out.unmasked_features.square().mean()
        loss.backward()
        results.append((out, {name: p.grad for name, p in model.named_parameters() if p.grad is not None}))
    (plain, plain_grads), (fast, fast_grads) = results
    for name in ("features", "unmasked_features", "feature_penalty"):
        _assert_close(getattr(fast, name), getattr(plain, name), name)
    for i, (a, b) in enumerate(zip(fast.hidden_states, plain.hidden_states)):
        _assert_close(a, b, f"hidden state {i}")
    assert fast_grads.keys() == plain_grads.keys()
    floor = _gradient_floor(plain_grads)
    for name, grad in plain_grads.items():
        _assert_close(fast_grads[name], grad, f"gradient of {name}", floor)


def _sdpa_probabilities(q, k, attend):
    """SDPA's attention weights (math path, no dropout): its output for values = the identity."""
    eye = torch.eye(k.size(-2)).expand(*k.shape[:-1], k.size(-2))
    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(q, k, eye, attn_mask=attend)


@pytest.mark.parametrize("head_dim", [16, 48, 64])
@pytest.mark.parametrize("masked", [False, True])
def test_attention_with_dropout_is_sdpas_math_path_with_the_project_dropout(head_dim, masked):
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 20, head_dim, generator=generator, requires_grad=True) for _ in range(3))
    attend = (torch.arange(20)[None] < torch.tensor([[20], [13]]))[:, None, None, :] if masked else None
    torch.manual_seed(7)
    ours = attention_with_dropout(q, k, v, attend, 0.1)
    torch.manual_seed(7)
    reference = torch.matmul(scaled_mask_dropout(_sdpa_probabilities(q, k, attend), 0.1), v)
    assert torch.equal(ours, reference)
    dropped = (ours - torch.matmul(_sdpa_probabilities(q, k, attend), v)).abs().max()
    assert dropped > 1e-3  # the dropout did drop something
    grad = torch.randn(ours.shape, generator=generator)
    for a, b in zip(torch.autograd.grad(ours, (q, k, v), grad), torch.autograd.grad(reference, (q, k, v), grad)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_attention_module_in_training_is_sdpa_with_the_project_dropout():
    torch.manual_seed(0)
    attention = MultiheadAttention(32, 4, dropout=0.2).train()
    x = torch.randn(2, 15, 32)
    attend = (torch.arange(15)[None] < torch.tensor([[15], [9]]))[:, None, None, :]
    torch.manual_seed(3)
    ours = attention(x, attend)
    q, k, v = (attention._heads(proj(x)) for proj in (attention.q_proj, attention.k_proj, attention.v_proj))
    torch.manual_seed(3)
    reference = torch.matmul(scaled_mask_dropout(_sdpa_probabilities(q, k, attend), 0.2), v)
    reference = attention.out_proj(reference.transpose(1, 2).flatten(2))
    assert torch.equal(ours, reference)
    assert math.isclose(attention.dropout, 0.2)
    with torch.no_grad():
        assert not torch.equal(attention.eval()(x, attend), ours)  # dropout in training only


# ---------------------------------------------------------------------------- the kernel hook
def test_importing_the_packages_registers_no_kernel():
    """In a new interpreter (this one's registry is the tests'): the model, the kernels themselves,
    the ESPnet layer and its tasks, and ``espnet_ext`` register nothing until asked."""
    modules = (
        "espnet_ext",
        "espnet_ext.wav2vec2",
        "espnet_ext.wav2vec2.model",
        "espnet_ext.wav2vec2.pretraining",
        "espnet_ext.wav2vec2.cpu_kernels",
        "espnet_ext.espnet.frontend",
        "espnet_ext.espnet.ssl_model",
        "espnet_ext.espnet.tasks",
    )
    code = (
        f"import importlib\nfor name in {modules!r}:\n    importlib.import_module(name)\n"
        "from espnet_ext.wav2vec2.modules import KERNELS\nprint(sorted(KERNELS))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_enabled_registers_every_cpu_kernel_and_restores_the_registry():
    assert KERNELS == cpu_kernels.CPU_KERNELS
    assert set(KERNELS) == {"conv_feature_extractor", "dropout", "attention"}
    with cpu_kernels.disabled():
        with cpu_kernels.enabled("dropout"):
            assert set(KERNELS) == {"dropout"}
            with cpu_kernels.enabled():
                assert KERNELS == cpu_kernels.CPU_KERNELS
            assert set(KERNELS) == {"dropout"}
        assert not KERNELS
        other = {"dropout": lambda module, x: None}
        KERNELS.update(other)
        with cpu_kernels.enabled():
            assert KERNELS == cpu_kernels.CPU_KERNELS
        assert KERNELS == other  # a kernel registered by someone else comes back
        del KERNELS["dropout"]
    assert KERNELS == cpu_kernels.CPU_KERNELS


def test_disable_enable_and_disabled_restore_the_registry():
    with cpu_kernels.disabled("dropout"):
        assert set(KERNELS) == {"conv_feature_extractor", "attention"}
        with cpu_kernels.disabled():
            assert not KERNELS
        assert set(KERNELS) == {"conv_feature_extractor", "attention"}
    assert KERNELS == cpu_kernels.CPU_KERNELS
    try:
        cpu_kernels.disable()
        assert not KERNELS
        cpu_kernels.enable("attention")
        assert set(KERNELS) == {"attention"}
    finally:
        cpu_kernels.enable()
    assert KERNELS == cpu_kernels.CPU_KERNELS
    with pytest.raises(ValueError, match="no_such_kernel"):
        cpu_kernels.enable("no_such_kernel")


def test_without_kernels_the_modules_run_as_written():
    """Dropout is nn.Dropout's (its draws), attention is SDPA, the extractor is the Conv1d stack."""
    x = torch.rand(64, 64) + 0.5
    with cpu_kernels.disabled():
        torch.manual_seed(4)
        plain = Dropout(0.3).train()(x)
        torch.manual_seed(4)
        assert torch.equal(plain, F.dropout(x, 0.3, training=True))
        torch.manual_seed(0)
        attention = MultiheadAttention(32, 4, dropout=0.2).train()
        q = torch.randn(2, 15, 32)
        torch.manual_seed(3)
        ours = attention(q)
        heads = [attention._heads(proj(q)) for proj in (attention.q_proj, attention.k_proj, attention.v_proj)]
        torch.manual_seed(3)
        reference = attention.out_proj(F.scaled_dot_product_attention(*heads, dropout_p=0.2).transpose(1, 2).flatten(2))
        assert torch.equal(ours, reference)
        extractor = _extractor("default", False)
        waves, lengths = _batch([3000, 1200])
        out = extractor(waves, lengths)
        x = waves.unsqueeze(1)
        frames = lengths
        for block in extractor.conv_layers:
            frames = conv_output_lengths(frames, [(0, block.conv.kernel_size[0], block.conv.stride[0])])
            x = block(x, frames)
        assert torch.equal(out, x)


def test_the_model_files_import_no_kernel_code():
    """Only the kernels themselves import cpu_kernels (the package's __init__ does not either)."""
    package = Path(espnet_ext.wav2vec2.__file__).parent
    for path in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            assert not any("cpu_kernels" in name for name in names), f"{path.name} imports the CPU kernels"
