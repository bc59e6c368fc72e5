"""Dry run of every training config in the repository (asr1, their LMs, and ssl1): it parses, ESPnet
builds the model, and a forward/backward step runs. A frontend ``path`` is replaced by a tiny checkpoint
(``tiny_checkpoint`` in tests/egs2/conftest.py; no model hub here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
LM_CONFIGS = sorted(ROOT.glob("egs2/*/asr1/conf/tuning/train_lm_*.yaml"))
CONFIGS = sorted(set(ROOT.glob("egs2/*/asr1/conf/tuning/*.yaml")) - set(LM_CONFIGS))
SSL_CONFIGS = sorted({p.resolve() for p in ROOT.glob("egs2/*/ssl1/conf/tuning/*.yaml")})
TOKENS = ["<blank>", "<unk>", "a", "b", "c", "<space>", "<sos/eos>"]


def test_there_are_configs():
    assert CONFIGS, "no egs2/*/asr1/conf/tuning/*.yaml found"


def test_configs_say_how_they_normalize_and_recipes_leave_it_to_them():
    """asr.sh takes ``normalize`` from the config (``--feats_normalize config``): every config sets
    it, the corpus recipes' wav2vec configs to null (the backbone reads raw waveforms), and no
    run.sh overrides it (a global_mvn config would then train without its statistics)."""
    for config in CONFIGS:
        conf = yaml.safe_load(config.read_text(encoding="utf-8"))
        assert "normalize" in conf, f"{config}: no normalize"
        corpus = config.relative_to(ROOT / "egs2").parts[0]
        if corpus != "mini" and conf.get("frontend") in ("wav2vec2", "wav2vec1"):
            assert conf["normalize"] is None, f"{config}: normalize {conf['normalize']}"
    run_shs = sorted(ROOT.glob("egs2/*/asr1/run.sh"))
    assert len(run_shs) >= 5 and not [p for p in run_shs if "--feats_normalize" in p.read_text()]


def test_wav2vec2_finetuning_configs_do_not_clip_gradients():
    """fairseq fine-tunes wav2vec 2.0 with ``clip_norm: 0`` (no clipping). ESPnet passes
    ``grad_clip`` to ``clip_grad_norm_`` as ``max_norm`` (0 would zero every gradient, the
    default 5.0 clips), so the corpus recipes' wav2vec 2.0 configs set a norm that never clips."""
    finetuning = [
        c
        for c in CONFIGS
        if c.relative_to(ROOT / "egs2").parts[0] != "mini"
        and yaml.safe_load(c.read_text(encoding="utf-8")).get("frontend") == "wav2vec2"
    ]
    assert len(finetuning) >= 9
    for config in finetuning:
        clip = yaml.safe_load(config.read_text(encoding="utf-8")).get("grad_clip", 5.0)
        assert float(clip) >= 1e6, f"{config}: grad_clip {clip} clips (fairseq fine-tuning: clip_norm 0)"


def test_wav2vec2_finetuning_configs_init_ctc_like_fairseq():
    """fairseq's fine-tuning head is a Xavier-uniform Linear with bias 0 (``--ctc_init``)."""
    for config in CONFIGS:
        conf = yaml.safe_load(config.read_text(encoding="utf-8"))
        if config.relative_to(ROOT / "egs2").parts[0] != "mini" and conf.get("frontend") == "wav2vec2":
            assert conf.get("ctc_init") == "xavier_uniform", f"{config}: ctc_init {conf.get('ctc_init')}"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "egs2")))
def test_config_builds_and_steps(config, tiny_checkpoint, tmp_path):
    from espnet_ext.espnet.tasks import ASRTask

    conf = yaml.safe_load(config.read_text(encoding="utf-8"))
    if conf.get("frontend") == "wav2vec2" and "path" in (conf.get("frontend_conf") or {}):
        conf["frontend_conf"]["path"] = str(tiny_checkpoint)
    stats = None
    if conf.get("normalize", "global_mvn") == "global_mvn":
        stats = tmp_path / "stats.npz"
    patched = tmp_path / "config.yaml"
    patched.write_text(yaml.safe_dump(conf), encoding="utf-8")
    argv = ["--config", str(patched), "--output_dir", str(tmp_path), "--token_list", "x"]
    args = ASRTask.get_parser().parse_args(argv)
    args.token_list = list(TOKENS)
    if stats is not None:  # global_mvn needs a stats file of the frontend's dimension
        import numpy as np

        args.normalize_conf = dict(args.normalize_conf or {}, stats_file=str(stats))
        args.normalize = "global_mvn"
        frontend_dim = _frontend_dim(args)
        np.savez(stats, count=np.array(10), sum=np.zeros(frontend_dim), sum_square=np.full(frontend_dim, 10.0))
    model = ASRTask.build_model(args)
    torch.manual_seed(0)
    speech = torch.randn(2, 16000) * 0.1
    text = torch.tensor([[2, 3, 4], [4, 5, 2]])
    loss, _, _ = model(speech, torch.tensor([16000, 12000]), text, torch.tensor([3, 3]))
    assert torch.isfinite(loss)
    loss.backward()


def test_every_asr1_recipe_has_an_lm_config_and_an_lm_decoding_config():
    """asr.sh --use_lm true (stages 6-8) trains conf/train_lm.yaml, a link into conf/tuning; shallow
    fusion decodes with conf/decode_ctc_lm.yaml: CTC only (ctc_weight 1.0), by beam search."""
    recipes = sorted(p.parent for p in ROOT.glob("egs2/*/asr1/run.sh"))
    assert len(recipes) >= 6
    for recipe in recipes:
        lm = recipe / "conf/train_lm.yaml"
        assert lm.is_symlink() and lm.resolve() in LM_CONFIGS, f"{lm}: not a link to conf/tuning/train_lm_*.yaml"
        decode = yaml.safe_load((recipe / "conf/decode_ctc_lm.yaml").read_text(encoding="utf-8"))
        assert decode["ctc_weight"] == 1.0 and "decoding" not in decode and decode["beam_size"] > 1, recipe
        assert {"lm_weight", "ngram_weight", "penalty"} <= decode.keys(), recipe


@pytest.mark.parametrize("config", LM_CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "egs2")))
def test_lm_config_builds_and_steps(config):
    """An LM config (asr.sh stage 7): ESPnet's LMTask builds it on a token list and a step runs;
    it judges by valid loss, so asr.sh decodes the average ESPnet writes (valid.loss.ave.pth)."""
    from espnet_ext.espnet.averaging import best_average_name
    from espnet_ext.espnet.tasks import LMTask

    conf = yaml.safe_load(config.read_text(encoding="utf-8"))
    assert conf.get("lm") in ("transformer", "seq_rnn"), f"{config}: lm {conf.get('lm')}"
    assert best_average_name(conf) == "valid.loss.ave.pth", config
    args = LMTask.get_parser().parse_args(["--config", str(config), "--output_dir", "unused", "--token_list", "x"])
    args.token_list = list(TOKENS)
    torch.manual_seed(0)
    model = LMTask.build_model(args)
    text = torch.tensor([[2, 3, 4], [4, 5, 2]])
    loss, _, _ = model(text, torch.tensor([3, 2]))
    assert torch.isfinite(loss)
    loss.backward()


def test_there_are_ssl_configs():
    names = {p.name for p in SSL_CONFIGS}
    for size in ("base", "medium", "small", "large", "downsample"):
        assert f"train_ssl_w2v2_{size}.yaml" in names


@pytest.mark.parametrize("config", SSL_CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "egs2")))
def test_ssl_config_builds_and_steps(config, tmp_path):
    from espnet_ext.espnet.tasks import SSLTask

    args = SSLTask.get_parser().parse_args(["--config", str(config), "--output_dir", str(tmp_path)])
    SSLTask.check_required_command_args(args)
    torch.manual_seed(0)
    model = SSLTask.build_model(args)
    speech = torch.randn(2, 32000) * 0.1
    loss, stats, weight = model(speech, torch.tensor([32000, 24000]))
    assert torch.isfinite(loss) and int(weight) > 0
    loss.backward()
    assert args.save_every_updates > 0


def _frontend_dim(args) -> int:
    from espnet2.tasks.asr import frontend_choices

    frontend = frontend_choices.get_class(args.frontend)(**(args.frontend_conf or {}))
    return frontend.output_size()
