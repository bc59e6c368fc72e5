"""The leaner training step, each piece against what it replaces: the fused q/k/v projection
against three separate ones (checkpoint keys unchanged), layerdrop drawn once per forward pass
(eagerly on the host, in the graph under ``torch.compile``), the whole encoder compiled with static
shapes on the unpadded path."""

import pytest
import torch
from torch.nn import functional as F

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
