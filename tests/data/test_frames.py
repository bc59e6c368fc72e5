"""Tests of espnet_ext.data.frames against ESPnet's real modules (the only data test importing ESPnet)."""

import importlib
import inspect
import os

import pytest
import torch
import yaml

from espnet_ext.core.frames import WAV2VEC2_CONV_LAYERS, conv_output_lengths
from espnet_ext.data import frames as fr

os.environ.setdefault("NLTK_DATA", os.path.join(os.path.expanduser("~"), ".cache", "nltk_data"))

LENGTHS = [1, 399, 400, 401, 719, 720, 721, 1599, 1600, 1601, 4000, 4321, 16000, 16001, 23456]
FRAME_LENGTHS = list(range(1, 60)) + [97, 98, 99, 100, 101, 255, 256, 257, 1000]


def write_config(tmp_path, config):
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "conf",
    [{}, {"n_fft": 400, "hop_length": 160}, {"n_fft": 401, "hop_length": 160}, {"center": False}],
    ids=["defaults", "400-160", "odd-n_fft", "no-center"],
)
def test_default_frontend_matches_espnet(conf):
    from espnet2.asr.frontend.default import DefaultFrontend

    frontend = DefaultFrontend(n_mels=8, **conf).eval()
    lengths = [n for n in LENGTHS if n > conf.get("n_fft", 512)]  # STFT needs a window's worth
    wav = torch.zeros(len(lengths), max(lengths))
    with torch.no_grad():
        _, olens = frontend(wav, torch.tensor(lengths))
    ours = [fr.FRONTEND_LENGTHS["default"](n, conf) for n in lengths]
    assert ours == olens.tolist()


SUBSAMPLING = {
    "conv2d": "Conv2dSubsampling",
    "conv2d1": "Conv2dSubsampling1",
    "conv2d2": "Conv2dSubsampling2",
    "conv2d6": "Conv2dSubsampling6",
    "conv2d8": "Conv2dSubsampling8",
    "conv1d1": "Conv1dSubsampling1",
    "conv1d2": "Conv1dSubsampling2",
    "conv1d3": "Conv1dSubsampling3",
}


@pytest.mark.parametrize("input_layer", sorted(SUBSAMPLING))
def test_input_layer_matches_espnet_subsampling(input_layer):
    """Both the output tensor's length and the mask's (what ESPnet reports) match the formula."""
    from espnet.nets.pytorch_backend.transformer import subsampling

    module = getattr(subsampling, SUBSAMPLING[input_layer])(80, 4, 0.0).eval()
    for t in FRAME_LENGTHS:
        expected = fr.input_layer_length(t, input_layer)
        if expected <= 0:
            continue  # ESPnet raises or returns empty tensors: too short either way
        with torch.no_grad():
            x, mask = module(torch.zeros(1, t, 80), torch.ones(1, 1, t, dtype=torch.bool))
        assert (x.size(1), int(mask.sum())) == (expected, expected), (input_layer, t)


@pytest.mark.parametrize("input_layer", [None, "linear", "conv2d", "conv2d2", "conv2d6", "conv2d8", "default"])
def test_config_matches_espnet_frontend_plus_conformer(tmp_path, input_layer):
    """End to end: DefaultFrontend -> ConformerEncoder lengths equal frames_from_config's for an
    utterance alone in its batch; padded in a batch, ESPnet's mask slicing never gives fewer."""
    from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
    from espnet2.asr.frontend.default import DefaultFrontend

    encoder_conf = dict(output_size=8, attention_heads=2, linear_units=8, num_blocks=1)
    if input_layer != "default":  # "default": the key is absent, ConformerEncoder's default (conv2d) applies
        encoder_conf["input_layer"] = input_layer
    n_mels = 8 if input_layer is None else 80  # no input layer: features must already be output_size wide
    frontend_conf = dict(n_fft=400, hop_length=160, n_mels=n_mels)
    fn = fr.frames_from_config(
        write_config(
            tmp_path,
            dict(frontend="default", frontend_conf=frontend_conf, encoder="conformer", encoder_conf=encoder_conf),
        )
    )
    frontend = DefaultFrontend(**frontend_conf).eval()
    encoder = ConformerEncoder(input_size=n_mels, **encoder_conf).eval()

    def encode(lengths):
        with torch.no_grad():
            feats, flens = frontend(torch.zeros(len(lengths), max(lengths)), torch.tensor(lengths))
            return encoder(feats, flens)[1].tolist()

    lengths = [n for n in LENGTHS if n >= 4000]
    assert [fn(n) for n in lengths] == [encode([n])[0] for n in lengths]
    padded = encode(lengths)
    assert all(p >= fn(n) for p, n in zip(padded, lengths)) and padded[-1] == fn(lengths[-1])


ENCODER_CLASSES = {
    "conformer": "espnet2.asr.encoder.conformer_encoder:ConformerEncoder",
    "transformer": "espnet2.asr.encoder.transformer_encoder:TransformerEncoder",
    "branchformer": "espnet2.asr.encoder.branchformer_encoder:BranchformerEncoder",
    "e_branchformer": "espnet2.asr.encoder.e_branchformer_encoder:EBranchformerEncoder",
    "e_branchformer_ctc": "espnet2.asr.encoder.e_branchformer_ctc_encoder:EBranchformerCTCEncoder",
    "contextual_block_transformer": "espnet2.asr.encoder.contextual_block_transformer_encoder:ContextualBlockTransformerEncoder",  # noqa: E501
    "contextual_block_conformer": "espnet2.asr.encoder.contextual_block_conformer_encoder:ContextualBlockConformerEncoder",  # noqa: E501
    "transformer_multispkr": "espnet2.asr.encoder.transformer_encoder_multispkr:TransformerEncoder",
    "multiconv_conformer": "espnet2.asr.encoder.multiconvformer_encoder:MultiConvConformerEncoder",
    "linear": "espnet2.asr.encoder.linear_encoder:LinearEncoder",
}


@pytest.mark.parametrize("name", sorted(ENCODER_CLASSES))
def test_default_input_layer_table_matches_espnet_signatures(name):
    module_name, cls_name = ENCODER_CLASSES[name].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    assert fr.DEFAULT_INPUT_LAYER[name] == inspect.signature(cls).parameters["input_layer"].default


def torch_conv_stack(layers):
    convs, channels = [], 1
    for _, kernel, stride in layers:
        convs.append(torch.nn.Conv1d(channels, 2, kernel, stride))
        channels = 2
    return torch.nn.Sequential(*convs).eval()


@pytest.mark.parametrize(
    "conv_layers",
    [
        None,
        "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2",
        [[64, 10, 5], [64, 8, 4], [64, 4, 2]],
        "[(32, 10, 5), (32, 3, 2)] + [(32, 2, 2)]",
    ],
    ids=["default", "fairseq-string", "list", "string-short"],
)
def test_wav2vec2_conv_arithmetic_matches_torch_conv1d(tmp_path, conv_layers):
    frontend_conf = {} if conv_layers is None else {"conv_layers": conv_layers}
    fn = fr.frames_from_config(
        write_config(
            tmp_path,
            dict(
                frontend="wav2vec2",
                frontend_conf=frontend_conf,
                encoder="transformer",
                encoder_conf=dict(input_layer=None),
            ),
        )
    )
    layers = fr.WAV2VEC2_CONV_LAYERS if conv_layers is None else fr.parse_conv_layers(conv_layers)
    stack = torch_conv_stack(layers)
    for n in LENGTHS:
        expected = fn(n)
        if expected == 0:
            with pytest.raises(RuntimeError):
                stack(torch.zeros(1, 1, n))
            continue
        with torch.no_grad():
            assert stack(torch.zeros(1, 1, n)).size(-1) == expected, n


def test_wav2vec_cnn_frontend_matches_espnet():
    from espnet2.asr.frontend.cnn import CNNFrontend

    shapes = [(4, 10, 5), (4, 3, 2), (4, 2, 2)]
    frontend = CNNFrontend("group_norm", "standard", False, shapes=shapes).eval()
    with torch.no_grad():
        _, olens = frontend(torch.zeros(len(LENGTHS), max(LENGTHS)), torch.tensor(LENGTHS))
    conf = {"shapes": [list(s) for s in shapes]}
    assert [fr.FRONTEND_LENGTHS["wav2vec_cnn"](n, conf) for n in LENGTHS] == olens.tolist()


def test_ssl_frontends_equal_the_wav2vec2_stack():
    """The 400-window, 320-hop rule is exactly fairseq's default conv stack."""
    for n in list(range(0, 2000)) + LENGTHS:
        expected = conv_output_lengths(n, WAV2VEC2_CONV_LAYERS)
        for name in ("s3prl", "huggingface", "hf", "espnet_ssl", "wav2vec2"):
            assert fr.FRONTEND_LENGTHS[name](n, {}) == expected


def test_length_adaptor_matches_espnet(tmp_path):
    from espnet2.asr.postencoder.length_adaptor_postencoder import LengthAdaptorPostEncoder

    post = LengthAdaptorPostEncoder(input_size=4, length_adaptor_n_layers=2).eval()
    fn = fr.frames_from_dict(
        dict(
            frontend="s3prl",
            encoder="transformer",
            encoder_conf={"input_layer": "linear"},
            postencoder="length_adaptor",
            postencoder_conf={"length_adaptor_n_layers": 2},
        )
    )
    lengths = [n for n in LENGTHS if n >= 4000]
    frames = [fr.FRONTEND_LENGTHS["s3prl"](n, {}) for n in lengths]
    with torch.no_grad():
        _, olens = post(torch.zeros(len(frames), max(frames), 4), torch.tensor(frames))
    assert [fn(n) for n in lengths] == olens.tolist()


def test_given_encoder_and_frontend_lengths_replace_the_builtin_arithmetic():
    def halve(t, conf):
        return t // conf.get("rate", 2)

    config = dict(frontend="wav2vec2", encoder="test_downsampler", encoder_conf={"input_layer": "conv2d", "rate": 3})
    assert fr.frames_from_dict(config)(16000) == ((49 - 1) // 2 - 1) // 2  # without it: the input_layer's
    fn = fr.frames_from_dict(config, encoder_lengths={"test_downsampler": halve})
    assert fn(16000) == 49 // 3
    fn = fr.frames_from_dict(
        dict(config, frontend="every_100"),
        frontend_lengths={"every_100": lambda n, c: n // 100},
        encoder_lengths={"test_downsampler": halve},
    )
    assert fn(16000) == 160 // 3


def test_too_short_gives_zero_frames():
    fn = fr.frames_from_dict(dict(frontend="wav2vec2", encoder="conformer"))  # conv2d after 20 ms frames
    assert fn(0) == 0 and fn(399) == 0 and fn(5 * 320 + 400) == 0  # 6 frames -> conv2d -> 0
    assert fn(6 * 320 + 400) == 1


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(frontend="whisper", encoder="conformer"), "frontend 'whisper' unknown"),
        (dict(frontend="default", encoder="rnn"), "encoder 'rnn' has no input_layer"),
        (dict(frontend="default"), "encoder 'rnn' has no input_layer"),
        (dict(encoder="transformer", encoder_conf={"input_layer": "conv3d"}), "input_layer 'conv3d' unknown"),
        (
            dict(frontend="wav2vec2", frontend_conf={"conv_layers": [[512, 10]]}, encoder="conformer"),
            "frontend_conf.conv_layers: layer [512, 10]; expected [dim, kernel, stride]",
        ),
        (
            dict(frontend="wav2vec2", frontend_conf={"conv_layers": "[(512, 10, 5)] - 1"}, encoder="conformer"),
            "unsupported expression",
        ),
        (
            dict(frontend="wav2vec2", frontend_conf={"conv_layers": "__import__('os')"}, encoder="conformer"),
            "unsupported expression",
        ),
        (
            dict(frontend="wav2vec2", frontend_conf={"conv_layers": "[(1, 2, 3)] * 10000000"}, encoder="conformer"),
            "unsupported expression",
        ),
        (dict(preencoder="sinc", encoder="conformer"), "preencoder 'sinc'"),
        (dict(encoder="conformer", postencoder="hugging_face_transformers"), "postencoder 'hugging_face_transformers'"),
    ],
)
def test_config_errors_name_the_file(tmp_path, config, message):
    path = write_config(tmp_path, config)
    with pytest.raises(ValueError) as err:
        fr.frames_from_config(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_not_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("frontend: [unclosed\n")
    with pytest.raises(ValueError, match=f"{path}: not valid YAML"):
        fr.frames_from_config(path)
