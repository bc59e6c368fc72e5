"""espnet_ext.tasks.ASRTask: --collect_feats_stats false skips the frontend in stage 10."""

import torch

from espnet_ext.tasks import ASRTask

TOKENS = ["<blank>", "<unk>", "a", "b", "<sos/eos>"]


def build(tmp_path, *extra):
    argv = ["--output_dir", str(tmp_path), "--token_list", "x", "--frontend", "wav2vec2",
            "--frontend_conf", "preset=tiny", "--normalize", "none", "--encoder", "w2v2_light",
            "--model_conf", "ctc_weight=1.0", "--collect_stats", "true", *extra]
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
