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


def test_lm_task_trains_with_the_project_trainer(tmp_path):
    """LMTask (asr.sh stage 7): ESPnet's LM trained by the project's trainer (its --keep_last_epochs
    is there), writing the best-N average that ESPnet's own LMTask loads, as lm_calc_perplexity and
    asr_inference --lm_file do, into a model whose negative log-likelihood is finite."""
    from espnet2.tasks.lm import LMTask as ESPnetLMTask

    from espnet_ext.espnet.tasks import LMTask
    from espnet_ext.espnet.trainer import Trainer

    assert LMTask.trainer is Trainer
    text = tmp_path / "text"
    text.write_text("".join(f"u{i} {s}\n" for i, s in enumerate(["ab ba", "a b", "bab", "ab", "b a b", "aab"])))
    (tmp_path / "tokens.txt").write_text("<blank>\n<unk>\n<space>\na\nb\n<sos/eos>\n")
    shape = tmp_path / "shape"
    shape.write_text("".join(f"{line.split()[0]} {len(line)}\n" for line in text.read_text().splitlines()))
    data = [f"{text},text,text"]
    LMTask.main(
        cmd=[
            *("--output_dir", str(tmp_path / "exp"), "--token_type", "char"),
            *("--token_list", str(tmp_path / "tokens.txt"), "--use_preprocessor", "true"),
            *("--train_data_path_and_name_and_type", *data, "--valid_data_path_and_name_and_type", *data),
            *("--train_shape_file", str(shape), "--valid_shape_file", str(shape)),
            *("--lm", "transformer", "--lm_conf", "embed_unit=8", "--lm_conf", "att_unit=8"),
            *("--lm_conf", "head=1", "--lm_conf", "unit=16", "--lm_conf", "layer=1"),
            *("--batch_type", "unsorted", "--batch_size", "3", "--max_epoch", "2", "--keep_last_epochs", "2"),
            *("--num_att_plot", "0"),
            *("--use_matplotlib", "false", "--use_tensorboard", "false", "--num_workers", "0"),
            *("--best_model_criterion", "valid,loss,min"),
        ]
    )
    exp = tmp_path / "exp"
    assert (exp / "1epoch.pth").is_file() and (exp / "2epoch.pth").is_file()  # --keep_last_epochs 2
    model, _ = ESPnetLMTask.build_model_from_file(exp / "config.yaml", exp / "valid.loss.ave.pth", "cpu")
    nll, lengths = model.nll(torch.tensor([[3, 4, 2, 4]]), torch.tensor([4]))
    assert torch.isfinite(nll).all() and int(lengths[0]) == 5  # the tokens and <sos/eos>
