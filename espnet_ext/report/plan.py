"""The effective training schedule of an ESPnet training config, beside fairseq's recipe.

``python -m espnet_ext.bin.plan <config.yaml>`` (:func:`plan_config`) reads an asr1 or ssl1
config and prints what a run of it will do, in the units fairseq's recipes are written in:
audio per optimizer update, updates per epoch and in total, passes over the data, the
learning-rate curve (warmup / hold / decay in updates, initial, peak and final LR), the
updates with the backbone frozen, the feature extractor's gradient scale, the masking rates
(and the expected masked fraction, :func:`espnet_ext.report.mask_stats.mask_statistics`), the
final Gumbel temperature and the gradient clipping. With a reference (:data:`REFERENCES`: fairseq's ``base_100h``,
``base_10h``, ``wav2vec2_base_librispeech``, ``wav2vec2_large_librivox``) the same rows are
computed for fairseq's recipe and differences are flagged.

What the numbers assume (ESPnet 202511, read from ``espnet2``):

* ``batch_bins`` counts the whole micro-batch over all GPUs (``build_sequence_iter_factory``
  builds the batches once, then gives rank ``r`` the utterances ``batch[r::world_size]``);
  ``--ngpu`` (the world size: GPUs per node x nodes, or CPU processes) sets ``min_batch_size``,
  the audio each GPU gets and, with cropping, what each rank's share is cropped to.
* The ``numel`` sampler (:func:`espnet_ext.data.sampling.numel_batches`) sorts utterances by length, ascending, and
  closes a batch *after* the utterance that makes ``count x longest`` (plus labels x vocabulary
  for ASR) exceed ``batch_bins``: a batch holds slightly more than ``batch_bins``, where
  fairseq's ``max_tokens`` is a ceiling. It counts uncropped lengths; with
  ``collate_fn_conf.crop_audio`` each rank crops its share to its own shortest utterance and
  sees ``count x min(shortest, max_sample_size)`` samples; their sum over the ranks is what
  "audio per update" counts for pre-training.
* ``fairseq_batches: true`` (:mod:`espnet_ext.espnet.samplers`) batches as fairseq does
  (:func:`espnet_ext.data.batches.fairseq_batches`): sizes ``min(length, max_sample_size)``,
  ``batch_bins`` a ceiling over all GPUs, labels not counted, ``max_utterances_per_gpu`` a cap
  per GPU; the planner simulates that sampler instead of ``numel``.
* An optimizer update is ``accum_grad`` batches; an epoch is every batch (``floor(batches /
  accum_grad)`` updates) or ``num_iters_per_epoch`` batches when that is set.
* Schedulers step once per optimizer update; update ``u`` (1-based) uses ESPnet's step ``u``
  (the curves: :mod:`espnet_ext.report.schedules`).
  fairseq's audio per update is ``max_tokens x GPUs x update_freq`` (a ceiling) and its
  updates per epoch are estimated as the corpus's audio over that.
* Masking follows fairseq's ``compute_mask_indices`` (``mask_type static``, overlaps allowed,
  ``min_masks`` 2 for time masks and 0 for channel masks), which this project's ``span_mask``
  implements, evaluated exactly for utterances of the stated length
  (:mod:`espnet_ext.report.mask_stats`). ``require_same_masks``
  (fairseq's default; channel masks always) trims every utterance of a GPU's batch to the
  least masked count: the masked fractions are ``E[min over B utterances] / T``, with ``B`` the
  utterances of that length that fit a GPU's micro-batch (``floor(audio per GPU batch /
  utterance)``, fairseq: ``floor(max_tokens / utterance)``, both cut to a multiple of
  ``required_batch_size_multiple`` when they reach it: fairseq's default 8; ours with
  ``fairseq_batches``), as if all had the same length.
  Spans per utterance and frames per run are counted before the trimming.

Nothing here builds a model: numpy and PyYAML only, except that an ssl1 config naming a
backbone ``preset`` reads that preset's defaults from :mod:`espnet_ext.wav2vec2.presets`.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from espnet_ext.data.batches import audio_seen
from espnet_ext.data.sampling import rank_shares, read_train_shapes, sampler_batches
from espnet_ext.report.mask_stats import mask_batch, mask_statistics, wav2vec2_frames
from espnet_ext.report.schedules import Schedule, polynomial_decay, schedule_of, tristage_lr

SAMPLE_RATE = 16000
ESPNET_GRAD_CLIP = 5.0  # espnet2 abs_task --grad_clip default
DEFAULT_UTTERANCE_S = 10.0  # utterance length at which masking is evaluated without shapes
NO_CLIP_ABOVE = 1.0e6  # a grad_clip this large never clips: "none"

# Defaults of the fine-tuning frontend (espnet_ext.espnet.frontend.Wav2Vec2Frontend.__init__).
FRONTEND_DEFAULTS = {
    "freeze_finetune_updates": 0,
    "mask_prob": 0.0,
    "mask_length": 10,
    "mask_channel_prob": 0.0,
    "mask_channel_length": 64,
    "feature_grad_mult": None,
    "require_same_masks": True,
}


class Reference(NamedTuple):
    """One of fairseq's wav2vec 2.0 recipes, as the planner needs it (see :data:`REFERENCES`)."""

    source: str  # the fairseq file the values come from
    task: str  # "asr" (fine-tuning) or "ssl" (pre-training)
    max_tokens: int  # dataset.max_tokens: samples per GPU batch (a ceiling)
    gpus: int  # distributed_world_size x update_freq (the recipe's effective GPUs)
    train_hours: float  # hours of the training data the recipe names
    max_update: int
    lr: float
    scheduler: tuple[str, dict[str, float]]
    freeze_finetune_updates: int
    feature_grad_mult: float
    mask_prob: float
    mask_length: int
    mask_channel_prob: float
    mask_channel_length: int
    channels: int  # encoder_embed_dim (what channel masks act on)
    latent_temp: tuple[float, float, float] | None
    clip_norm: float  # 0: no clipping (fairseq optimization.clip_norm default)
    max_sample_size: int | None
    required_batch_size_multiple: int = 8  # dataset.required_batch_size_multiple (fairseq's default)


_FT = "fairseq examples/wav2vec/config/finetuning/"
_PT = "fairseq examples/wav2vec/config/pretraining/"
#: fairseq's recipes. Values from the yaml files named in ``source``; where a file is silent,
#: fairseq's defaults: tri_stage init_lr_scale 0.01, polynomial_decay power 1 to 0 at
#: max_update, clip_norm 0, mask_length 10, Wav2Vec2Config latent_temp (2, 0.5, 0.999995).
#: GPUs: base_100h/10h run distributed_world_size 2 x update_freq 4 ("8 GPUs" in their
#: header). Data: train-clean-100 100.6 h, Libri-light's 10 h split, LibriSpeech 960.9 h,
#: LibriVox (LV-60k) ~53.2 kh (the wav2vec 2.0 paper).
REFERENCES: dict[str, Reference] = {
    "base_100h": Reference(
        _FT + "base_100h.yaml",
        "asr",
        3_200_000,
        2 * 4,
        100.6,
        80_000,
        3e-5,
        (
            "tristage",
            {"warmup_ratio": 0.1, "hold_ratio": 0.4, "decay_ratio": 0.5, "init_lr_scale": 0.01, "final_lr_scale": 0.05},
        ),
        0,
        0.0,
        0.65,
        10,
        0.5,
        64,
        768,
        None,
        0.0,
        None,
    ),
    "base_10h": Reference(
        _FT + "base_10h.yaml",
        "asr",
        3_200_000,
        2 * 4,
        10.0,
        20_000,
        5e-5,
        (
            "tristage",
            {"warmup_ratio": 0.1, "hold_ratio": 0.4, "decay_ratio": 0.5, "init_lr_scale": 0.01, "final_lr_scale": 0.05},
        ),
        10_000,
        0.0,
        0.65,
        10,
        0.5,
        64,
        768,
        None,
        0.0,
        None,
    ),
    "pretrain_base": Reference(
        _PT + "wav2vec2_base_librispeech.yaml",
        "ssl",
        1_400_000,
        64,
        960.9,
        400_000,
        5e-4,
        ("polynomial", {"warmup_updates": 32_000, "end_lr": 0.0, "power": 1.0}),
        0,
        0.1,
        0.65,
        10,
        0.0,
        10,
        768,
        (2.0, 0.5, 0.999995),
        0.0,
        250_000,
    ),
    "pretrain_large": Reference(
        _PT + "wav2vec2_large_librivox.yaml",
        "ssl",
        1_200_000,
        128,
        53_200.0,
        1_000_000,
        5e-3,
        ("polynomial", {"warmup_updates": 32_000, "end_lr": 0.0, "power": 1.0}),
        0,
        1.0,
        0.65,
        10,
        0.0,
        10,
        1024,
        (2.0, 0.1, 0.999995),
        0.0,
        320_000,
    ),
}


class Row(NamedTuple):
    key: str
    label: str
    ours: Any
    reference: Any = None


def _reference_schedule(ref: Reference) -> Schedule:
    kind, conf = ref.scheduler
    if kind == "tristage":
        return tristage_lr(ref.lr, conf, ref.max_update)
    return polynomial_decay(ref.lr, conf, ref.max_update)


# ---------------------------------------------------------------------------------------------
# Plans


class Options(NamedTuple):
    """Command-line overrides and data description (see ``espnet_ext.bin.plan``)."""

    ngpu: int = 1
    accum_grad: int | None = None
    batch_bins: int | None = None
    train_shape: Path | None = None
    train_hours: float | None = None
    utterance_seconds: float | None = None
    channels: int | None = None
    num_iters_per_epoch: int | None = None


class Model(NamedTuple):
    """What the planner reads of the backbone's options (None: not a wav2vec 2.0 model)."""

    freeze_finetune_updates: Any
    feature_grad_mult: Any
    mask_prob: float
    mask_length: int
    mask_channel_prob: float
    mask_channel_length: int
    channels: int
    latent_temp: tuple[float, float, float] | None
    require_same_masks: bool = True


def _model_of(config: Mapping[str, Any], task: str, channels: int | None) -> Model | None:
    if task == "ssl":
        if config.get("model") != "wav2vec2":
            return None
        conf = config.get("model_conf") or {}
        from espnet_ext.wav2vec2.config import Wav2Vec2Config
        from espnet_ext.wav2vec2.presets import preset_config

        base = preset_config(conf["preset"]) if conf.get("preset") else Wav2Vec2Config()
        c = {
            f: getattr(base, f)
            for f in (
                "feature_grad_mult",
                "mask_prob",
                "mask_length",
                "mask_channel_prob",
                "mask_channel_length",
                "encoder_embed_dim",
                "latent_temp",
                "require_same_masks",
            )
        }
        c.update({k: v for k, v in (conf.get("config") or {}).items() if k in c})
        return Model(
            0,
            c["feature_grad_mult"],
            c["mask_prob"],
            c["mask_length"],
            c["mask_channel_prob"],
            c["mask_channel_length"],
            c["encoder_embed_dim"],
            tuple(float(v) for v in c["latent_temp"]),
            bool(c["require_same_masks"]),
        )
    if config.get("frontend") != "wav2vec2":
        return None
    c = dict(
        FRONTEND_DEFAULTS, **{k: v for k, v in (config.get("frontend_conf") or {}).items() if k in FRONTEND_DEFAULTS}
    )
    fgm = "checkpoint's" if c["feature_grad_mult"] is None else c["feature_grad_mult"]
    preset = (config.get("frontend_conf") or {}).get("preset")
    if channels is None and preset:
        from espnet_ext.wav2vec2.presets import preset_config

        channels = preset_config(preset).encoder_embed_dim
    return Model(
        c["freeze_finetune_updates"],
        fgm,
        c["mask_prob"],
        c["mask_length"],
        c["mask_channel_prob"],
        c["mask_channel_length"],
        channels or 768,
        None,
        bool(c["require_same_masks"]),
    )


class Batching(NamedTuple):
    audio_per_batch_s: float | None  # audio the model sees per micro-batch
    batches_per_epoch: float | None
    data_hours: float | None
    utterance_s: float  # median (cropped) utterance: where masks are evaluated
    note: str


def _batching(config: Mapping[str, Any], task: str, opts: Options, source: str) -> Batching:
    if config.get("batch_type", "folded") != "numel":
        raise ValueError(
            f"{source}: batch_type {config.get('batch_type', 'folded')!r}: the planner simulates batch_type numel only"
        )
    bins = int(opts.batch_bins or config.get("batch_bins", 1_000_000))
    collate = config.get("collate_fn_conf") or {}
    crop, max_samples = bool(collate.get("crop_audio")), collate.get("max_sample_size")
    utt = opts.utterance_seconds or DEFAULT_UTTERANCE_S
    fairseq = bool(config.get("fairseq_batches"))
    cap = int(max_samples) if max_samples else None
    if opts.train_shape is not None:
        lengths, labels = read_train_shapes(opts.train_shape)
        batches = sampler_batches(
            lengths,
            bins,
            opts.ngpu,
            labels if task == "asr" else None,
            fairseq,
            cap,
            config.get("max_utterances_per_gpu"),
            int(config.get("required_batch_size_multiple", 1)),
        )
        # each rank's collate crops its share to its own shortest utterance
        order = str(config.get("sort_in_batch", "descending"))
        seen = [
            sum(audio_seen(lengths, part, cap, crop) for part in rank_shares(b, opts.ngpu, fairseq, order) if len(part))
            for b in batches
        ]
        if opts.utterance_seconds is None:
            utt = float(np.median(np.minimum(lengths, cap or 1 << 62))) / SAMPLE_RATE
        note = f"simulated over {len(lengths)} utterances of {opts.train_shape}" + (
            " (fairseq_batches)" if fairseq else ""
        )
        return Batching(
            float(np.mean(seen)) / SAMPLE_RATE,
            float(len(batches)),
            float(lengths.sum()) / SAMPLE_RATE / 3600,
            utt,
            note,
        )
    if opts.train_hours is not None:
        per_batch = bins / SAMPLE_RATE
        note = f"estimated from {opts.train_hours} h: batches hold batch_bins of audio " + (
            "(fairseq_batches: the ceiling, as fairseq's max_tokens)"
            if fairseq
            else "(labels x vocabulary and cropping not counted)"
        )
        return Batching(per_batch, opts.train_hours * 3600 / per_batch, opts.train_hours, utt, note)
    return Batching(None, None, None, utt, "no --train_shape/--train_hours: data-dependent rows unknown")


def _values(
    task: str,
    audio_per_update: float | None,
    upe: float | None,
    epochs: float | None,
    total: int | None,
    data_hours: float | None,
    schedule: Schedule,
    model: Model | None,
    frames: int,
    clip: Any,
    batch: int,
) -> dict[str, Any]:
    """The rows' values, for our config and for a reference alike (masks drawn the way
    fairseq's ``compute_mask_indices`` draws them, trimmed over ``batch`` utterances with
    ``require_same_masks``)."""
    v: dict[str, Any] = {
        "task": task,
        "audio_per_update_s": audio_per_update,
        "audio_per_gpu_batch_s": None,
        "updates_per_epoch": upe,
        "epochs": epochs,
        "total_updates": total,
    }
    v["passes_over_data"] = (
        total * audio_per_update / (data_hours * 3600) if None not in (total, audio_per_update, data_hours) else None
    )
    v.update(
        {
            "lr_scheduler": schedule.shape,
            "lr_schedule_end": schedule.end,
            "lr_warmup_updates": schedule.warmup,
            "lr_hold_updates": schedule.hold,
            "lr_decay_updates": schedule.decay,
            "lr_initial": schedule.lr(1),
            "lr_peak": max(schedule.lr(max(schedule.warmup, 1)), schedule.lr(schedule.warmup + 1)),
            "lr_final": schedule.lr(total) if total else None,
        }
    )
    if model is not None:
        time = (
            mask_statistics(frames, model.mask_prob, model.mask_length, 2, batch if model.require_same_masks else 1)
            if frames
            else None
        )
        chan = mask_statistics(model.channels, model.mask_channel_prob, model.mask_channel_length, 0, batch)
        v.update(
            {
                "frozen_backbone_updates": model.freeze_finetune_updates,
                "feature_grad_mult": model.feature_grad_mult,
                "mask_prob": model.mask_prob,
                "mask_length": model.mask_length,
                "require_same_masks": model.require_same_masks,
                "mask_batch": batch,
                "masked_fraction_utterance": time.fraction if time else None,
                "masked_fraction": time.same_fraction if time else None,
                "mask_spans": time.spans if time else None,
                "mask_run_frames": time.run_frames if time else None,
                "mask_channel_prob": model.mask_channel_prob,
                "mask_channel_length": model.mask_channel_length,
                "channel_masked_fraction": chan.same_fraction,
            }
        )
        if model.latent_temp is not None:
            start, end, decay = model.latent_temp
            v["gumbel_temp_final"] = max(end, start * decay**total) if total else None
    v["grad_clip"] = "none" if clip in (None, 0) or float(clip) >= NO_CLIP_ABOVE else float(clip)
    return v


def load_config(path: os.PathLike) -> dict[str, Any]:
    """A training config (YAML mapping); ``ValueError`` naming the file otherwise."""
    try:
        with open(path, encoding="utf-8") as f:
            config = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a mapping of training options; found {type(config).__name__}")
    return config


def task_of(config: Mapping[str, Any]) -> str:
    """ "ssl" for this project's pre-training models (``model: wav2vec2 | wav2vec1``), else "asr"."""
    return "ssl" if config.get("model") in ("wav2vec2", "wav2vec1") else "asr"


def plan_values(config: Mapping[str, Any], opts: Options = Options(), source: str = "config") -> dict[str, Any]:
    """The rows' values for a training config (see the module docstring for what they assume)."""
    task = task_of(config)
    batching = _batching(config, task, opts, source)
    accum = int(opts.accum_grad or config.get("accum_grad", 1))
    per_update = batching.audio_per_batch_s * accum if batching.audio_per_batch_s is not None else None
    iters = opts.num_iters_per_epoch or config.get("num_iters_per_epoch")
    if iters:
        upe: float | None = int(iters) // accum
    elif batching.batches_per_epoch is not None:
        upe = int(batching.batches_per_epoch // accum)
    else:
        upe = None
    max_epoch = int(config.get("max_epoch", 40))  # espnet2 --max_epoch default
    total = int(upe * max_epoch) if upe is not None else None
    schedule, drawn_over = schedule_of(config, total, source)
    model = _model_of(config, task, opts.channels)
    frames = wav2vec2_frames(int(batching.utterance_s * SAMPLE_RATE))
    per_gpu = batching.audio_per_batch_s / opts.ngpu if batching.audio_per_batch_s is not None else None
    v = _values(
        task,
        per_update,
        upe,
        float(max_epoch),
        total,
        batching.data_hours,
        schedule,
        model,
        frames,
        config.get("grad_clip", ESPNET_GRAD_CLIP),
        mask_batch(
            per_gpu,
            batching.utterance_s,
            *(
                (config.get("max_utterances_per_gpu"), int(config.get("required_batch_size_multiple", 1)))
                if config.get("fairseq_batches")
                else (None, 1)
            ),
        ),
    )
    v["audio_per_gpu_batch_s"] = per_gpu
    if total is None:
        v["lr_final"] = schedule.lr(drawn_over) if drawn_over else None
    v["_notes"] = [n for n in (batching.note, schedule.note) if n]
    if total is None:
        v["_notes"].append(f"total updates unknown: lr_final at the scheduler's end ({drawn_over})")
    elif schedule.end is not None and total != schedule.end:
        v["_notes"].append(
            f"training ends at update {total}, the LR schedule at {schedule.end}"
            + (": the LR never reaches its final value" if total < schedule.end else "")
        )
    v["_utterance_s"] = batching.utterance_s
    return v


def reference_values(
    name: str, utterance_s: float = DEFAULT_UTTERANCE_S, train_hours: float | None = None
) -> dict[str, Any]:
    """The rows' values for fairseq's recipe ``name`` (a key of :data:`REFERENCES`)."""
    if name not in REFERENCES:
        raise ValueError(f"reference: expected one of {', '.join(REFERENCES)}; found {name!r}")
    ref = REFERENCES[name]
    per_update = ref.max_tokens * ref.gpus / SAMPLE_RATE
    hours = train_hours if train_hours is not None else ref.train_hours
    upe = hours * 3600 / per_update
    model = Model(
        ref.freeze_finetune_updates,
        ref.feature_grad_mult,
        ref.mask_prob,
        ref.mask_length,
        ref.mask_channel_prob,
        ref.mask_channel_length,
        ref.channels,
        ref.latent_temp,
    )
    if ref.max_sample_size:
        utterance_s = min(utterance_s, ref.max_sample_size / SAMPLE_RATE)
    v = _values(
        ref.task,
        per_update,
        upe,
        ref.max_update / upe,
        ref.max_update,
        hours,
        _reference_schedule(ref),
        model,
        wav2vec2_frames(int(utterance_s * SAMPLE_RATE)),
        ref.clip_norm,
        mask_batch(ref.max_tokens / SAMPLE_RATE, utterance_s, multiple=ref.required_batch_size_multiple),
    )
    v["audio_per_gpu_batch_s"] = ref.max_tokens / SAMPLE_RATE
    v["_notes"] = [
        f"{name}: {ref.source}; audio per update = max_tokens x {ref.gpus} GPUs (a ceiling); {hours} h of training data"
    ]
    return v


def plan_config(
    path: os.PathLike, opts: Options = Options(), reference: str | None = None
) -> tuple[list[Row], list[str]]:
    """The rows for the config at ``path`` (and ``reference``'s beside them) and the notes.

    Without ``--train_shape``/``--train_hours``, a reference's training hours stand in for ours.
    """
    config = load_config(path)
    if reference is not None and reference not in REFERENCES:
        raise ValueError(f"reference: expected one of {', '.join(REFERENCES)}; found {reference!r}")
    if reference is not None and opts.train_shape is None and opts.train_hours is None:
        opts = opts._replace(train_hours=REFERENCES[reference].train_hours)
    ours = plan_values(config, opts, str(path))
    theirs = reference_values(reference, ours["_utterance_s"]) if reference else {}
    rows = [Row(k, LABELS[k], ours.get(k), theirs.get(k)) for k in LABELS if k in ours or k in theirs]
    return rows, ours["_notes"] + theirs.get("_notes", [])


LABELS: dict[str, str] = {
    "task": "task",
    "audio_per_update_s": "audio per optimizer update (s)",
    "audio_per_gpu_batch_s": "audio per GPU per micro-batch (s)",
    "updates_per_epoch": "updates per epoch",
    "epochs": "epochs",
    "total_updates": "updates in all",
    "passes_over_data": "passes over the training data",
    "lr_scheduler": "LR schedule",
    "lr_schedule_end": "LR schedule ends at update",
    "lr_warmup_updates": "LR warmup (updates)",
    "lr_hold_updates": "LR hold at peak (updates)",
    "lr_decay_updates": "LR decay (updates)",
    "lr_initial": "LR at update 1",
    "lr_peak": "LR peak",
    "lr_final": "LR at the last update",
    "frozen_backbone_updates": "backbone frozen (updates)",
    "feature_grad_mult": "feature extractor gradient scale",
    "mask_prob": "mask_prob (span starts per frame x length)",
    "mask_length": "mask_length (frames)",
    "require_same_masks": "require_same_masks (time masks)",
    "mask_batch": "utterances per GPU batch (masks trimmed together)",
    "masked_fraction_utterance": "expected masked fraction, one utterance",
    "masked_fraction": "expected masked fraction of frames",
    "mask_spans": "expected spans per utterance (before trimming)",
    "mask_run_frames": "frames per masked run (before trimming)",
    "mask_channel_prob": "mask_channel_prob",
    "mask_channel_length": "mask_channel_length (channels)",
    "channel_masked_fraction": "expected masked fraction of channels",
    "gumbel_temp_final": "Gumbel temperature at the last update",
    "grad_clip": "gradient clipping (max norm)",
}


def same(a: Any, b: Any, rel: float = 0.02) -> bool:
    """Equal, or within ``rel`` for numbers (the flag's tolerance)."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-12)
    return a == b


def _fmt(v: Any) -> str:
    if v is None:
        return "?"
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e9:
            return f"{int(v)}"
        return f"{v:.3g}" if abs(v) < 1e-2 or abs(v) >= 1e4 else f"{v:.3f}".rstrip("0").rstrip(".")
    return str(v)


def format_table(rows: Sequence[Row], notes: Sequence[str], reference: str | None = None) -> str:
    """A plain-text table: row, ours[, fairseq, flag], then the notes."""
    head = ["row", "ours"] + ([f"fairseq {reference}", ""] if reference else [])
    body = []
    for r in rows:
        line = [r.label, _fmt(r.ours)]
        if reference:
            flag = "" if r.ours is None or r.reference is None else ("same" if same(r.ours, r.reference) else "differs")
            line += [_fmt(r.reference), flag]
        body.append(line)
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(x, widths)).rstrip() for x in [head] + body)
    return text + "\n" + "".join(f"note: {n}\n" for n in notes)


def to_json(rows: Sequence[Row], notes: Sequence[str]) -> str:
    return json.dumps(
        {
            "rows": {
                r.key: {
                    "ours": r.ours,
                    "reference": r.reference,
                    "same": None if r.reference is None else same(r.ours, r.reference),
                }
                for r in rows
            },
            "notes": list(notes),
        },
        indent=1,
    )


#: the rows :func:`summary` names, with their short labels
SUMMARY_ROWS: tuple[tuple[str, str], ...] = (
    ("audio_per_update_s", "s/update"),
    ("audio_per_gpu_batch_s", "s/GPU batch"),
    ("total_updates", "updates"),
    ("updates_per_epoch", "updates/epoch"),
    ("passes_over_data", "passes"),
    ("lr_peak", "LR peak"),
    ("lr_final", "LR last"),
    ("frozen_backbone_updates", "frozen"),
    ("feature_grad_mult", "extractor grad x"),
    ("mask_batch", "utterances/GPU batch"),
    ("masked_fraction", "masked"),
    ("channel_masked_fraction", "channels masked"),
    ("gumbel_temp_final", "Gumbel temp last"),
    ("grad_clip", "clip"),
)


def summary(rows: Sequence[Row], reference: str | None = None) -> str:
    """The plan in one paragraph (what config headers quote): the main rows as ``value label``,
    the LR curve as warmup/hold/decay updates, and, with a reference, the rows that differ."""
    by_key = {r.key: r for r in rows}
    parts = []
    for key, label in SUMMARY_ROWS:
        if key in by_key and by_key[key].ours is not None:
            value = _fmt(by_key[key].ours)
            parts.append(f"{label} {value}" if key == "grad_clip" else f"{value} {label}")
        if key == "passes_over_data" and "lr_scheduler" in by_key:
            parts.append(
                f"LR {by_key['lr_scheduler'].ours} ({_fmt(by_key['lr_warmup_updates'].ours)}/"
                f"{_fmt(by_key['lr_hold_updates'].ours)}/{_fmt(by_key['lr_decay_updates'].ours)} updates)"
            )
    text = ", ".join(parts)
    if reference:
        differ = [
            r.key for r in rows if r.ours is not None and r.reference is not None and not same(r.ours, r.reference)
        ]
        text += (
            f"; fairseq {reference}: differs in " + ", ".join(differ)
            if differ
            else f"; fairseq {reference}: every row the same"
        )
    return text
