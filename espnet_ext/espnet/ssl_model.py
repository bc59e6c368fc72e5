"""wav2vec 2.0 pre-training as an ESPnet SSL model (``model: wav2vec2`` in ``espnet2.tasks.ssl``).

:class:`ESPnetWav2Vec2Model` is the whole of
:class:`~espnet_ext.wav2vec2.pretraining.Wav2Vec2Pretraining` (fairseq's ``Wav2Vec2Model`` and
``Wav2vecCriterion``) as one ``model_choices`` entry: ``model_conf`` picks the preset, overrides
``Wav2Vec2Config`` fields (fairseq names), sets alpha, beta and an optional context network, and
:meth:`~ESPnetWav2Vec2Model.save_pretrained` writes what the ``wav2vec2`` frontend loads.
:class:`Wav2Vec2TaskMixin` makes ESPnet's SSLTask build it from ``model_conf`` alone (no
frontend, encoder, losses or token list); :class:`MaxSampleCrop` and
:class:`NormalizeWholeUtterances` add fairseq's ``max_sample_size`` and ``task.normalize`` to
ESPnet's collate, and a training batch cropped to one length (``crop_audio``, fairseq's crop to
the shortest) is marked ``speech_unpadded`` (:func:`mark_unpadded`), which makes the model take
its unpadded path (no lengths, no mask: ``nn.GroupNorm`` and flash attention on GPUs).
Annotated configs: ``egs2/librispeech/ssl1/conf/train_ssl.yaml`` (BASE) and
``conf/tuning/train_ssl_w2v2_downsample.yaml`` there (the downsampling context network).

Reference semantics (fairseq): ``forward`` returns the criterion's loss divided by its
``sample_size`` M (masked frames) with weight M, so ESPnet's weighted average over workers is
fairseq's gradient normalisation (with gradient accumulation ESPnet averages the micro-batch
means instead); the Gumbel temperature decays per optimizer update. Stats, averaged with weight
M: ``loss``, ``loss_m`` (``log(K + 1)`` at chance), ``loss_d``, ``feature_pen``, ``code_ppl``,
``prob_ppl``, ``acc``, ``sim_pos``, ``sim_neg``, ``temp``. Why ESPnet's SSL slots are not used:
docs/architecture.md.
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel
from torch import Tensor

from espnet_ext.espnet.updates import count_updates, updates_done
from espnet_ext.wav2vec2.compile import compile_encoder, compile_layers
from espnet_ext.wav2vec2.config import Wav2Vec2Config
from espnet_ext.wav2vec2.downsample import downsampling_context_network
from espnet_ext.wav2vec2.importers import save_backbone
from espnet_ext.wav2vec2.presets import preset_config
from espnet_ext.wav2vec2.pretraining import PretrainingOutput, downsampling_context_options, wav2vec2_pretraining
from espnet_ext.wav2vec2.waveform import normalize_waveforms

#: ``model_conf.torch_compile`` values (see :class:`ESPnetWav2Vec2Model`).
COMPILE_CHOICES = (False, True, "layers", "encoder")


def _config(preset: str, overrides: Mapping[str, Any] | None) -> Wav2Vec2Config:
    values = preset_config(preset).to_dict()
    unknown = sorted(set(overrides or {}) - set(values))
    if unknown:
        raise ValueError(
            f"wav2vec2 model_conf.config: unknown fields {unknown}; expected Wav2Vec2Config fields "
            f"(fairseq names), e.g. encoder_layerdrop, num_negatives, latent_temp"
        )
    values.update(overrides or {})
    return Wav2Vec2Config.from_dict(values)


class CollapseMonitor:
    """Warns when pre-training goes wrong in the two usual ways.

    * codebook collapse: code perplexity below ``ppl_fraction`` x G·V for ``patience``
      training batches in a row;
    * no learning: ``L_m`` within ``chance_margin`` (relative) of chance, ``log(K + 1)``, for
      ``patience`` training batches in a row, after the first ``patience`` batches.

    Values are read every ``every`` training batches only (one host synchronisation per read).
    A warning is logged when a condition starts to hold long enough, and again every
    ``patience`` batches while it lasts.
    """

    def __init__(
        self,
        num_vars: int,
        num_negatives: int,
        ppl_fraction: float = 0.1,
        chance_margin: float = 0.02,
        patience: int = 1000,
        every: int = 50,
    ) -> None:
        if not 0 <= ppl_fraction <= 1 or patience < 1 or every < 1:
            raise ValueError(
                f"collapse monitor: expected 0 <= ppl_fraction <= 1, patience >= 1, every >= 1; "
                f"found {ppl_fraction}, {patience}, {every}"
            )
        self.num_vars, self.chance = num_vars, math.log(num_negatives + 1)
        self.ppl_fraction, self.chance_margin = ppl_fraction, chance_margin
        self.patience, self.every = patience, every
        self.batches = 0
        self.since = {"collapse": None, "chance": None}

    def update(self, code_ppl: Tensor, loss_m: Tensor) -> None:
        self.batches += 1
        if self.batches % self.every:
            return
        ppl, lm = float(code_ppl), float(loss_m)
        self._check(
            "collapse",
            ppl < self.ppl_fraction * self.num_vars,
            f"code perplexity {ppl:.1f} < {self.ppl_fraction:g} x G·V = {self.ppl_fraction * self.num_vars:.1f}"
            " (codebook collapse: raise diversity_weight or the Gumbel temperature)",
        )
        self._check(
            "chance",
            self.batches > self.patience and lm > self.chance * (1 - self.chance_margin),
            f"L_m {lm:.3f} at chance, log(K+1) = {self.chance:.3f} (not learning: check the learning "
            "rate, masking and data)",
        )

    def _check(self, name: str, bad: bool, message: str) -> None:
        if not bad:
            self.since[name] = None
            return
        if self.since[name] is None:
            self.since[name] = self.batches
        held = self.batches - self.since[name]
        if held >= self.patience and (held - self.patience) % self.patience < self.every:
            logging.warning("wav2vec2 pre-training: %s for %d training batches", message, held)


class ESPnetWav2Vec2Model(AbsESPnetModel):
    """wav2vec 2.0 pre-training for ESPnet's trainer (see the module docstring).

    Args:
        preset: backbone preset (:func:`~espnet_ext.wav2vec2.presets.preset_config`).
        config: overrides of :class:`~espnet_ext.wav2vec2.config.Wav2Vec2Config` fields.
        context: None for the standard Transformer context network, or keyword arguments of
            :func:`~espnet_ext.wav2vec2.pretraining.downsampling_context` for the downsampling one.
        diversity_weight: fairseq ``loss_weights[0]`` (alpha, BASE 0.1).
        feature_penalty_weight: fairseq ``loss_weights[1]`` (beta, BASE 10).
        normalize_waveform: fairseq ``task.normalize`` (per-utterance zero mean, unit variance;
            in the task's pipeline over whole utterances before cropping,
            :class:`NormalizeWholeUtterances`); written into checkpoints by :meth:`save_pretrained`.
        collapse_ppl_fraction, collapse_patience: :class:`CollapseMonitor` (warnings only).
        torch_compile: ``true`` or ``layers``: compile the Transformer layers
            (:func:`~espnet_ext.wav2vec2.compile.compile_layers`, dynamic shapes); ``encoder``: the
            backbone's whole Transformer (:func:`~espnet_ext.wav2vec2.compile.compile_encoder`, static
            shapes, ``mode="reduce-overhead"``: CUDA graphs on GPUs, for batches cropped to one length,
            each new batch shape compiled once). Off by default: the first step pays the compilation,
            and on CPU it is not faster.
    """

    builds_from_model_conf = True  # Wav2Vec2TaskMixin builds it from model_conf alone

    def __init__(
        self,
        preset: str = "base",
        config: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        diversity_weight: float = 0.1,
        feature_penalty_weight: float = 10.0,
        normalize_waveform: bool = False,
        collapse_ppl_fraction: float = 0.1,
        collapse_patience: int = 1000,
        torch_compile: bool | str = False,
    ) -> None:
        super().__init__()
        if torch_compile not in COMPILE_CHOICES:
            raise ValueError(
                f"wav2vec2 model_conf.torch_compile: expected one of {COMPILE_CHOICES}; found {torch_compile!r}"
            )
        self.config = _config(preset, config)
        self.context_options = None if context is None else downsampling_context_options(self.config, **context)
        network = None if context is None else downsampling_context_network(**self.context_options)
        self.pretraining = wav2vec2_pretraining(
            self.config,
            context=network,
            diversity_weight=diversity_weight,
            feature_penalty_weight=feature_penalty_weight,
        )
        self.normalize_waveform = normalize_waveform
        count_updates(self)  # self.num_updates: optimizer updates, sets the Gumbel temperature
        self.monitor = CollapseMonitor(
            self.config.latent_groups * self.config.latent_vars,
            self.config.num_negatives,
            collapse_ppl_fraction,
            patience=collapse_patience,
        )
        if torch_compile in (True, "layers"):
            compile_layers(self.pretraining)
        elif torch_compile == "encoder":
            compile_encoder(self.pretraining.backbone, mode="reduce-overhead")

    def forward(
        self,
        speech: Tensor,
        speech_lengths: Tensor,
        speech_normalized: bool = False,
        speech_unpadded: bool = False,
        **kwargs: Any,
    ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """``(B, L)`` waveforms, ``(B,)`` lengths -> (loss per masked frame, stats, weight = masked frames).

        ``speech_normalized``: the batch comes from :class:`NormalizeWholeUtterances` (normalised
        over whole utterances before cropping, as fairseq): not normalised again.
        ``speech_unpadded``: every utterance is ``L`` samples long (:func:`mark_unpadded`): the
        model runs without lengths or masks (the same numbers, up to float32 summation order).
        Other batch entries (``text``) are ignored.

        Raises:
            ValueError: ``speech_unpadded`` with lengths on the CPU that are not all ``L``.
        """
        lengths = speech_lengths.long()
        if speech_unpadded is True and lengths.device.type == "cpu" and bool((lengths != speech.size(1)).any()):
            raise ValueError(
                f"speech_unpadded: expected every speech_lengths to be {speech.size(1)} (the batch's "
                f"samples); found {lengths.tolist()}"
            )
        if self.normalize_waveform and speech_normalized is not True:
            speech = normalize_waveforms(speech, lengths)
        unpadded = speech_unpadded is True
        out = self.pretraining(speech, None if unpadded else lengths, num_updates=self.num_updates)
        loss = out.loss.per_frame
        stats = self.stats(out)
        if self.training:
            self.monitor.update(stats["code_ppl"], stats["loss_m"])
        loss, stats, weight = force_gatherable((loss, stats, out.loss.sample_size), loss.device)
        return loss, stats, weight

    @staticmethod
    def stats(out: PretrainingOutput) -> dict[str, Tensor]:
        """The logged values of one forward pass (detached scalars)."""
        values = {
            "loss": out.loss.per_frame,
            "loss_m": out.loss.contrastive_per_frame,
            "loss_d": out.loss.diversity,
            "feature_pen": out.loss.feature_penalty,
            "code_ppl": out.quantizer.code_perplexity,
            "prob_ppl": out.quantizer.prob_perplexity,
            "acc": out.stats.accuracy,
            "sim_pos": out.stats.sim_pos,
            "sim_neg": out.stats.sim_neg,
            "temp": out.quantizer.temperature,
        }
        return {name: value.detach().float() for name, value in values.items()}

    def collect_feats(self, speech: Tensor, speech_lengths: Tensor, **kwargs: Any) -> dict[str, Tensor]:
        """The model reads waveforms: the "features" are the samples (for ESPnet's collect_stats)."""
        return {"feats": speech, "feats_lengths": speech_lengths}

    def save_pretrained(self, path, heads: bool = True) -> None:
        """Write the backbone and the heads (``save_backbone`` format; the ``wav2vec2`` frontend and
        :func:`~espnet_ext.wav2vec2.pretraining.pretraining_from_checkpoint` load it). A
        downsampling context network goes into ``pretraining_state`` as ``context_network.*``
        and its options into ``context`` (the ``w2v2_context`` encoder's ``path`` loads both).
        ``heads=False``: the backbone (and context network) alone, the small export for fine-tuning."""
        state = self.pretraining.pretraining_state()
        if not heads:
            state = {k: v for k, v in state.items() if k.startswith("context_network.")}
        save_backbone(
            self.pretraining.backbone,
            self.config,
            path,
            pretraining_state=state,
            context=self.context_options,
            num_updates=updates_done(self),
            normalize=self.normalize_waveform,
        )


class NormalizeWholeUtterances:
    """fairseq ``task.normalize`` as its data set applies it: every utterance zero-mean,
    unit-variance over its *whole* length (``F.layer_norm``, eps 1e-5), before the collate
    crops it (ESPnet's ``crop_audio``, :class:`MaxSampleCrop`). The batch gets
    ``speech_normalized: True``, which tells :meth:`ESPnetWav2Vec2Model.forward` not to
    normalise the cropped batch again (its statistics would then be the crop's). Picklable."""

    def __init__(self, collate: Any) -> None:
        self.collate = collate

    def __call__(self, data: Any) -> Any:
        normalized = []
        for key, item in data:
            speech = np.asarray(item["speech"], dtype=np.float64)
            speech = (speech - speech.mean()) / np.sqrt(speech.var() + 1e-5) if speech.size else speech
            normalized.append((key, dict(item, speech=speech.astype(np.float32))))
        keys, batch = self.collate(normalized)
        return keys, dict(batch, speech_normalized=True)


def mark_unpadded(batch: dict[str, Any]) -> dict[str, Any]:
    """``batch`` with ``speech_unpadded: True`` when every ``speech_lengths`` is the batch's
    ``speech`` length (a batch cropped to one length), else ``batch`` itself. The collate's
    lengths are host tensors: reading them costs no device synchronisation."""
    if bool((batch["speech_lengths"] == batch["speech"].size(1)).all()):
        return dict(batch, speech_unpadded=True)
    return batch


class MarkUnpadded:
    """A training collate whose batches :func:`mark_unpadded` marks (with ``crop_audio`` every
    batch is cropped to its shortest utterance). Picklable, for DataLoader workers."""

    def __init__(self, collate: Any) -> None:
        self.collate = collate

    def __call__(self, data: Any) -> Any:
        keys, batch = self.collate(data)
        return keys, mark_unpadded(batch)


class MaxSampleCrop:
    """fairseq's ``task.max_sample_size`` for training batches (``collate_fn_conf.max_sample_size``).

    After ESPnet's collate (which, with ``crop_audio``, crops every utterance to the batch's
    shortest at a random offset), an utterance longer than ``max_samples`` is cropped to a
    window of ``max_samples`` at a uniformly random offset; shorter ones are kept whole.
    Validation batches are not cropped. A batch of one length is marked (:func:`mark_unpadded`).
    Picklable, for DataLoader workers.
    """

    def __init__(self, collate: Any, max_samples: int) -> None:
        if max_samples < 1:
            raise ValueError(
                f"collate_fn_conf.max_sample_size: expected a positive number of samples; found {max_samples}"
            )
        self.collate, self.max_samples = collate, max_samples

    def __call__(self, data: Any) -> Any:
        keys, batch = self.collate(data)
        speech, lengths = batch["speech"], batch["speech_lengths"]
        n = self.max_samples
        if speech.size(1) > n:
            excess = (lengths.long() - n).clamp(min=0)
            offsets = (torch.rand(lengths.shape) * (excess + 1).to(torch.float)).long().clamp(max=excess)
            index = offsets[:, None] + torch.arange(n)
            batch = dict(batch, speech=speech.gather(1, index), speech_lengths=lengths.clamp(max=n))
        return keys, mark_unpadded(batch)


def _builds_wav2vec2(args: argparse.Namespace) -> bool:
    """Whether ``args.model`` names a model class that sets ``builds_from_model_conf`` (this
    project's pre-training models: wav2vec 2.0 here, wav2vec 1.0 in espnet_ext.espnet.wav2vec1)."""
    from espnet2.tasks.ssl import model_choices

    name = getattr(args, "model", None)
    if name is None or name not in model_choices.classes:
        return False
    return bool(getattr(model_choices.get_class(name), "builds_from_model_conf", False))


class Wav2Vec2TaskMixin:
    """Put before ESPnet's ``SSLTask`` in a subclass's bases: ``model: wav2vec2`` is then built from
    its ``model_conf`` (no frontend, normalize, encoder or loss built; their options are unused;
    ``--init``, if given, replaces fairseq's initialisation as it does for ESPnet's models),
    ``--token_list`` is optional (ESPnet's own SSL models still need it and say so when building),
    and the preprocessor (noise / RIR / volume options) gets no tokenizer. Every other ``model``
    is built by ESPnet's code unchanged. (A mixin, not a subclass, because this module must not
    import ``espnet2.tasks.ssl``: the registry imports this module while that one is loading.)

    Example (``espnet_ext/espnet/tasks.py``)::

        class SSLTask(Wav2Vec2TaskMixin, espnet2.tasks.ssl.SSLTask):
            trainer = Trainer
    """

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_task_arguments(parser)
        required = parser.get_default("required")
        if "token_list" in required:
            required.remove("token_list")

    @classmethod
    def build_collate_fn(cls, args: argparse.Namespace, train: bool):
        collate = super().build_collate_fn(args, train)
        if not _builds_wav2vec2(args) or args.collect_stats:
            return collate
        if (args.model_conf or {}).get("normalize_waveform"):
            collate = NormalizeWholeUtterances(collate)  # before any crop, as fairseq
        max_samples = (args.collate_fn_conf or {}).get("max_sample_size")
        if not train:
            return collate
        if max_samples is None:
            return MarkUnpadded(collate)
        return MaxSampleCrop(collate, int(max_samples))

    @classmethod
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool):
        if not _builds_wav2vec2(args):
            return super().build_preprocess_fn(args, train)
        if not args.use_preprocessor:
            return None
        from espnet2.train.preprocessor import CommonPreprocessor

        return CommonPreprocessor(
            train=train,
            token_type=None,
            token_list=None,
            rir_scp=args.rir_scp,
            rir_apply_prob=args.rir_apply_prob,
            noise_scp=args.noise_scp,
            noise_apply_prob=args.noise_apply_prob,
            noise_db_range=args.noise_db_range,
            speech_volume_normalize=args.speech_volume_normalize,
        )

    @classmethod
    def build_model(cls, args: argparse.Namespace) -> AbsESPnetModel:
        if not _builds_wav2vec2(args):
            return super().build_model(args)
        from espnet2.tasks.ssl import model_choices

        model = model_choices.get_class(args.model)(**(args.model_conf or {}))
        logging.info(
            "wav2vec2 pre-training model %s; frontend, normalize, encoder and loss options are not used",
            type(model).__name__,
        )
        if getattr(args, "init", None) is not None:  # replaces fairseq's initialisation, as asked
            from espnet2.torch_utils.initialize import initialize

            initialize(model, args.init)
        return model
