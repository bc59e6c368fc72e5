"""espnet_ext.espnet.tasks.ASRTask: --collect_feats_stats false skips the frontend in stage 10."""

import pytest
import torch

from espnet_ext.espnet.tasks import ASRTask

TOKENS = ["<blank>", "<unk>", "a", "b", "<sos/eos>"]


def build(tmp_path, *extra):
    argv = [
        "--output_dir",
        str(tmp_path),
        "--token_list",
        "x",
        "--frontend",
        "wav2vec2",
        "--frontend_conf",
        "preset=tiny",
        "--normalize",
        "none",
        "--encoder",
        "w2v2_light",
        "--model_conf",
        "ctc_weight=1.0",
        "--collect_stats",
        "true",
        *extra,
    ]
    args = ASRTask.get_parser().parse_args(argv)
    args.token_list = list(TOKENS)
    return ASRTask.build_model(args)


def test_collect_feats_stats_false_runs_no_frontend(tmp_path):
    speech, lengths = torch.randn(2, 8000), torch.tensor([8000, 6000])
    text, text_lengths = torch.tensor([[2, 3], [3, 2]]), torch.tensor([2, 2])
    with_feats = build(tmp_path).collect_feats(speech, lengths, text, text_lengths)
    assert with_feats["feats"].shape[-1] == 64  # the tiny backbone's width: the frontend ran
    model = build(tmp_path, "--collect_feats_stats", "false")
    calls = []
    model.frontend.register_forward_hook(lambda *a: calls.append(1))
    assert model.collect_feats(speech=speech, speech_lengths=lengths, text=text, text_lengths=text_lengths) == {}
    assert not calls


def _bound(linear):
    fan_out, fan_in = linear.weight.shape
    return (6.0 / (fan_in + fan_out)) ** 0.5


def test_ctc_init_xavier_uniform(tmp_path):
    """--ctc_init xavier_uniform: fairseq's fine-tuning head (wav2vec2_asr.Linear): weights
    U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), bias 0; applied after ESPnet's --init."""
    torch.manual_seed(0)
    lo = build(tmp_path, "--ctc_init", "xavier_uniform").ctc.ctc_lo
    a = _bound(lo)
    w = lo.weight.detach()
    assert w.abs().max() <= a and w.abs().max() > 0.9 * a  # fills the whole range ...
    assert w.std().item() == pytest.approx(a / 3**0.5, rel=0.1)  # ... uniformly: std a / sqrt(3)
    assert torch.count_nonzero(lo.bias) == 0
    # the default is nn.Linear's (bound 1 / sqrt(fan_in), a non-zero bias); ESPnet's --init
    # (xavier_normal here) is overridden by --ctc_init
    default = build(tmp_path).ctc.ctc_lo
    assert default.weight.abs().max() <= default.weight.shape[1] ** -0.5 < 0.9 * _bound(default)
    assert torch.count_nonzero(default.bias) > 0
    after_init = build(tmp_path, "--init", "xavier_normal", "--ctc_init", "xavier_uniform").ctc.ctc_lo
    assert after_init.weight.abs().max() <= _bound(after_init) and torch.count_nonzero(after_init.bias) == 0


def test_ctc_init_rejects_unknown(tmp_path):
    from espnet_ext.espnet.tasks import init_ctc_output

    model = build(tmp_path)
    with pytest.raises(ValueError, match="ctc_init: expected one of pytorch, xavier_uniform; found 'he'"):
        init_ctc_output(model, "he")
