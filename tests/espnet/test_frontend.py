"""The ``wav2vec2`` ESPnet frontend: shapes, padding, layer selection, masks, update counting
under gradient accumulation, reloading, and use inside a real ESPnet ASR model."""

from __future__ import annotations

import pytest
import torch

import espnet_ext  # noqa: F401
from espnet_ext.espnet.frontend import Wav2Vec2Frontend
from espnet_ext.wav2vec2.importers import save_backbone
from espnet_ext.wav2vec2.presets import preset_config


def tiny(**kwargs) -> Wav2Vec2Frontend:
    torch.manual_seed(0)
    return Wav2Vec2Frontend(preset="tiny", **kwargs)


def batch(lengths=(16000, 11000, 6000)):
    torch.manual_seed(1)
    speech = torch.randn(len(lengths), max(lengths)) * 0.1
    for i, n in enumerate(lengths):
        speech[i, n:] = 0
    return speech, torch.tensor(lengths)


def test_shapes_and_lengths():
    fe = tiny().eval()
    speech, lengths = batch()
    feats, olens = fe(speech, lengths)
    assert feats.shape == (3, int(fe.model.output_lengths(16000)), fe.output_size())
    assert olens.tolist() == [int(fe.model.output_lengths(int(n))) for n in lengths]


def test_padded_batch_equals_single_utterances():
    fe = tiny().eval()
    speech, lengths = batch()
    with torch.no_grad():
        feats, olens = fe(speech, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone, alone_len = fe(speech[i : i + 1, :n], lengths[i : i + 1])
            t = int(alone_len)
            assert t == int(olens[i])
            assert torch.allclose(feats[i, :t], alone[0, :t], atol=1e-4)


def test_layer_selection_stops_early_and_weighted_sum():
    fe = tiny(layer=1).eval()
    calls = []
    for i, layer in enumerate(fe.model.encoder.layers):
        layer.register_forward_hook(lambda m, a, o, i=i: calls.append(i))
    speech, lengths = batch()
    fe(speech, lengths)
    assert calls == [0]  # only the first layer ran
    ws = tiny(layer=1, weighted_sum=True).train()
    feats, _ = ws(speech, lengths)
    feats.sum().backward()
    assert ws.layer_weights.shape == (2,) and ws.layer_weights.grad is not None
    with pytest.raises(ValueError, match="layer must be in 0.."):
        tiny(layer=99)


def test_masks_only_in_training():
    fe = tiny(mask_prob=0.5, mask_length=2, mask_channel_prob=0.3, mask_channel_length=4)
    speech, lengths = batch()
    frame_lengths = fe.model.output_lengths(lengths)
    fe.eval()
    assert fe._masks(frame_lengths, int(frame_lengths.max())) == (None, None)
    fe.train()
    time_mask, channel_mask = fe._masks(frame_lengths, int(frame_lengths.max()))
    assert time_mask.shape == (3, int(frame_lengths.max())) and time_mask.any()
    assert not time_mask[2, int(frame_lengths[2]) :].any()  # never padding
    assert channel_mask.shape == (3, fe.output_size()) and channel_mask.any()
    # require_same_masks (default, as fairseq): every utterance the same masked count, channels too
    assert len(set(time_mask.sum(1).tolist())) == 1 and len(set(channel_mask.sum(1).tolist())) == 1
    torch.manual_seed(0)
    own = tiny(mask_prob=0.65, mask_length=2, require_same_masks=False).train()
    counts = [own._masks(frame_lengths, int(frame_lengths.max()))[0].sum(1) for _ in range(20)]
    assert any(len(set(c.tolist())) > 1 for c in counts)  # off: each utterance keeps its own
    fe.eval()
    with torch.no_grad():
        a, _ = fe(speech, lengths)
        b, _ = fe(speech, lengths)
    assert torch.equal(a, b)


def run_updates(fe, head, steps: int, accum_grad: int):
    optimizer = torch.optim.SGD(list(fe.parameters()) + list(head.parameters()), lr=1e-3)
    speech, lengths = batch((8000, 6000))
    grads_seen = []
    for _ in range(steps):
        for _ in range(accum_grad):  # micro-batches: no optimizer step
            fe.train()
            feats, _ = fe(speech, lengths)
            head(feats).sum().backward()
        grads_seen.append(any(p.grad is not None for p in fe.model.encoder.parameters()))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        fe.eval()
        with torch.no_grad():  # validation: no update
            fe(speech, lengths)
    return grads_seen


def test_freeze_counts_optimizer_updates_not_micro_batches():
    fe = tiny(freeze_finetune_updates=3)
    head = torch.nn.Linear(fe.output_size(), 5)
    grads = run_updates(fe, head, steps=5, accum_grad=4)
    assert int(fe.num_updates) == 5
    assert grads == [False, False, False, True, True]  # frozen for exactly 3 updates
    # an optimizer that does not hold the frontend's parameters does not count
    other = torch.optim.SGD(head.parameters(), lr=1e-3)
    other.step()
    assert int(fe.num_updates) == 5
    # the count is saved and restored with the model (resume)
    restored = tiny(freeze_finetune_updates=3)
    restored.load_state_dict(fe.state_dict())
    assert int(restored.num_updates) == 5 and not restored.frozen
    # past the freeze the count is no longer read (no host sync); a loaded earlier count
    # (here through a parent module, as ESPnet loads the whole model) freezes it again
    parent = torch.nn.ModuleDict({"frontend": restored})
    earlier = {f"frontend.{k}": v for k, v in tiny(freeze_finetune_updates=3).state_dict().items()}
    parent.load_state_dict(earlier)
    assert int(restored.num_updates) == 0 and restored.frozen


def test_path_loading_and_reload_pretrained_parameters(tmp_path):
    source = tiny()
    save_backbone(source.model, preset_config("tiny"), tmp_path / "backbone.pt")
    fe = Wav2Vec2Frontend(path=str(tmp_path / "backbone.pt")).eval()
    speech, lengths = batch()
    with torch.no_grad():
        expected, _ = source.eval()(speech, lengths)
        assert torch.allclose(fe(speech, lengths)[0], expected, atol=1e-6)
        for p in fe.model.parameters():  # what ESPnet's init: would do
            p.normal_()
        fe.reload_pretrained_parameters()
        assert torch.allclose(fe(speech, lengths)[0], expected, atol=1e-6)


def test_dropout_overrides_reach_every_module_and_none_keeps_the_checkpoints(tmp_path):
    """fairseq's fine-tuning replaces the pre-trained dropouts; here each is an option."""
    speech, lengths = batch()
    kept = tiny().train()  # the tiny preset pre-trains with dropout 0.1, attention 0.1, input 0.1
    assert kept.model.encoder.dropout.p == 0.1 and kept.model.encoder.layers[0].attention.dropout == 0.1
    torch.manual_seed(2)
    first = kept(speech, lengths)[0]
    assert not torch.allclose(kept(speech, lengths)[0], first)  # dropout draws differ per call
    off = tiny(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, dropout_input=0.0).train()
    assert torch.equal(off(speech, lengths)[0], off(speech, lengths)[0])  # training, yet deterministic
    with torch.no_grad():
        assert torch.allclose(off(speech, lengths)[0], kept.eval()(speech, lengths)[0], atol=1e-6)
    some = tiny(activation_dropout=0.25, attention_dropout=0.05)
    layer = some.model.encoder.layers[-1]
    assert (layer.feed_forward.dropout.p, layer.attention.dropout, layer.dropout.p) == (0.25, 0.05, 0.1)
    assert some.model.feature_projection.dropout.p == 0.1
    with pytest.raises(ValueError, match=r"dropout: expected a probability in \[0, 1\); found 1.5"):
        tiny(dropout=1.5)


def test_bad_configuration_messages(tmp_path):
    with pytest.raises(ValueError, match="exactly one of path, preset or config; found none of them"):
        Wav2Vec2Frontend()
    with pytest.raises(
        ValueError,
        match=r"exactly one of path, preset or config; found path='x.pt', config "
        r"\(a mapping\)",
    ):
        Wav2Vec2Frontend(path="x.pt", config={"encoder_layers": 1})
    with pytest.raises(ValueError, match="found preset='tiny', config"):
        Wav2Vec2Frontend(preset="tiny", config={})
    with pytest.raises(ValueError, match=r"config: expected a mapping of the backbone's config fields; found str"):
        Wav2Vec2Frontend(config="tiny")
    with pytest.raises(ValueError, match=r"wav2vec2 frontend: config: Wav2Vec2Config: unknown fields \['layers'\]"):
        Wav2Vec2Frontend(config={"layers": 2})
    with pytest.raises(ValueError, match="wav2vec2 frontend: config: encoder_embed_dim: expected a multiple"):
        Wav2Vec2Frontend(config={"encoder_embed_dim": 30, "encoder_attention_heads": 4})
    with pytest.raises(ValueError, match="expected 16 kHz"):
        Wav2Vec2Frontend(preset="tiny", fs="8k")
    assert Wav2Vec2Frontend(preset="tiny", fs="16k").output_size() > 0  # ESPnet's spelling of 16000


def test_in_an_espnet_asr_model_with_ctc():
    """input_size comes from the frontend; a CTC training step runs and the backbone trains."""
    from espnet_ext.espnet.tasks import ASRTask

    parser = ASRTask.get_parser()
    args = parser.parse_args(["--output_dir", "unused"])
    args.token_list = ["<blank>", "<unk>", "a", "b", "c", "<sos/eos>"]
    args.frontend = "wav2vec2"
    args.frontend_conf = {"preset": "tiny", "mask_prob": 0.3, "mask_length": 2}
    args.encoder = "w2v2_light"
    args.encoder_conf = {"dropout_rate": 0.1}
    args.normalize = None
    args.specaug = None
    args.model_conf = {"ctc_weight": 1.0}
    args.input_size = None
    model = ASRTask.build_model(args)
    speech, lengths = batch((16000, 12000))
    text = torch.tensor([[2, 3, 4], [4, 3, -1]])
    loss, stats, _ = model(speech, lengths, text, torch.tensor([3, 2]))
    loss.backward()
    assert torch.isfinite(loss)
    assert any(p.grad is not None for p in model.frontend.model.encoder.parameters())


# --------------------------------------------------------------------- waveform normalization
def _saved(tmp_path, name, normalize):
    path = tmp_path / name
    save_backbone(tiny().model, preset_config("tiny"), path, normalize=normalize)
    return str(path)


def test_normalize_waveform_follows_the_checkpoint_and_refuses_a_mismatch(tmp_path, caplog):
    from espnet_ext.espnet.frontend import NormalizeMismatchError

    large_like = _saved(tmp_path, "large_like.pt", True)
    assert Wav2Vec2Frontend(path=large_like).normalize_waveform is True  # None: the checkpoint's
    assert Wav2Vec2Frontend(path=large_like, normalize_waveform=True).normalize_waveform is True
    with pytest.raises(
        NormalizeMismatchError,
        match=f"{large_like} was pre-trained with waveform normalization "
        "on .* but frontend_conf.normalize_waveform is false; set normalize_waveform: true",
    ):
        Wav2Vec2Frontend(path=large_like, normalize_waveform=False)
    base_like = _saved(tmp_path, "base_like.pt", False)
    assert Wav2Vec2Frontend(path=base_like).normalize_waveform is False
    with pytest.raises(NormalizeMismatchError, match="normalization off"):
        Wav2Vec2Frontend(path=base_like, normalize_waveform=True)
    # a checkpoint that records nothing (written before the flag): a warning, the asked value (False)
    old = _saved(tmp_path, "old.pt", None)
    with caplog.at_level("WARNING"):
        assert Wav2Vec2Frontend(path=old).normalize_waveform is False
        assert Wav2Vec2Frontend(path=old, normalize_waveform=True).normalize_waveform is True
    assert (
        sum(f"{old} does not record whether it was pre-trained on normalized" in r.getMessage() for r in caplog.records)
        == 2
    )
    assert tiny().normalize_waveform is False  # a preset: off


def test_fairseq_checkpoint_with_normalize_used_without_it_names_both_files(tmp_path):
    """A fairseq checkpoint pre-trained with task.normalize true (LARGE LV-60), fine-tuned by a
    config that turns normalization off: the error names the config file and the checkpoint."""
    import dataclasses
    import warnings

    import yaml

    from espnet_ext.espnet.frontend import NormalizeMismatchError
    from espnet_ext.espnet.tasks import ASRTask

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from s3prl.upstream.wav2vec2 import wav2vec2_model as fairseq_copy

        cfg = fairseq_copy.Wav2Vec2Config(
            conv_feature_layers="[(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2",
            encoder_layers=1,
            encoder_embed_dim=32,
            encoder_ffn_embed_dim=64,
            encoder_attention_heads=2,
            conv_pos=16,
            conv_pos_groups=4,
            quantize_targets=True,
            final_dim=16,
            latent_vars=8,
        )
        model = fairseq_copy.Wav2Vec2Model(cfg)
    checkpoint = tmp_path / "wav2vec_large_like.pt"
    torch.save(
        {
            "cfg": {"model": dataclasses.asdict(cfg), "task": {"_name": "audio_pretraining", "normalize": True}},
            "model": model.state_dict(),
        },
        checkpoint,
    )
    config = tmp_path / "train_asr.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "frontend": "wav2vec2",
                "frontend_conf": {"path": str(checkpoint), "normalize_waveform": False},
                "encoder": "w2v2_light",
                "normalize": None,
                "model_conf": {"ctc_weight": 1.0},
            }
        ),
        encoding="utf-8",
    )
    args = ASRTask.get_parser().parse_args(
        ["--config", str(config), "--output_dir", str(tmp_path), "--token_list", "x"]
    )
    args.token_list = ["<blank>", "<unk>", "a", "<sos/eos>"]
    with pytest.raises(NormalizeMismatchError) as error:
        ASRTask.build_model(args)
    message = str(error.value)
    assert message.startswith(
        f"{config}: wav2vec2 frontend: {checkpoint} was pre-trained with waveform normalization on (normalize: true)"
    )
    assert "normalize_waveform is false" in message
    # left out, the frontend follows the checkpoint
    args.frontend_conf = {"path": str(checkpoint)}
    assert ASRTask.build_model(args).frontend.normalize_waveform is True


# --------------------------------------------------------------------- building without the checkpoint
def _odd_architecture():
    """A backbone no preset describes: post-LN instead of the tiny preset's pre-LN, one layer,
    a smaller positional convolution, layer-norm extractor with bias."""
    import dataclasses

    return dataclasses.replace(
        preset_config("tiny"),
        encoder_layers=1,
        layer_norm_first=False,
        conv_pos=8,
        conv_pos_groups=2,
        extractor_mode="layer_norm",
        conv_bias=True,
        dropout=0.2,
    )


def _dropouts(frontend):
    """Every dropout probability, layerdrop and feature_grad_mult of a frontend's backbone."""
    model = frontend.model
    values = [
        model.feature_grad_mult,
        model.encoder.layerdrop,
        model.encoder.dropout.p,
        model.feature_projection.dropout.p,
    ]
    for layer in model.encoder.layers:
        values += [layer.dropout.p, layer.attention.dropout, layer.feed_forward.dropout.p]
    return values


@pytest.mark.parametrize(
    "overrides",
    [{}, {"dropout": 0.0, "layerdrop": 0.3, "feature_grad_mult": 0.5, "activation_dropout": 0.15}],
    ids=["checkpoint's", "overridden"],
)
def test_portable_conf_rebuilds_the_network_without_the_checkpoint(tmp_path, overrides):
    """A frontend built from portable_conf() (through YAML, as a packed config holds it), given the
    trained frontend's state dict, computes exactly the same features, in training mode too
    (dropouts, layerdrop), with normalize_waveform as the checkpoint resolved it."""
    import yaml

    from espnet_ext.wav2vec2.model import wav2vec2_model

    architecture = _odd_architecture()
    torch.manual_seed(3)
    save_backbone(wav2vec2_model(architecture), architecture, tmp_path / "odd.pt", normalize=True)
    trained = Wav2Vec2Frontend(path=str(tmp_path / "odd.pt"), **overrides)
    with torch.no_grad():  # fine-tuning moved the weights away from the checkpoint's
        for p in trained.parameters():
            p.add_(0.01 * torch.randn_like(p))
    conf = yaml.safe_load(yaml.safe_dump(trained.portable_conf()))
    assert "path" not in conf and conf["normalize_waveform"] is True
    (tmp_path / "odd.pt").unlink()  # not needed any more
    rebuilt = Wav2Vec2Frontend(**conf)
    rebuilt.load_state_dict(trained.state_dict())  # strict: the same parameters and buffers
    assert rebuilt.normalize_waveform is True and rebuilt.architecture == trained.architecture
    assert _dropouts(rebuilt) == _dropouts(trained)
    assert trained.architecture.dropout == overrides.get("dropout", 0.2)
    speech, lengths = batch()
    with torch.no_grad():
        assert torch.equal(rebuilt.eval()(speech, lengths)[0], trained.eval()(speech, lengths)[0])
        torch.manual_seed(4)
        expected = trained.train()(speech, lengths)[0]
        torch.manual_seed(4)
        assert torch.equal(rebuilt.train()(speech, lengths)[0], expected)


def test_config_option_is_a_random_backbone_of_that_architecture():
    """``config`` alone: the architecture's network, randomly initialised, normalize_waveform off unless set."""
    architecture = _odd_architecture()
    fe = Wav2Vec2Frontend(config=architecture.to_dict())
    assert fe.model.num_layers == 1 and fe.normalize_waveform is False
    assert fe.model.encoder.layers[0].attention.dropout == 0.1  # the tiny preset's, kept by the replace
    assert Wav2Vec2Frontend(config={**architecture.to_dict()}, normalize_waveform=True).normalize_waveform is True
    partial = Wav2Vec2Frontend(
        config={
            "encoder_layers": 1,
            "encoder_embed_dim": 32,
            "encoder_ffn_embed_dim": 64,
            "encoder_attention_heads": 2,
            "conv_pos": 4,
            "conv_pos_groups": 2,
            "conv_feature_layers": "[(16, 10, 5)] + [(16, 3, 2)] * 4 + [(16, 2, 2)] * 2",
        }
    )
    assert partial.output_size() == 32
    fe.reload_pretrained_parameters()  # nothing to reload: no error


def test_stage4_frame_count_reads_the_config_option():
    """The stage-4 filter's frame count of a config whose frontend has ``config`` (a packed one's):
    the real frontend's output lengths, for an extractor unlike the default one."""
    import dataclasses

    from espnet_ext.espnet.lengths import frames_from_dict

    layers = [(32, 10, 5), (32, 8, 4), (32, 4, 2)]
    architecture = dataclasses.replace(preset_config("tiny"), conv_feature_layers=layers)
    fe = Wav2Vec2Frontend(config=architecture.to_dict()).eval()
    count = frames_from_dict(
        {"frontend": "wav2vec2", "frontend_conf": {"config": architecture.to_dict()}, "encoder": "w2v2_light"}
    )
    speech, lengths = batch((16000, 1234, 400, 40))
    with torch.no_grad():
        _, olens = fe(speech, lengths)
    assert [count(int(n)) for n in lengths] == olens.tolist() and olens[0] == 398  # 16000 -> 3199 -> 798 -> 398 frames
