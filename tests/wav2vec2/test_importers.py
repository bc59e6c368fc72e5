"""Checkpoint importers: numerical equality with fairseq (s3prl's copy) and transformers, formats, errors.

Every equality case prints its max abs diff over all hidden states (``pytest -s`` shows them).
"""

import argparse
import collections
import dataclasses
import fractions
import logging
import warnings

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from espnet_ext.wav2vec2.importers import load_checkpoint, save_backbone, torch_load
from espnet_ext.wav2vec2.model import wav2vec2_model
from espnet_ext.wav2vec2.presets import tiny_config

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from s3prl.upstream.wav2vec2 import wav2vec2_model as fairseq_copy

ARCHS = [("default", False), ("default", True), ("layer_norm", False), ("layer_norm", True)]
ARCH_IDS = ["group-postLN", "group-preLN", "layer-postLN", "layer-preLN"]
TOLERANCE = 1e-4
LENGTHS = [3200, 2100]


pytestmark = pytest.mark.usefixtures("one_thread")


def _randomize(module: torch.nn.Module, seed: int = 0) -> None:
    """Perturb every parameter (LayerNorm gains and biases too) so that equality is not trivial."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))


def _waves():
    generator = torch.Generator().manual_seed(1)
    waves = torch.randn(len(LENGTHS), max(LENGTHS), generator=generator)
    lengths = torch.tensor(LENGTHS)
    return waves * (torch.arange(waves.size(1))[None] < lengths[:, None]), lengths


def _max_diff(ours, reference, frames=None) -> float:
    assert len(ours) == len(reference)
    return max(float((a[:, :frames] - b[:, :frames]).abs().max()) for a, b in zip(ours, reference))


def _check_equal(model, reference_states, label: str, padded_like_reference: bool) -> None:
    """``reference_states(waves, lengths or None) -> tuple of (B, T, C)``.

    Compares (1) an unpadded batch; (2) a padded batch against each utterance alone in the
    reference (its exact semantics for one utterance); (3) a padded batch against the
    reference's padded batch, on the valid frames: equal for the ``layer_norm`` extractor;
    for the ``default`` one the reference's GroupNorm takes statistics over the padding
    (see :mod:`espnet_ext.wav2vec2.modules`), so the difference is only printed.
    """
    waves, lengths = _waves()
    with torch.no_grad():
        same_length = waves[:, : min(LENGTHS)]
        diffs = [_max_diff(model(same_length).hidden_states, reference_states(same_length, None))]
        padded = model(waves, lengths)
        batch_reference = reference_states(waves, lengths)
        alone, batched = [], []
        for b, n in enumerate(LENGTHS):
            frames = int(padded.lengths[b])
            ours = [h[b : b + 1] for h in padded.hidden_states]
            alone.append(_max_diff(ours, reference_states(waves[b : b + 1, :n], None), frames))
            batched.append(_max_diff(ours, [h[b : b + 1] for h in batch_reference], frames))
    print(
        f"[max abs diff] {label}: unpadded batch {diffs[0]:.2e}, padded batch vs per utterance "
        f"{max(alone):.2e}, padded batch vs reference's padded batch {max(batched):.2e}"
    )
    assert max(diffs + alone) <= TOLERANCE
    if padded_like_reference:
        assert max(batched) <= TOLERANCE


# ---------------------------------------------------------------------------- fairseq (s3prl's copy)
def _fairseq_model(mode: str, layer_norm_first: bool):
    config = fairseq_copy.Wav2Vec2Config(
        extractor_mode=mode,
        layer_norm_first=layer_norm_first,
        conv_bias=mode == "layer_norm",
        conv_feature_layers="[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2",
        encoder_layers=2,
        encoder_embed_dim=64,
        encoder_ffn_embed_dim=128,
        encoder_attention_heads=4,
        conv_pos=16,
        conv_pos_groups=4,
        quantize_targets=True,
        final_dim=32,
        latent_vars=16,
    )
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fairseq_copy.Wav2Vec2Model(config)
    _randomize(model)
    return model.eval(), dataclasses.asdict(config)


def _fairseq_states(model):
    """fairseq's transformer input (hooked), layer outputs, and final output ``x``."""

    def run(waves, lengths):
        seen = []
        hook = model.encoder.layers[0].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
        padding_mask = None if lengths is None else torch.arange(waves.size(1))[None] >= lengths[:, None]
        result = model.extract_features(waves, padding_mask)
        hook.remove()
        layers = [r[0].transpose(0, 1) for r in result["layer_results"]]
        frames = result["x"].size(1)  # fairseq pads the layers' input to an even length (required_seq_len_multiple)
        return (seen[0].transpose(0, 1)[:, :frames], *layers[:-1], result["x"])

    return run


def _fairseq_checkpoint(model, model_cfg: dict, storage: str) -> dict:
    state = model.state_dict()
    if storage == "cfg":
        return {"cfg": {"model": model_cfg, "task": {"_name": "audio_pretraining"}}, "args": None, "model": state}
    if storage == "dictconfig":
        cfg = OmegaConf.create({"common": {"fp16": True}, "model": model_cfg, "task": {"data": "???"}})
        OmegaConf.set_struct(cfg, True)
        return {
            "cfg": cfg,
            "args": None,
            "model": state,
            "optimizer_history": [{"num_updates": 10}],
            "extra_state": {
                "metrics": collections.OrderedDict(train=[(0, "loss", "AverageMeter", {"val": np.float64(2.5)})]),
                "best": np.float32(1.0),
                "train_iterator": {"epoch": 3},
            },
        }
    namespace = argparse.Namespace(**dict(model_cfg, arch="wav2vec2"))
    finetuned = {
        "w2v_encoder.w2v_model." + k: v
        for k, v in state.items()
        if not k.startswith(("quantizer", "project_q", "final_proj"))
    }
    finetuned.update({"w2v_encoder.proj.weight": torch.randn(9, 64), "w2v_encoder.proj.bias": torch.randn(9)})
    if storage == "args":
        return {"args": namespace, "model": state}
    if storage == "finetuned_cfg":
        model_section = {
            "_name": "wav2vec_ctc",
            "dropout": 0.0,
            "layerdrop": 0.05,
            "w2v_args": OmegaConf.create({"model": model_cfg, "task": {"normalize": False}}),
        }
        return {"cfg": OmegaConf.create({"model": model_section}), "model": finetuned}
    assert storage == "finetuned_args"
    args = argparse.Namespace(arch="wav2vec_ctc", w2v_path="/x.pt", w2v_args=namespace, layerdrop=0.05)
    return {"args": args, "model": finetuned}


@pytest.mark.parametrize("mode,layer_norm_first", ARCHS, ids=ARCH_IDS)
@pytest.mark.parametrize("storage", ["cfg", "dictconfig", "args", "finetuned_cfg", "finetuned_args"])
def test_fairseq_checkpoint_matches_fairseq(tmp_path, mode, layer_norm_first, storage):
    reference, model_cfg = _fairseq_model(mode, layer_norm_first)
    path = tmp_path / "checkpoint.pt"
    torch.save(_fairseq_checkpoint(reference, model_cfg, storage), path)
    model, config, info = load_checkpoint(path)
    assert (config.extractor_mode, config.layer_norm_first, config.encoder_layers) == (mode, layer_norm_first, 2)
    assert info.source_format == "fairseq" and info.fine_tuned == storage.startswith("finetuned")
    if info.fine_tuned:
        assert info.head_state["weight"].shape == (9, 64) and not info.pretraining_state
        assert config.encoder_layerdrop == 0.05  # fairseq's fine-tuning override
    else:
        assert set(info.pretraining_state) == {
            "quantizer.vars",
            "quantizer.weight_proj.weight",
            "quantizer.weight_proj.bias",
            "project_q.weight",
            "project_q.bias",
            "final_proj.weight",
            "final_proj.bias",
        }
    label = f"fairseq {mode}/{'pre' if layer_norm_first else 'post'}-LN ({storage})"
    _check_equal(model, _fairseq_states(reference), label, padded_like_reference=mode == "layer_norm")


# ---------------------------------------------------------------------------- transformers
def _hf_config(norm: str, stable: bool, **overrides):
    from transformers import Wav2Vec2Config as HFConfig

    values = dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(32,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm=norm,
        do_stable_layer_norm=stable,
        conv_bias=norm == "layer",
        vocab_size=9,
        codevector_dim=32,
        proj_codevector_dim=32,
        num_codevectors_per_group=16,
    )
    values.update(overrides)
    return HFConfig(**values)


def _hf_states(model):
    def run(waves, lengths):
        mask = None if lengths is None else (torch.arange(waves.size(1))[None] < lengths[:, None]).long()
        return model(waves, attention_mask=mask, output_hidden_states=True).hidden_states

    return run


@pytest.mark.parametrize(
    "norm,stable", [("group", False), ("group", True), ("layer", False), ("layer", True)], ids=ARCH_IDS
)
def test_huggingface_directory_matches_transformers(tmp_path, norm, stable):
    from transformers import Wav2Vec2Model as HFModel

    torch.manual_seed(0)
    reference = HFModel(_hf_config(norm, stable))
    _randomize(reference)
    reference.eval().save_pretrained(tmp_path)
    model, config, info = load_checkpoint(tmp_path)
    assert (config.extractor_mode == "layer_norm") == (norm == "layer") and config.layer_norm_first == stable
    assert info.source_format == "huggingface" and not info.fine_tuned and info.initialized == ()
    _check_equal(
        model,
        _hf_states(reference),
        f"transformers feat_extract_norm={norm} stable_layer_norm={stable}",
        padded_like_reference=norm == "layer",
    )


@pytest.mark.parametrize("head", ["ForCTC", "ForPreTraining"])
def test_huggingface_task_models_with_prefix(tmp_path, head):
    import transformers

    torch.manual_seed(0)
    reference = getattr(transformers, f"Wav2Vec2{head}")(_hf_config("layer", True))
    _randomize(reference)
    reference.eval().save_pretrained(tmp_path, safe_serialization=head == "ForCTC")
    if head == "ForPreTraining":
        assert (tmp_path / "pytorch_model.bin").is_file()
    model, _, info = load_checkpoint(tmp_path)
    if head == "ForCTC":
        assert info.fine_tuned and info.head_state["weight"].shape == (9, 64)
    else:
        assert set(info.pretraining_state) == {
            "quantizer.vars",
            "quantizer.weight_proj.weight",
            "quantizer.weight_proj.bias",
            "project_q.weight",
            "project_q.bias",
            "final_proj.weight",
            "final_proj.bias",
        }
        assert torch.equal(info.pretraining_state["final_proj.weight"], reference.project_hid.weight)
    _check_equal(model, _hf_states(reference.wav2vec2), f"transformers Wav2Vec2{head}", padded_like_reference=True)


def test_huggingface_model_without_mask_embedding_loads(tmp_path):
    from transformers import Wav2Vec2Model as HFModel

    HFModel(_hf_config("group", False, mask_time_prob=0.0, mask_feature_prob=0.0)).save_pretrained(tmp_path)
    _, _, info = load_checkpoint(tmp_path)
    assert info.initialized == ("mask_emb",)


# ---------------------------------------------------------------------------- own format
def test_save_backbone_round_trips(tmp_path):
    torch.manual_seed(0)
    config = tiny_config()
    model = wav2vec2_model(config).eval()
    heads = {"quantizer.vars": torch.randn(1, 32, 16)}
    save_backbone(model, config, tmp_path / "sub" / "backbone.pt", pretraining_state=heads)
    raw = torch.load(tmp_path / "sub" / "backbone.pt", weights_only=True)
    assert raw["format"] == "espnet_ext.wav2vec2" and raw["config"] == config.to_dict()
    loaded, loaded_config, info = load_checkpoint(tmp_path / "sub" / "backbone.pt")
    assert loaded_config == config and info.source_format == "espnet_ext"
    assert torch.equal(info.pretraining_state["quantizer.vars"], heads["quantizer.vars"])
    waves = torch.randn(2, 1600)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(waves).hidden_states, loaded(waves).hidden_states))


# ---------------------------------------------------------------------------- errors
def test_unmappable_checkpoint_names_missing_and_unexpected_keys(tmp_path):
    reference, model_cfg = _fairseq_model("default", False)
    checkpoint = _fairseq_checkpoint(reference, model_cfg, "cfg")
    del checkpoint["model"]["encoder.layers.1.fc2.bias"]
    checkpoint["model"]["encoder.layers.1.adapter.weight"] = torch.zeros(3)
    torch.save(checkpoint, tmp_path / "bad.pt")
    with pytest.raises(ValueError) as error:
        load_checkpoint(tmp_path / "bad.pt")
    message = str(error.value)
    assert "missing keys ['encoder.layers.1.feed_forward.fc2.bias']" in message
    assert "unexpected keys ['encoder.layers.1.adapter.weight']" in message


def test_wrong_shapes_are_named(tmp_path):
    reference, model_cfg = _fairseq_model("default", False)
    checkpoint = _fairseq_checkpoint(reference, model_cfg, "cfg")
    checkpoint["cfg"]["model"]["encoder_ffn_embed_dim"] = 256
    torch.save(checkpoint, tmp_path / "bad.pt")
    with pytest.raises(
        ValueError,
        match=r"wrong shapes \['encoder.layers.0.feed_forward.fc1.weight \(128, 64\) "
        r"\(expected \(256, 64\)\)",
    ):
        load_checkpoint(tmp_path / "bad.pt")


def test_refused_global_names_it_and_the_opt_in(tmp_path, caplog):
    reference, model_cfg = _fairseq_model("default", False)
    checkpoint = _fairseq_checkpoint(reference, model_cfg, "cfg")
    checkpoint["extra_state"] = {"ratio": fractions.Fraction(1, 3)}
    torch.save(checkpoint, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match=r"refused to unpickle global\(s\) fractions.Fraction.*allow_unsafe=True"):
        load_checkpoint(tmp_path / "odd.pt")
    with caplog.at_level(logging.WARNING, logger="espnet_ext.wav2vec2.importers"):
        model, _, _ = load_checkpoint(tmp_path / "odd.pt", allow_unsafe=True)
    assert any(r.levelno == logging.WARNING and "allow_unsafe=True" in r.getMessage() for r in caplog.records)
    assert model.num_layers == 2


def test_realistic_fairseq_objects_load_without_the_opt_in(tmp_path):
    reference, model_cfg = _fairseq_model("layer_norm", True)
    torch.save(_fairseq_checkpoint(reference, model_cfg, "dictconfig"), tmp_path / "real.pt")
    checkpoint = torch_load(tmp_path / "real.pt")
    assert checkpoint["extra_state"]["best"] == np.float32(1.0)


@pytest.mark.parametrize(
    "content,match",
    [
        ({"weights": torch.zeros(1)}, r"expected a fairseq checkpoint .* found \['weights'\]"),
        ([1, 2], r"found list"),
    ],
)
def test_unrecognised_files_raise(tmp_path, content, match):
    torch.save(content, tmp_path / "x.pt")
    with pytest.raises(ValueError, match=match):
        load_checkpoint(tmp_path / "x.pt")


def test_directory_without_config_and_missing_path(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nothing.pt")


def test_fine_tuned_checkpoint_without_embedded_config(tmp_path):
    torch.save(
        {"cfg": {"model": {"_name": "wav2vec_ctc", "w2v_args": None, "w2v_path": "/base.pt"}}, "model": {}},
        tmp_path / "ft.pt",
    )
    with pytest.raises(ValueError, match="expected the pre-training config embedded as 'w2v_args'"):
        load_checkpoint(tmp_path / "ft.pt")


def test_unsupported_fairseq_architecture(tmp_path):
    torch.save({"cfg": {"model": {"_name": "wav2vec2", "layer_type": "conformer"}}, "model": {}}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="layer_type: expected 'transformer'.*found 'conformer'"):
        load_checkpoint(tmp_path / "c.pt")


# ---------------------------------------------------------------------------- unreadable files
def _damaged(tmp_path, kind: str):
    """A copy of a saved tiny backbone, damaged as ``kind`` says."""
    config = tiny_config()
    save_backbone(wav2vec2_model(config), config, tmp_path / "good.pth")
    data = (tmp_path / "good.pth").read_bytes()
    if kind == "legacy_truncated":
        torch.save({"w": torch.zeros(1000)}, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
        legacy = (tmp_path / "legacy.pth").read_bytes()
    damaged = {
        "truncated": data[: len(data) // 2],
        "empty": b"",
        "text": b"not a checkpoint\n" * 20,
        "legacy_truncated": legacy[: len(legacy) // 2] if kind == "legacy_truncated" else b"",
    }[kind]
    path = tmp_path / "exp" / "10epoch.pth"
    path.parent.mkdir()
    path.write_bytes(damaged)
    return path


UNREADABLE = r"10epoch\.pth: not a readable PyTorch checkpoint \(truncated or corrupt\?\): \w+"


@pytest.mark.parametrize("kind", ["truncated", "empty", "text", "legacy_truncated"])
@pytest.mark.parametrize("mmap", [False, True])
def test_torch_load_names_a_damaged_file(tmp_path, kind, mmap):
    path = _damaged(tmp_path, kind)
    with pytest.raises(ValueError, match=UNREADABLE) as caught:
        torch_load(path, mmap=mmap)
    assert str(caught.value).startswith(f"{path}: ")
    if kind == "truncated":
        assert "PytorchStreamReader failed reading zip archive" in str(caught.value)


def test_every_reader_of_checkpoints_names_a_truncated_file(tmp_path):
    """The backbone and wav2vec 1.0 loaders, the frontends, averaging, the checkpoint comparison
    and the pre-training report all read through torch_load."""
    from espnet_ext.espnet.averaging import average_last
    from espnet_ext.espnet.encoders import pretrained_context
    from espnet_ext.espnet.frontend import Wav2Vec2Frontend
    from espnet_ext.report.checkpoints import describe
    from espnet_ext.report.ssl import read_checkpoint
    from espnet_ext.wav2vec1.checkpoint import load_wav2vec1

    path = _damaged(tmp_path, "truncated")
    readers = [
        load_checkpoint,
        load_wav2vec1,
        lambda p: Wav2Vec2Frontend(path=str(p)),
        pretrained_context,
        lambda p: average_last(p.parent, 1),
        lambda p: describe([str(p)]),
        read_checkpoint,
    ]
    for read in readers:
        with pytest.raises(ValueError, match=UNREADABLE):
            read(path)


def test_truncated_safetensors_is_named(tmp_path):
    from transformers import Wav2Vec2Model as HFModel

    HFModel(_hf_config("group", False)).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"model\.safetensors: not a readable safetensors file \(truncated or corrupt"):
        load_checkpoint(tmp_path)


# ---------------------------------------------------------------------------- waveform normalization record
def test_normalize_flag_round_trips_and_old_files_have_none(tmp_path):
    config = tiny_config()
    model = wav2vec2_model(config)
    for flag in (True, False):
        save_backbone(model, config, tmp_path / f"{flag}.pt", normalize=flag)
        assert torch.load(tmp_path / f"{flag}.pt", weights_only=True)["normalize"] is flag
        assert load_checkpoint(tmp_path / f"{flag}.pt").info.normalize is flag
    save_backbone(model, config, tmp_path / "old.pt")  # written before the flag existed
    assert "normalize" not in torch.load(tmp_path / "old.pt", weights_only=True)
    assert load_checkpoint(tmp_path / "old.pt").info.normalize is None


@pytest.mark.parametrize(
    "stored, expected",
    [
        ({"model": {"_name": "wav2vec2"}, "task": {"_name": "audio_pretraining", "normalize": True}}, True),
        ({"model": {"_name": "wav2vec2"}, "task": {"_name": "audio_pretraining", "normalize": False}}, False),
        ({"model": {"_name": "wav2vec2"}, "task": {"_name": "audio_pretraining"}}, None),
        # fine-tuned: the embedded pre-training task first
        (
            {
                "model": {"_name": "wav2vec_ctc", "w2v_args": {"task": {"normalize": True}}},
                "task": {"normalize": False},
            },
            True,
        ),
        ({"model": {"_name": "wav2vec_ctc", "w2v_args": None}, "task": {"normalize": True}}, True),
        (argparse.Namespace(arch="wav2vec2", normalize=True), True),
        (argparse.Namespace(arch="wav2vec_ctc", w2v_args=argparse.Namespace(normalize=False), normalize=True), False),
        (argparse.Namespace(arch="wav2vec2"), None),
    ],
)
def test_fairseq_normalize_is_read_from_the_task(stored, expected):
    from espnet_ext.wav2vec2.importers import fairseq_normalize

    assert fairseq_normalize(stored) is expected
    assert fairseq_normalize(OmegaConf.create(stored) if isinstance(stored, dict) else stored) is expected


def test_fairseq_checkpoint_records_normalize(tmp_path):
    model, model_cfg = _fairseq_model("default", False)
    checkpoint = _fairseq_checkpoint(model, model_cfg, "cfg")
    checkpoint["cfg"]["task"]["normalize"] = True
    torch.save(checkpoint, tmp_path / "large_like.pt")
    assert load_checkpoint(tmp_path / "large_like.pt").info.normalize is True
