"""espnet_ext.core.frames: one length arithmetic for ints and tensors, receptive field, stride, layer parsing."""

import pytest
import torch

from espnet_ext.core.frames import (
    WAV2VEC2_CONV_LAYERS,
    conv_output_lengths,
    parse_conv_layers,
    receptive_field,
    total_stride,
)

WAV2VEC1_ENCODER = [(512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), (512, 4, 2)]


def _by_convolution(num: int, layers) -> int:
    """Frames an actual unpadded strided convolution stack gives (what the arithmetic must equal)."""
    if num == 0:
        return 0
    x = torch.zeros(1, 1, num)
    for _, kernel, stride in layers:
        if x.size(-1) < kernel:
            return 0
        x = torch.nn.functional.conv1d(x, torch.ones(1, 1, kernel), stride=stride)
    return x.size(-1)


@pytest.mark.parametrize("layers", [WAV2VEC2_CONV_LAYERS, WAV2VEC1_ENCODER, [(1, 3, 1)], [(1, 400, 320)]])
def test_lengths_equal_real_convolutions_for_ints_and_tensors(layers):
    nums = list(range(0, 1200, 7)) + [16000, 16001, 16319, 16320]
    expected = [_by_convolution(n, layers) for n in nums]
    assert [conv_output_lengths(n, layers) for n in nums] == expected
    assert conv_output_lengths(torch.tensor(nums), layers).tolist() == expected


def test_receptive_field_is_the_shortest_input_with_a_frame_and_stride_the_hop():
    for layers, field, hop in ((WAV2VEC2_CONV_LAYERS, 400, 320), (WAV2VEC1_ENCODER, 465, 160)):
        assert (receptive_field(layers), total_stride(layers)) == (field, hop)
        assert conv_output_lengths(field - 1, layers) == 0 and conv_output_lengths(field, layers) == 1
        assert conv_output_lengths(field + hop - 1, layers) == 1 and conv_output_lengths(field + hop, layers) == 2


def test_parse_conv_layers_reads_fairseqs_string_and_names_the_source_on_errors():
    assert parse_conv_layers("[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2") == list(WAV2VEC2_CONV_LAYERS)
    with pytest.raises(ValueError, match="my_option"):
        parse_conv_layers([[512, 0, 5]], "my_option")
