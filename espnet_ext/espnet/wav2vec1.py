"""wav2vec 1.0 in ESPnet: pre-training (SSL ``model: wav2vec1``) and a frontend (``frontend: wav2vec1``).

Pre-training (``python -m espnet_ext.bin.ssl_train``, the ssl1 recipe)::

    model: wav2vec1
    model_conf:
        preset: base                 # base, large, tiny (espnet_ext.wav2vec1.config)
        config:                      # overrides of Wav2Vec1Config fields (fairseq names)
            num_negatives: 10
            prediction_steps: 12
    collate_fn_conf: {crop_audio: true}   # crop each batch to its shortest utterance (fairseq)
    save_every_updates: 10000             # checkpoints/<N>updates.pth, each a frontend checkpoint

As for ``model: wav2vec2`` (:mod:`espnet_ext.espnet.ssl_model`, whose task mixin builds this
model from ``model_conf`` too: no frontend, encoder or loss is built, no token list needed),
``forward`` returns the loss per prediction with weight = the number of predictions, so that
ESPnet's distributed averaging is fairseq's normalisation by ``sample_size``. Logged per
iteration (``log_interval``) and plotted per epoch: ``loss`` (nats per prediction; chance
``(1 + N) log 2``), ``acc`` (positive above all its distractors; chance ``1 / (N + 1)``),
``acc_k1`` and ``acc_k<K>`` (the first and last prediction steps), ``prob_pos``, ``prob_neg``
(mean sigmoid of positive / distractor logits). A warning is logged when the loss stays at
chance (:func:`espnet_ext.wav2vec1.loss.chance_loss`; ``model_conf.chance_patience`` batches).

Fine-tuning (an ASR/SSL/CLS config)::

    frontend: wav2vec1
    frontend_conf:
        path: exp/ssl_train_ssl_w2v1_tiny/checkpoints/200updates.pth   # or fairseq's wav2vec_large.pt
        # preset: tiny                     # instead of path: random initialisation
        # config: {conv_aggregator_layers: ...}   # instead: Wav2Vec1Config fields (a packed model's)
        output: context                    # context (c, what the paper feeds to ASR) or features (z)
        freeze_finetune_updates: 0         # optimizer updates with the backbone frozen
    normalize: null                        # wav2vec 1.0 reads raw waveforms
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel
from torch import Tensor

from espnet_ext.espnet.frontend import PretrainedFrontend, check_16k, check_one_source, config_mapping
from espnet_ext.espnet.ssl_model import CollapseMonitor
from espnet_ext.espnet.updates import count_updates
from espnet_ext.wav2vec1.checkpoint import load_wav2vec1, save_wav2vec1
from espnet_ext.wav2vec1.config import Wav2Vec1Config, preset_config
from espnet_ext.wav2vec1.loss import chance_loss
from espnet_ext.wav2vec1.model import wav2vec1_model
from espnet_ext.wav2vec1.pretraining import PretrainingOutput, wav2vec1_pretraining


class ChanceMonitor(CollapseMonitor):
    """Warns when the training loss stays at chance (:func:`~espnet_ext.wav2vec1.loss.chance_loss`):
    within ``margin`` (relative) of it for ``patience`` training batches in a row, after the first
    ``patience``. With binary cross-entropy that is the class-prior solution, reached by
    collapsing the encoder output to a constant. Read every ``every`` batches (one host sync)."""

    def __init__(self, chance: float, patience: int = 1000, every: int = 50, margin: float = 0.02) -> None:
        super().__init__(
            num_vars=1, num_negatives=1, ppl_fraction=0.0, chance_margin=margin, patience=patience, every=every
        )
        self.chance = chance

    def update_loss(self, loss: Tensor) -> None:
        self.batches += 1
        if self.batches % self.every:
            return
        value = float(loss)
        self._check(
            "chance",
            self.batches > self.patience and value > self.chance * (1 - self.chance_margin),
            f"loss {value:.3f} at chance {self.chance:.3f} (accuracy near 1/(N+1): the encoder output has "
            "collapsed to the class prior; try balanced_classes: true, infonce: true or a lower learning rate)",
        )


class ESPnetWav2Vec1Model(AbsESPnetModel):
    """wav2vec 1.0 pre-training for ESPnet's trainer (see the module docstring).

    Args:
        preset: ``base``, ``large`` or ``tiny`` (:data:`espnet_ext.wav2vec1.config.PRESETS`).
        config: overrides of :class:`~espnet_ext.wav2vec1.config.Wav2Vec1Config` fields.
        chance_patience: :class:`ChanceMonitor` (a warning only), in training batches.
    """

    builds_from_model_conf = True  # the SSL task mixin builds it from model_conf alone (as wav2vec2)

    def __init__(self, preset: str = "base", config: dict[str, Any] | None = None, chance_patience: int = 1000) -> None:
        super().__init__()
        self.config: Wav2Vec1Config = preset_config(preset).replace(config or {}, "wav2vec1 model_conf.config")
        self.pretraining = wav2vec1_pretraining(self.config)
        count_updates(self)  # num_updates: optimizer updates, in checkpoints (the trainer's resume count)
        chance = chance_loss(self.config.num_negatives, self.config.infonce, self.config.balanced_classes)
        self.monitor = ChanceMonitor(chance, patience=chance_patience)

    def forward(
        self, speech: Tensor, speech_lengths: Tensor, **kwargs: Any
    ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """``(B, L)`` waveforms, ``(B,)`` lengths -> (loss per prediction, stats, weight = predictions).

        Other batch entries (``text``) are ignored.
        """
        out = self.pretraining(speech, speech_lengths.long())
        loss = out.loss.per_prediction
        if self.training:
            self.monitor.update_loss(loss.detach())
        return force_gatherable((loss, self.stats(out), out.loss.sample_size), loss.device)

    @staticmethod
    def stats(out: PretrainingOutput) -> dict[str, Tensor]:
        """The logged values of one forward pass (detached float scalars)."""
        steps = out.stats.step_accuracy
        values = {
            "loss": out.loss.per_prediction,
            "acc": out.stats.accuracy,
            "acc_k1": steps[0],
            f"acc_k{steps.numel()}": steps[-1],
            "prob_pos": out.stats.prob_pos,
            "prob_neg": out.stats.prob_neg,
        }
        return {name: value.detach().float() for name, value in values.items()}

    def collect_feats(self, speech: Tensor, speech_lengths: Tensor, **kwargs: Any) -> dict[str, Tensor]:
        """The model reads waveforms: the "features" are the samples (for ESPnet's collect_stats)."""
        return {"feats": speech, "feats_lengths": speech_lengths}

    def save_pretrained(self, path: str | Path, heads: bool = True) -> None:
        """Write a checkpoint the ``wav2vec1`` frontend loads (``heads``: keep the prediction head)."""
        predictor = self.pretraining.predictor.state_dict() if heads else None
        save_wav2vec1(self.pretraining.backbone, path, predictor)


class Wav2Vec1Frontend(PretrainedFrontend):
    """wav2vec 1.0 network -> ``(B, T, C)`` features, one frame per 10 ms.

    Args:
        path: checkpoint (:func:`~espnet_ext.wav2vec1.checkpoint.load_wav2vec1`: this project's
            pre-training checkpoints and exports, or fairseq's wav2vec 1.0 ``.pt``).
        preset: instead of ``path``, a randomly initialised preset (``base``, ``large``, ``tiny``).
        config: instead of ``path`` or ``preset``, the network's architecture as a mapping of
            :class:`~espnet_ext.wav2vec1.config.Wav2Vec1Config` fields, randomly initialised: what
            a packed model's config holds (:meth:`portable_conf`). Exactly one of the three.
        allow_unsafe: load ``path`` with pickled code allowed (trusted files only).
        output: ``context`` (the context network's ``c``) or ``features`` (the encoder's ``z``;
            the context network is then not run).
        freeze_finetune_updates: optimizer updates during which the network is not trained
            (fairseq ``freeze_finetune_updates``, counted as the ``wav2vec2`` frontend counts them).
        fs: sampling rate of the input; only 16 kHz is accepted.
    """

    log_name = "wav2vec1"

    OUTPUTS = ("context", "features")

    def __init__(
        self,
        path: str | None = None,
        preset: str | None = None,
        config: Mapping[str, Any] | None = None,
        allow_unsafe: bool = False,
        output: str = "context",
        freeze_finetune_updates: int = 0,
        fs: int | str = 16000,
    ) -> None:
        super().__init__()
        check_one_source("wav2vec1", path=path, preset=preset, config=config)
        if output not in self.OUTPUTS:
            raise ValueError(f"wav2vec1 frontend: output must be one of {', '.join(self.OUTPUTS)}; found {output!r}")
        check_16k(fs, "wav2vec1")
        self.path, self.preset, self.allow_unsafe, self.output = path, preset, allow_unsafe, output
        if path is not None:
            self.model = load_wav2vec1(path, allow_unsafe=allow_unsafe).model
        elif preset is not None:
            self.model = wav2vec1_model(preset_config(preset))
        else:
            architecture = Wav2Vec1Config().replace(config_mapping(config, "wav2vec1"), "wav2vec1 frontend: config")
            self.model = wav2vec1_model(architecture)
        if output == "features":  # the context network is not run: no gradients (DDP would wait for them)
            self.model.feature_aggregator.requires_grad_(False)
        self.freeze_finetune_updates = freeze_finetune_updates
        count_updates(self)  # self.num_updates: optimizer updates, saved with the model

    def portable_conf(self) -> dict[str, Any]:
        """The options that build this frontend's network without its checkpoint, to replace
        ``path`` (and ``allow_unsafe``) in its ``frontend_conf``: ``config``, the architecture
        (plain values)."""
        return {"config": self.model.config.to_dict()}

    def output_size(self) -> int:
        config = self.model.config
        return config.context_dim if self.output == "context" else config.encoder_dim

    def _load_model(self) -> torch.nn.Module:
        return load_wav2vec1(self.path, allow_unsafe=self.allow_unsafe).model

    def forward(self, input: Tensor, input_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, L)`` 16 kHz samples, ``(B,)`` lengths -> ``(B, T, C)`` features, ``(B,)`` frames."""
        lengths = input_lengths.long()
        features_only = self.output == "features"
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.model(input, lengths, features_only=features_only)
        return (out.features if features_only else out.context), out.lengths
