"""ESPnet encoders ``w2v2_context`` and ``w2v2_light``, inside a real ESPnetASRModel, and their
frame counts for the stage-4 filter."""

import inspect

import pytest
import torch
from espnet2.asr.ctc import CTC
from espnet2.asr.encoder.abs_encoder import AbsEncoder
from espnet2.asr.espnet_model import ESPnetASRModel
from espnet2.asr.frontend.default import DefaultFrontend

import espnet_ext  # noqa: F401  (quiet ESPnet import)
from espnet_ext.espnet.encoders import DEFAULT_DOWNSAMPLE_RATE, LightCTCEncoder, W2V2ContextEncoder
from espnet_ext.espnet.lengths import frames_from_dict
from espnet_ext.wav2vec2.downsample import downsampled_length

FRONTEND_CONF = {"n_fft": 256, "hop_length": 128, "n_mels": 20}
TINY = dict(
    output_size=16,
    attention_heads=2,
    linear_units=24,
    num_encoder_blocks=1,
    num_decoder_blocks=1,
    pos_conv_kernel=8,
    pos_conv_groups=4,
)
# ESPnet's own deprecated torch.cuda.amp.autocast call in ESPnetASRModel.encode
pytestmark = pytest.mark.filterwarnings("ignore:.*torch.cuda.amp.autocast:FutureWarning")

VOCAB = ["<blank>", "<unk>", "a", "b", "c", "<sos/eos>"]


def context_encoder(rate, **kwargs):
    torch.manual_seed(0)
    return W2V2ContextEncoder(20, downsample_rate=rate, **{**TINY, **kwargs})


def asr_model(encoder):
    torch.manual_seed(0)
    return ESPnetASRModel(
        vocab_size=len(VOCAB),
        token_list=VOCAB,
        frontend=DefaultFrontend(**FRONTEND_CONF),
        specaug=None,
        normalize=None,
        preencoder=None,
        encoder=encoder,
        postencoder=None,
        decoder=None,
        ctc=CTC(len(VOCAB), encoder.output_size()),
        joint_network=None,
        ctc_weight=1.0,
        report_cer=False,
        report_wer=False,
    )


def test_classes_are_espnet_encoders():
    assert issubclass(W2V2ContextEncoder, AbsEncoder) and issubclass(LightCTCEncoder, AbsEncoder)
    default = inspect.signature(W2V2ContextEncoder).parameters["downsample_rate"].default
    assert default == DEFAULT_DOWNSAMPLE_RATE


@pytest.mark.parametrize("conv_ffn", [False, True])
def test_context_encoder_shapes_and_lengths(conv_ffn):
    encoder = context_encoder(0.7, conv_ffn=conv_ffn).eval()
    ilens = torch.tensor([30, 17, 1])
    out, olens, states = encoder(torch.randn(3, 30, 20), ilens)
    assert states is None
    assert out.shape == (3, downsampled_length(30, 0.7), encoder.output_size())
    assert olens.tolist() == [downsampled_length(n, 0.7) for n in ilens.tolist()]
    assert isinstance(encoder.input_layer, torch.nn.Linear)
    assert isinstance(W2V2ContextEncoder(16, **TINY).input_layer, torch.nn.Identity)
    with pytest.raises(ValueError, match="xs_pad"):
        encoder(torch.randn(3, 30, 19), ilens)


def test_asr_model_step_with_fewer_ctc_frames():
    gen = torch.Generator().manual_seed(0)
    speech = torch.randn(2, 4000, generator=gen)
    speech_lengths = torch.tensor([4000, 2600])
    text = torch.tensor([[2, 3, 4, 2], [3, 4, -1, -1]])
    text_lengths = torch.tensor([4, 2])
    model = asr_model(context_encoder(0.5, dropout_rate=0.1))
    loss, stats, _ = model(speech, speech_lengths, text, text_lengths)
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)

    model.eval()
    full = asr_model(context_encoder(1.0)).eval()
    with torch.no_grad():
        _, olens = model.encode(speech, speech_lengths)
        _, full_olens = full.encode(speech, speech_lengths)
    assert (olens < full_olens).all()
    assert olens.tolist() == [downsampled_length(n, 0.5) for n in full_olens.tolist()]


@pytest.mark.parametrize("rate", [0.5, 0.7, 1.0])
def test_registered_length_matches_real_olens(rate):
    config = {
        "frontend": "default",
        "frontend_conf": FRONTEND_CONF,
        "encoder": "w2v2_context",
        "encoder_conf": {**TINY, "downsample_rate": rate},
    }
    frames = frames_from_dict(config)
    model = asr_model(context_encoder(rate)).eval()
    speech_lengths = torch.tensor([3999, 3000, 1234, 640, 129])
    speech = torch.randn(len(speech_lengths), int(speech_lengths.max()))
    with torch.no_grad():
        _, olens = model.encode(speech, speech_lengths)
    assert olens.tolist() == [frames(int(n)) for n in speech_lengths]


def test_registered_length_default_rate_and_bad_rate():
    frames = frames_from_dict({"frontend_conf": FRONTEND_CONF, "encoder": "w2v2_context"})
    assert frames(16000) == downsampled_length(16000 // 128 + 1, DEFAULT_DOWNSAMPLE_RATE)
    bad = frames_from_dict({"encoder": "w2v2_context", "encoder_conf": {"downsample_rate": 2}})
    with pytest.raises(ValueError, match="encoder_conf: downsample_rate"):
        bad(16000)


def test_light_encoder():
    xs = torch.randn(2, 9, 12)
    ilens = torch.tensor([9, 4])
    plain = LightCTCEncoder(12).eval()
    out, olens, _ = plain(xs, ilens)
    assert plain.output_size() == 12 and torch.equal(olens, ilens)
    torch.testing.assert_close(out[0], xs[0])
    assert (out[1, 4:] == 0).all()
    projected = LightCTCEncoder(12, output_size=8, layer_norm=True, dropout_rate=0.1)
    out, olens, _ = projected(xs, ilens)
    assert out.shape == (2, 9, 8) and projected.output_size() == 8

    frames = frames_from_dict({"frontend_conf": FRONTEND_CONF, "encoder": "w2v2_light"})
    model = asr_model(LightCTCEncoder(20)).eval()
    speech_lengths = torch.tensor([2000, 1500])
    with torch.no_grad():
        _, olens = model.encode(torch.randn(2, 2000), speech_lengths)
    assert olens.tolist() == [frames(int(n)) for n in speech_lengths]
