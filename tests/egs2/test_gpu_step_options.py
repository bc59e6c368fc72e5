"""The GPU pre-training configs (ssl1 of aishell, jsut, librispeech) ask for the leaner step:
a fused AdamW/Adam update (``optim_conf.fused``, which ESPnet passes to the optimizer) and
``cudnn_benchmark`` (ESPnet's option, set in ``torch.backends.cudnn`` before training) without
cuDNN's deterministic restriction. The fused update equals the unfused one on CPU."""

from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
GPU_SSL_CONFIGS = sorted(
    {
        p.resolve()
        for recipe in ("aishell", "jsut", "librispeech")
        for p in (ROOT / "egs2" / recipe / "ssl1" / "conf").rglob("*.yaml")
    }
)


def test_there_are_gpu_ssl_configs():
    assert len(GPU_SSL_CONFIGS) >= 6


@pytest.mark.parametrize("config", GPU_SSL_CONFIGS, ids=lambda p: p.name)
def test_gpu_ssl_configs_fuse_the_optimizer_and_benchmark_cudnn(config):
    conf = yaml.safe_load(config.read_text())
    assert conf["optim"] in ("adam", "adamw") and conf["optim_conf"]["fused"] is True
    assert conf["cudnn_benchmark"] is True and conf["cudnn_deterministic"] is False
    assert conf["use_amp"] is True


def test_the_options_reach_the_optimizer_and_cudnn(tmp_path):
    from espnet_ext.espnet.tasks import SSLTask

    config = ROOT / "egs2" / "librispeech" / "ssl1" / "conf" / "train_ssl.yaml"
    args = SSLTask.get_parser().parse_args(
        ["--config", str(config), "--output_dir", str(tmp_path), "--model_conf", "preset=tiny"]
    )
    assert args.cudnn_benchmark is True and args.cudnn_deterministic is False
    model = SSLTask.build_model(args)
    (optimizer,) = SSLTask.build_optimizers(args, model)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"] is True


def test_fused_adamw_equals_the_unfused_update():
    torch.manual_seed(0)
    params = [torch.randn(33, 7), torch.randn(5)]
    options = dict(lr=5e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    runs = {}
    for fused in (False, True):
        copies = [torch.nn.Parameter(p.clone()) for p in params]
        optimizer = torch.optim.AdamW(copies, fused=fused, **options)
        generator = torch.Generator().manual_seed(1)
        for _ in range(5):
            for p in copies:
                p.grad = torch.randn(p.shape, generator=generator)
            optimizer.step()
        runs[fused] = copies
    for fused, unfused in zip(runs[True], runs[False]):
        torch.testing.assert_close(fused, unfused, rtol=1e-6, atol=1e-7)
