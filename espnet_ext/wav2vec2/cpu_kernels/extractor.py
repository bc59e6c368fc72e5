"""The CPU kernel of :class:`~espnet_ext.wav2vec2.modules.ConvFeatureExtractor`.

On CPU the extractor dominates a wav2vec 2.0 step and ``Conv1d`` is slow there (oneDNN runs
the one-channel first layer and every strided input gradient poorly). For float32 CPU input
outside autocast, :func:`extractor_kernel` computes the plain extractor's function (every
frame, padding included, and every gradient, up to float32 summation order) with activations
channels-last ``(B, T, C)``: each convolution is a :class:`~.gemm_conv.StridedConv` with the
previous layer's GELU fused in, the first layer's convolution and GroupNorm are one
:class:`~.channel_norm.ConvChannelNorm`, and zero-padded utterances run on trimmed waveforms
when that saves enough work (:func:`trimmed_groups`). ``python -m benchmarks extractor``
times it against ``transformers``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from espnet_ext.wav2vec2.cpu_kernels.channel_norm import ChannelNorm, ConvChannelNorm
from espnet_ext.wav2vec2.cpu_kernels.gemm_conv import StridedConv, narrow
from espnet_ext.wav2vec2.modules import ConvFeatureExtractor, ConvLayerBlock, conv_output_lengths, receptive_field

#: Padded utterances run on trimmed waveforms only when each extra run saves at least this
#: many forward multiply-adds (see :func:`trimmed_groups`).
TRIM_MIN_MACS = 2e8


def applies(x: Tensor) -> bool:
    """Whether the kernel runs for ``x`` (float32 on CPU, no autocast)."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")


def extractor_kernel(extractor: ConvFeatureExtractor, waveforms: Tensor, lengths: Tensor | None) -> Tensor | None:
    """``extractor(waveforms, lengths)`` as a transposed view of a ``(B, T, C)`` tensor, or None
    where the kernel does not apply (then the plain path runs)."""
    if not applies(waveforms):
        return None
    groups = trimmed_groups(extractor, waveforms, lengths)
    if groups is None:
        return run_channels_last(extractor, waveforms, lengths).transpose(1, 2)
    assert lengths is not None
    frames = int(conv_output_lengths(waveforms.size(1), extractor.layer_specs))
    pieces: list[Tensor | None] = [None] * waveforms.size(0)
    for indices, samples in groups:
        rows = torch.tensor(indices, device=waveforms.device)
        out = run_channels_last(extractor, waveforms[rows, :samples], lengths[rows])
        for row, index in zip(out, indices):  # frames past the trim all equal the last one
            pieces[index] = torch.cat([row, row[-1:].expand(frames - row.size(0), -1)])
    return torch.stack(pieces).transpose(1, 2)  # type: ignore[arg-type]


def block_channels_last(block: ConvLayerBlock, x: Tensor, counts: list[int], gelu_input: bool, pitch: int) -> Tensor:
    """One :class:`~espnet_ext.wav2vec2.modules.ConvLayerBlock`, with the GELU moved one layer on.

    Args:
        x: the waveform ``(B, L, 1)`` (``gelu_input=False``), or the previous layer's output
            before its GELU, which is applied here (fused with this convolution), pitched:
            ``(B, stride * pitch, C_in)``, each utterance's frames first, then junk rows.
        counts: valid output frames per utterance (host ints).
        pitch: output rows per utterance (at least the output's frames).
    Returns:
        ``(B, pitch, C)``: this layer's output before its GELU, pitched.
    """
    weight, bias, stride = block.conv.weight, block.conv.bias, block.conv.stride[0]
    if isinstance(block.norm, nn.GroupNorm) and not gelu_input and narrow(x, weight):
        return ConvChannelNorm.apply(
            x, weight, bias, stride, pitch, counts, block.norm.weight, block.norm.bias, block.norm.eps
        )
    x = StridedConv.apply(x, weight, bias, stride, gelu_input, pitch)
    if isinstance(block.norm, nn.LayerNorm):
        return block.norm(x)
    if isinstance(block.norm, nn.GroupNorm):
        return ChannelNorm.apply(x, counts, block.norm.weight, block.norm.bias, block.norm.eps)
    return x


def run_channels_last(extractor: ConvFeatureExtractor, waveforms: Tensor, lengths: Tensor | None) -> Tensor:
    """``(B, L)`` -> ``(B, T, C)`` through every block's kernel, then the last GELU.

    Activations are pitched: layer ``k``'s are ``(B, P_k, C)`` with ``P_{k-1} = stride_k * P_k``
    and ``P_k`` at least its frames, so that each convolution is one GEMM over the batch
    (see :func:`~.gemm_conv._pitched_views`); the rows past an utterance's frames are dropped at the end.
    """
    counts = [waveforms.size(1)] * waveforms.size(0) if lengths is None else lengths.tolist()
    specs = extractor.layer_specs
    frames, after = [], [1] * len(specs)
    for spec in specs:
        frames.append(conv_output_lengths(frames[-1] if frames else waveforms.size(1), [spec]))
    for i in range(len(specs) - 2, -1, -1):
        after[i] = after[i + 1] * specs[i + 1][2]
    jump = after[0] * specs[0][2]
    last_pitch = max([-(-n // step) for n, step in zip(frames, after)] + [-(-waveforms.size(1) // jump), 1])
    x = waveforms.unsqueeze(2)
    if not narrow(x, extractor.conv_layers[0].conv.weight):  # the first convolution reads it pitched too
        x = F.pad(x, (0, 0, 0, last_pitch * jump - waveforms.size(1)))
    in_place = not torch.is_grad_enabled()  # a frozen extractor: the activations are ours to overwrite
    for i, (block, spec) in enumerate(zip(extractor.conv_layers, specs)):
        counts = [conv_output_lengths(n, [spec]) for n in counts]
        if i > 0 and in_place:
            x = torch.ops.aten.gelu_(x)
        x = block_channels_last(block, x, counts, gelu_input=i > 0 and not in_place, pitch=last_pitch * after[i])
    return torch.ops.aten.gelu_(x[:, : frames[-1]]) if in_place else F.gelu(x[:, : frames[-1]])


def trimmed_groups(
    extractor: ConvFeatureExtractor, waveforms: Tensor, lengths: Tensor | None
) -> list[tuple[list[int], int]] | None:
    """Groups of utterances and the samples to run each on, or None to run the batch as it is.

    An output frame whose receptive field lies wholly in an utterance's (zero) padding is a
    function of zeros and of the utterance's GroupNorm statistics only, the same for every
    such frame. So an utterance zero-padded after ``n`` samples needs only the frames up to
    the first such one (``ceil(n / J)``, ``J`` the total stride), i.e. ``ceil(n / J) * J + R``
    samples (``R`` the receptive field); the later frames repeat it (and their gradients
    add up on it, exactly). Utterances whose needs are within 10% are run together.

    Not used when the waveform needs a gradient (its padding would get a different one),
    when it would save less than 10% of the samples, or less than
    :data:`TRIM_MIN_MACS` multiply-adds per extra run (small models: the extra, smaller
    runs cost more than they save).
    """
    if lengths is None or (waveforms.requires_grad and torch.is_grad_enabled()):
        return None
    batch, samples = waveforms.shape
    jump, macs_per_sample, in_channels = 1, 0.0, 1
    for channels, kernel, stride in extractor.layer_specs:
        jump *= stride
        macs_per_sample += in_channels * kernel * channels / jump
        in_channels = channels
    field = receptive_field(extractor.layer_specs)
    needed = [min(samples, -(-n // jump) * jump + field) for n in lengths.tolist()]
    if sum(needed) > 0.9 * batch * samples or (batch * samples - sum(needed)) * macs_per_sample < TRIM_MIN_MACS:
        return None  # not worth checking the padding
    padding = torch.arange(samples, device=waveforms.device) >= lengths.unsqueeze(1)
    dirty = ((waveforms != 0) & padding).any(1).tolist()
    needed = [samples if bad else n for n, bad in zip(needed, dirty)]
    groups: list[tuple[list[int], int]] = []
    for index in sorted(range(batch), key=lambda b: -needed[b]):
        if groups and needed[index] >= 0.9 * groups[-1][1]:
            groups[-1][0].append(index)
        else:
            groups.append(([index], needed[index]))
    saved = batch * samples - sum(len(members) * length for members, length in groups)
    if saved < 0.1 * batch * samples or saved * macs_per_sample < TRIM_MIN_MACS * (len(groups) - 1):
        return None
    return groups
