"""The downsampling context network: length arithmetic, padding, downsampler rules, gradients."""

import math
from fractions import Fraction

import pytest
import torch

from espnet_ext.wav2vec2.downsample import (
    ContextOutput,
    LinearDownsampler,
    downsample_mask,
    downsample_targets,
    downsampled_length,
    downsampling_context_network,
    make_padding_mask,
    rate_fraction,
)

RATES = [0.5, 0.7, 1.0]


def tiny(rate=0.7, conv_ffn=False, layer_norm_first=True, dropout=0.0):
    torch.manual_seed(0)
    return downsampling_context_network(
        embed_dim=16,
        num_heads=2,
        ffn_dim=24,
        num_encoder_layers=1,
        num_decoder_layers=1,
        downsample_rate=rate,
        conv_ffn=conv_ffn,
        dropout=dropout,
        attention_dropout=dropout,
        layer_norm_first=layer_norm_first,
        pos_conv_kernel=4,
        pos_conv_groups=4,
    )


def padded_batch(lengths, channels=16, extra=0, fill=0.0, seed=0):
    """Random (B, max(lengths) + extra, C) input with ``fill`` at padding, and its padding mask."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    frames = int(lengths.max()) + extra
    x = torch.randn(len(lengths), frames, channels, generator=gen)
    mask = make_padding_mask(lengths, frames)
    return x.masked_fill(mask[..., None], fill), mask, lengths


@pytest.mark.parametrize("rate", RATES + [1 / 3, Fraction(2, 3), 0.25])
def test_downsampled_length_is_exact_ceil(rate):
    frac = Fraction(rate).limit_denominator(1000)
    for frames in range(0, 400):
        expected = math.ceil(Fraction(frames) * frac)
        assert downsampled_length(frames, rate) == expected
    lengths = torch.arange(400)
    expected = torch.tensor([downsampled_length(t, rate) for t in range(400)])
    assert torch.equal(LinearDownsampler(rate).output_lengths(lengths), expected)


def test_float_rate_is_read_as_the_intended_fraction():
    assert rate_fraction(0.7) == Fraction(7, 10)
    assert downsampled_length(10, 0.7) == 7  # float ceil(0.7 * 10) would give 8
    assert downsampled_length(100, 0.7) == 70


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.5, float("nan"), "0.7", True, None, 1e-6])
def test_bad_rate_raises_value_error(bad):
    with pytest.raises(ValueError, match="downsample_rate"):
        downsampled_length(10, bad)
    with pytest.raises(ValueError, match="downsample_rate"):
        tiny(rate=bad)


def test_bad_frame_count_raises_value_error():
    with pytest.raises(ValueError, match="num_frames"):
        downsampled_length(-1, 0.5)


@pytest.mark.parametrize("rate", RATES)
def test_output_lengths_match_forward(rate):
    lengths = list(range(0, 26))  # includes an empty utterance
    x, mask, lengths_t = padded_batch(lengths, extra=3)
    model = tiny(rate).eval()
    with torch.no_grad():
        out = model(x, mask)
    assert isinstance(out, ContextOutput)
    expected = torch.tensor([downsampled_length(t, rate) for t in lengths])
    assert torch.equal(out.lengths, expected)
    assert torch.equal(model.output_lengths(lengths_t), expected)
    assert out.output.shape == (len(lengths), downsampled_length(x.size(1), rate), 16)
    assert torch.equal(out.padding_mask, make_padding_mask(expected, out.output.size(1)))
    assert out.encoder_output.shape == x.shape
    assert torch.isfinite(out.output).all()
    assert (out.output[out.padding_mask] == 0).all()
    assert (out.encoder_output[mask] == 0).all()


@pytest.mark.parametrize("layer_norm_first", [True, False])
@pytest.mark.parametrize("conv_ffn", [False, True])
def test_padded_batch_equals_per_utterance(conv_ffn, layer_norm_first):
    """Garbage in the padding changes nothing: padding never leaks into valid frames."""
    lengths = [13, 5, 9, 1]
    x, mask, lengths_t = padded_batch(lengths, extra=2, fill=1e3)
    model = tiny(0.7, conv_ffn, layer_norm_first).eval()
    with torch.no_grad():
        batch = model(x, mask)
        for i, length in enumerate(lengths):
            alone = model(x[i : i + 1, :length])
            out_len = int(batch.lengths[i])
            assert alone.output.size(1) == out_len
            torch.testing.assert_close(batch.output[i, :out_len], alone.output[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(batch.encoder_output[i, :length], alone.encoder_output[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("conv_ffn", [False, True])
def test_gradient_flows_and_padding_gets_none(conv_ffn):
    x, mask, _ = padded_batch([7, 4], extra=1)
    x.requires_grad_(True)
    model = tiny(0.7, conv_ffn, dropout=0.1).train()
    out = model(x, mask)
    (out.output**2).sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert (x.grad[~mask].abs().sum(-1) > 0).all()
    assert (x.grad[mask] == 0).all()


def test_rate_one_is_identity_and_half_rate_averages_pairs():
    x, mask, lengths = padded_batch([6, 3])
    y, out_lengths = LinearDownsampler(1.0)(x, lengths)
    assert torch.equal(out_lengths, lengths)
    torch.testing.assert_close(y, x.masked_fill(mask[..., None], 0.0))

    y, out_lengths = LinearDownsampler(0.5)(x, lengths)
    assert out_lengths.tolist() == [3, 2]
    torch.testing.assert_close(y[0], (x[0, 0::2] + x[0, 1::2]) / 2)
    # length 3 -> 2 frames, centres at s = 0.25 and 1.75
    torch.testing.assert_close(y[1, 0], 0.75 * x[1, 0] + 0.25 * x[1, 1])
    torch.testing.assert_close(y[1, 1], 0.25 * x[1, 1] + 0.75 * x[1, 2])


@pytest.mark.parametrize("rate", RATES)
def test_downsample_mask_and_targets_follow_nearest_source_frame(rate):
    lengths_list = [0, 1, 2, 7, 10, 17]
    gen = torch.Generator().manual_seed(1)
    frames = 19
    lengths = torch.tensor(lengths_list)
    valid = ~make_padding_mask(lengths, frames)
    mask = (torch.rand(len(lengths_list), frames, generator=gen) < 0.5) & valid
    targets = torch.randn(len(lengths_list), frames, 3, generator=gen)
    out_mask = downsample_mask(mask, lengths, rate)
    out_targets = downsample_targets(targets, lengths, rate)
    out_frames = downsampled_length(frames, rate)
    assert out_mask.shape == (len(lengths_list), out_frames)
    assert out_targets.shape == (len(lengths_list), out_frames, 3)
    for b, length in enumerate(lengths_list):
        out_len = downsampled_length(length, rate)
        assert not out_mask[b, out_len:].any()
        assert (out_targets[b, out_len:] == 0).all()
        for t in range(out_len):
            source = (2 * t + 1) * length // (2 * out_len)  # frame containing the output centre
            assert 0 <= source < length
            assert bool(out_mask[b, t]) == bool(mask[b, source])
            assert torch.equal(out_targets[b, t], targets[b, source])
    if rate == 1.0:
        assert torch.equal(out_mask, mask)


def test_nearest_source_is_the_larger_interpolation_weight():
    """Interpolating a one-hot 'position' signal puts the most weight on the nearest frame."""
    lengths = torch.tensor([10, 7, 3])
    frames = 10
    eye = torch.eye(frames).expand(3, frames, frames)
    down = LinearDownsampler(0.7)
    weights, _ = down(eye, lengths)
    index, valid = down.source_index(lengths, frames)
    picked = weights.gather(2, index[..., None])[..., 0]
    assert (picked[valid] >= 0.5).all()


def test_module_shapes_are_checked():
    model = tiny()
    with pytest.raises(ValueError, match="padding_mask"):
        model(torch.zeros(2, 5, 16), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="x: expected"):
        model(torch.zeros(5, 16))
    with pytest.raises(ValueError, match="kernel_size"):
        downsampling_context_network(embed_dim=16, num_heads=2, conv_ffn=True, conv_ffn_kernel=4)
    with pytest.raises(ValueError, match="num_heads"):
        downsampling_context_network(embed_dim=16, num_heads=3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    x, mask, _ = padded_batch([11, 6, 3], extra=1)
    model = tiny(0.7, conv_ffn=True).eval()
    with torch.no_grad():
        cpu = model(x, mask)
        gpu = model.cuda()(x.cuda(), mask.cuda())
    assert torch.equal(gpu.lengths.cpu(), cpu.lengths)
    torch.testing.assert_close(gpu.output.cpu(), cpu.output, atol=1e-2, rtol=1e-2)  # TF32 convolutions
