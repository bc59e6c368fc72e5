"""The effective training schedule of an ESPnet training config, beside fairseq's recipe.

``python -m espnet_ext.bin.plan <config.yaml>`` (:func:`plan_config`) reads an asr1 or ssl1
config and prints what a run of it will do, in the units fairseq's recipes are written in:
audio per optimizer update, updates per epoch and in total, passes over the data, the
learning-rate curve (warmup / hold / decay in updates, initial, peak and final LR), the
updates with the backbone frozen, the feature extractor's gradient scale, the masking rates
(and the expected masked fraction, :func:`mask_statistics`), the final Gumbel temperature and
the gradient clipping. With a reference (:data:`REFERENCES`: fairseq's ``base_100h``,
``base_10h``, ``wav2vec2_base_librispeech``, ``wav2vec2_large_librivox``) the same rows are
computed for fairseq's recipe and differences are flagged.

What the numbers assume (ESPnet 202511, read from ``espnet2``):

* ``batch_bins`` counts the whole micro-batch over all GPUs (``build_sequence_iter_factory``
  builds the batches once, then gives rank ``r`` the utterances ``batch[r::world_size]``);
  ``--ngpu`` only sets ``min_batch_size`` and the audio each GPU gets.
* The ``numel`` sampler (:func:`numel_batches`) sorts utterances by length, ascending, and
  closes a batch *after* the utterance that makes ``count x longest`` (plus labels x vocabulary
  for ASR) exceed ``batch_bins``: a batch holds slightly more than ``batch_bins``, where
  fairseq's ``max_tokens`` is a ceiling. It counts uncropped lengths; with
  ``collate_fn_conf.crop_audio`` the model sees ``count x min(shortest, max_sample_size)``
  samples, which is what "audio per update" counts for pre-training.
* ``fairseq_batches: true`` (:mod:`espnet_ext.espnet.samplers`) batches as fairseq does
  (:func:`espnet_ext.data.batches.fairseq_batches`): sizes ``min(length, max_sample_size)``,
  ``batch_bins`` a ceiling over all GPUs, labels not counted, ``max_utterances_per_gpu`` a cap
  per GPU; the planner simulates that sampler instead of ``numel``.
* An optimizer update is ``accum_grad`` batches; an epoch is every batch (``floor(batches /
  accum_grad)`` updates) or ``num_iters_per_epoch`` batches when that is set.
* Schedulers step once per optimizer update; update ``u`` (1-based) uses ESPnet's step ``u``.
  fairseq's audio per update is ``max_tokens x GPUs x update_freq`` (a ceiling) and its
  updates per epoch are estimated as the corpus's audio over that.
* Masking follows fairseq's ``compute_mask_indices`` (``mask_type static``, overlaps allowed,
  ``min_masks`` 2 for time masks and 0 for channel masks), which this project's ``span_mask``
  implements, evaluated exactly for utterances of the stated length. ``require_same_masks``
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

import functools
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml

from espnet_ext.data.batches import fairseq_batches

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


class Schedule(NamedTuple):
    """A learning-rate curve over optimizer updates (``lr(u)``: the LR of update ``u``, 1-based)."""

    shape: str  # in words, comparable across ESPnet's and fairseq's schedulers
    warmup: int
    hold: int
    decay: int
    end: int | None  # the update where the scheduler's own curve ends (None: never)
    lr: Callable[[int], float]
    note: str = ""


class MaskStats(NamedTuple):
    """Expectations of fairseq's span masks on utterances of ``frames`` frames."""

    spans: float  # spans drawn (``max(min_masks, floor(p T / l + U))``)
    fraction: float  # masked frames / frames, one utterance
    runs: float  # contiguous masked runs (overlapping spans merge), one utterance
    run_frames: float  # frames per run (ratio of the expectations), one utterance
    same_fraction: float  # with require_same_masks over ``batch`` utterances: E[least count] / frames


class Row(NamedTuple):
    key: str
    label: str
    ours: Any
    reference: Any = None


# ---------------------------------------------------------------------------------------------
# Masking


def _starts(frames: int, num: int, length: int) -> int:
    """Start positions fairseq's ``compute_mask_indices`` (and ``span_mask``) draw ``num`` from:
    ``np.random.choice(sz - min_len, num_mask)``; the last frame is never a start + l - 1."""
    return frames - length if frames - length > num else num + 1


def _unmasked_probability(free: np.ndarray, starts: int, num: int) -> np.ndarray:
    """P(no start among ``num`` drawn without replacement from ``starts`` lies in a set of
    ``starts - free`` positions), per element of ``free`` (the positions outside the set)."""
    out = np.ones(free.shape, dtype=float)
    for i in range(num):
        out *= np.clip(free - i, 0, None) / (starts - i)
    return out


def _stats_given_spans(frames: int, num: int, length: int) -> tuple[float, float]:
    """(expected masked frames, expected runs) for exactly ``num`` spans requested."""
    starts = _starts(frames, num, length)
    if num <= 0 or starts <= 0:
        return 0.0, 0.0
    t = np.arange(frames)
    cover = np.clip(np.minimum(t, starts - 1) - np.maximum(t - length + 1, 0) + 1, 0, None)
    unmasked = _unmasked_probability(starts - cover, starts, num)
    cover2 = np.clip(np.minimum(t[1:], starts - 1) - np.maximum(t[1:] - length, 0) + 1, 0, None)
    both = _unmasked_probability(starts - cover2, starts, num)  # frames t-1 and t unmasked
    runs = float(1.0 - unmasked[0]) + float(np.sum(unmasked[:-1] - both))
    return float(np.sum(1.0 - unmasked)), runs


def masked_count_distribution(frames: int, num: int, length: int) -> np.ndarray:
    """``P(masked frames = c)``, ``c = 0..min(frames, num x length)``, for exactly ``num`` spans of
    ``length`` drawn as fairseq does (starts without replacement from :func:`_starts` positions,
    spans clipped at ``frames``). Exact: a scan over the frames with the state (starts drawn,
    frames the latest span still covers, masked so far); at frame ``t`` a start is drawn with
    probability ``(num - drawn) / (positions - t)`` (sequential sampling without replacement)."""
    return _count_distribution(int(frames), int(num), int(length)).copy()


@functools.lru_cache(maxsize=64)
def _count_distribution(frames: int, num: int, length: int) -> np.ndarray:
    starts = _starts(frames, num, length)
    if num <= 0 or frames <= 0:
        return np.ones(1)
    top = min(frames, num * length)
    p = np.zeros((num + 1, length + 1, top + 1))  # (starts drawn, frames still covered, masked)
    p[0, 0, 0] = 1.0
    left = np.arange(num, -1, -1, dtype=float)  # num - drawn
    for t in range(frames):
        if t < starts:
            pick = left / (starts - t)
            drawn = np.einsum("jdc,j->jc", p, pick)
            p *= (1.0 - pick)[:, None, None]
            p[1:, length, :] += drawn[:-1]
        p[:, 0, 1:] += p[:, 1, :-1]  # frame t masked by a span ending here
        p[:, 1:length, 1:] = p[:, 2:, :-1]  # ... or by one that goes on
        p[:, 1:length, 0] = 0.0
        p[:, length, :] = 0.0
    return p.sum(axis=(0, 1))


def mask_statistics(frames: int, mask_prob: float, mask_length: int, min_masks: int = 0, batch: int = 1) -> MaskStats:
    """Exact expectations of fairseq's ``compute_mask_indices`` (this project's ``span_mask``).

    fairseq draws ``n = max(min_masks, floor(mask_prob * T / mask_length + U))`` spans
    (``U ~ U[0, 1)``), their starts without replacement from ``[0, T - mask_length)`` (``[0, n]``
    when that is too short), each ``mask_length`` frames, clipped at ``T``; spans may overlap.
    So ``mask_prob`` is the expected *spans x length* per frame, not the masked fraction
    (0.65 and 10 mask ~49%). ``require_same_masks`` then keeps, in each of the ``batch``
    utterances, as many masked frames as the least masked one has: ``same_fraction`` is
    ``E[min of batch independent counts] / T`` (``batch`` 1: ``fraction``).

    Args:
        frames: ``T``, the utterance's frames (channels, for channel masks).
        mask_prob, mask_length, min_masks: fairseq's ``mask_prob``, ``mask_length``,
            ``min_masks`` (2 for wav2vec 2.0's time masks, 0 for channel masks).
        batch: utterances (all of ``T`` frames) whose masks are trimmed together.
    """
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob: expected a probability in [0, 1]; found {mask_prob}")
    if mask_length < 1 or frames < 1 or batch < 1:
        raise ValueError(
            f"expected mask_length >= 1, frames >= 1 and batch >= 1; found {mask_length}, {frames}, {batch}"
        )
    x = mask_prob * frames / mask_length
    low = math.floor(x)
    spans = masked = runs = 0.0
    counts = np.zeros(frames + 1)
    for n, weight in ((low, 1.0 - (x - low)), (low + 1, x - low)):
        if weight <= 0.0:
            continue
        n = max(min_masks, n)
        m, r = _stats_given_spans(frames, n, mask_length)
        spans, masked, runs = spans + weight * n, masked + weight * m, runs + weight * r
        if batch > 1:
            dist = _count_distribution(frames, n, mask_length)
            counts[: len(dist)] += weight * dist
    same = masked
    if batch > 1:  # E[min] = sum over k >= 1 of P(count >= k) ** batch
        at_least = np.clip(1.0 - np.cumsum(counts)[:-1], 0.0, 1.0)
        same = float(np.sum(at_least**batch))
    return MaskStats(spans, masked / frames, runs, masked / runs if runs else 0.0, same / frames)


def wav2vec2_frames(samples: int) -> int:
    """Frames of the standard wav2vec 2.0 extractor (receptive field 400, hop 320 samples)."""
    return (samples - 400) // 320 + 1 if samples >= 400 else 0


# ---------------------------------------------------------------------------------------------
# Batching


def numel_batches(
    lengths: Sequence[int], batch_bins: int, label_bins: Sequence[int] | None = None, min_batch_size: int = 1
) -> list[np.ndarray]:
    """ESPnet's ``NumElementsBatchSampler`` (padding, ``drop_last`` false): index arrays of batches.

    Utterances sorted by length (ascending, stable); a batch closes after the utterance that
    makes ``count x (its length + its label_bins)`` exceed ``batch_bins`` (once it has
    ``min_batch_size``); a last batch smaller than ``min_batch_size`` is spread over the others.
    ``label_bins``: labels x vocabulary per utterance (ASR's text shape), else 0.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    extra = np.zeros_like(lengths) if label_bins is None else np.asarray(label_bins, dtype=np.int64)
    order = np.argsort(lengths, kind="stable")
    sizes, count = [], 0
    for i in order:
        count += 1
        if count * (lengths[i] + extra[i]) > batch_bins and count >= min_batch_size:
            sizes.append(count)
            count = 0
    if count:
        sizes.append(count)
    if len(sizes) > 1 and sizes[-1] < min_batch_size:
        for i in range(sizes.pop()):
            sizes[-(i % len(sizes)) - 1] += 1
    return np.split(order, np.cumsum(sizes)[:-1])


def read_shape(path: Path) -> dict[str, list[int]]:
    """An ESPnet shape file (``uttid L[,D...]`` per line)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            try:
                out[parts[0]] = [int(v) for v in parts[1].split(",")]
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{number}: expected 'uttid L[,D]'; found {line.strip()!r}") from None
    if not out:
        raise ValueError(f"{path}: no utterances")
    return out


def read_train_shapes(stats_dir: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(samples per utterance, labels x vocabulary per utterance or None) from a stats dir's
    ``train/speech_shape`` and, if there is exactly one, ``train/text_shape.*``."""
    speech = read_shape(Path(stats_dir) / "train" / "speech_shape")
    keys = sorted(speech)
    texts = sorted((Path(stats_dir) / "train").glob("text_shape.*"))
    labels = None
    if len(texts) == 1:
        text = read_shape(texts[0])
        if set(text) != set(speech):
            raise ValueError(f"{texts[0]}: utterances differ from {Path(stats_dir) / 'train' / 'speech_shape'}")
        labels = np.array([int(np.prod(text[k])) for k in keys])
    return np.array([speech[k][0] for k in keys]), labels


# ---------------------------------------------------------------------------------------------
# Learning-rate schedules


def _tristage(lr: float, total: int, conf: Mapping[str, Any]) -> Schedule:
    """ESPnet's ``TristageLR`` (fairseq ``tri_stage``): linear warmup from ``init_lr_scale x lr``,
    hold, exponential decay to ``final_lr_scale x lr`` at ``max_steps``, then constant."""
    warmup = int(total * float(conf.get("warmup_ratio", 0.1)))
    hold = int(total * float(conf.get("hold_ratio", 0.4)))
    decay = total - warmup - hold
    init, final = float(conf.get("init_lr_scale", 0.01)), float(conf.get("final_lr_scale", 0.01))
    factor = -math.log(final) / decay if decay else 0.0

    def at(u: int) -> float:
        step = min(u, total)
        if step < warmup:
            return init * lr + (lr - init * lr) / warmup * step
        if step < warmup + hold:
            return lr
        return lr * math.exp(-factor * (step - warmup - hold))

    return Schedule("tri-stage: linear, hold, exponential", warmup, hold, decay, total, at)


def _warmuplr(lr: float, conf: Mapping[str, Any], total: int) -> Schedule:
    """ESPnet's ``WarmupLR``: linear to ``lr`` at ``warmup_steps``, then ``lr x sqrt(w / u)``."""
    w = float(conf.get("warmup_steps", 25000))
    return Schedule(
        "linear warmup, inverse square root decay",
        int(w),
        0,
        max(total - int(w), 0),
        None,
        lambda u: lr * w**0.5 * min(u**-0.5, u * w**-1.5),
    )


def _piecewise(lr: float, conf: Mapping[str, Any], total: int) -> Schedule:
    """ESPnet's ``PiecewiseLinearWarmupLR``: ``np.interp`` over ``(warmup_steps_list,
    warmup_lr_list)``; past the last step ESPnet returns ``lr x sqrt(last / u)``, not the last LR."""
    steps = [float(s) for s in conf.get("warmup_steps_list", [0, 25000])]
    lrs = [float(v) for v in conf.get("warmup_lr_list", [0.0, 0.001])]
    peak = max(lrs)
    first = steps[lrs.index(peak)]
    last = steps[len(lrs) - 1 - lrs[::-1].index(peak)]

    def at(u: int) -> float:
        return float(np.interp(u, steps, lrs, right=lr * steps[-1] ** 0.5 * u**-0.5))

    note = ""
    if total > steps[-1]:
        note = (
            f"after update {int(steps[-1])} the LR jumps to lr x sqrt({int(steps[-1])} / u) "
            f"= {at(int(steps[-1]) + 1):.3g} (ESPnet's 'right' branch)"
        )
    shape = "piecewise linear"
    if len(lrs) == 3 and lrs[0] == 0.0 and lrs[2] == 0.0:
        shape = "linear warmup from 0, linear decay to 0"
    return Schedule(shape, int(first), int(last - first), int(steps[-1] - last), int(steps[-1]), at, note)


def _cosine_restarts(conf: Mapping[str, Any], total: int) -> Schedule:
    """ESPnet's ``CosineAnnealingWarmupRestarts`` (``cycle_mult`` 1, ``gamma`` 1): linear from
    ``min_lr`` to ``max_lr`` over ``warmup_steps``, cosine to ``min_lr`` at ``first_cycle_steps``,
    then the cycle restarts."""
    cycle, w = int(conf["first_cycle_steps"]), int(conf.get("warmup_steps", 0))
    high, low = float(conf.get("max_lr", 0.1)), float(conf.get("min_lr", 0.001))
    if float(conf.get("cycle_mult", 1.0)) != 1.0 or float(conf.get("gamma", 1.0)) != 1.0:
        raise ValueError(
            "scheduler_conf: the planner handles cycle_mult 1 and gamma 1 only; "
            f"found {conf.get('cycle_mult')}, {conf.get('gamma')}"
        )

    def at(u: int) -> float:
        s = (u - 1) % cycle
        if s < w:
            return (high - low) * s / w + low
        return low + (high - low) * (1 + math.cos(math.pi * (s - w) / (cycle - w))) / 2

    note = f"restarts every {cycle} updates" if total > cycle else ""
    return Schedule("linear warmup, cosine decay", w, 0, cycle - w, cycle, at, note)


def _polynomial(lr: float, total: int, conf: Mapping[str, Any]) -> Schedule:
    """fairseq's ``polynomial_decay``: linear warmup from 0, then ``(lr - end) (1 - progress)^power + end``."""
    w, end, power = int(conf["warmup_updates"]), float(conf["end_lr"]), float(conf["power"])

    def at(u: int) -> float:
        if u <= w:
            return lr * u / w
        return end + (lr - end) * max(1 - (u - w) / (total - w), 0.0) ** power

    shape = f"linear warmup from 0, polynomial decay (power {power:g}) to {end:g}"
    if power == 1.0 and end == 0.0:
        shape = "linear warmup from 0, linear decay to 0"
    return Schedule(shape, w, 0, total - w, total, at)


def schedule_of(config: Mapping[str, Any], total: int | None, source: str) -> tuple[Schedule, int]:
    """The config's LR schedule and the updates it is drawn over (``total`` if known, else where
    the scheduler itself ends). Raises ``ValueError`` naming ``source`` for a scheduler the
    planner does not know."""
    name = config.get("scheduler")
    conf = config.get("scheduler_conf") or {}
    lr = float((config.get("optim_conf") or {}).get("lr", 1e-3))  # ESPnet's optimizers: lr default 1e-3
    name = name.lower() if isinstance(name, str) else name
    if name == "tristagelr":
        steps = int(float(conf.get("max_steps", 25000)))
        return _tristage(lr, steps, conf), total or steps
    if name == "warmuplr":
        return _warmuplr(lr, conf, total or 0), total or int(conf.get("warmup_steps", 25000))
    if name == "piecewiselinearwarmuplr":
        end = int(float((conf.get("warmup_steps_list") or [0, 25000])[-1]))
        return _piecewise(lr, conf, total or end), total or end
    if name == "cosineannealingwarmuprestarts":
        return _cosine_restarts(conf, total or 0), total or int(conf["first_cycle_steps"])
    if name in (None, "none"):
        return Schedule("constant", 0, total or 0, 0, None, lambda u: lr), total or 0
    raise ValueError(
        f"{source}: scheduler {name!r}: the planner knows tristagelr, warmuplr, "
        "piecewiselinearwarmuplr, cosineannealingwarmuprestarts or none"
    )


def _reference_schedule(ref: Reference) -> Schedule:
    kind, conf = ref.scheduler
    if kind == "tristage":
        return _tristage(ref.lr, ref.max_update, conf)
    return _polynomial(ref.lr, ref.max_update, conf)


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
        if fairseq:
            batches = fairseq_batches(
                lengths,
                bins,
                cap,
                config.get("max_utterances_per_gpu"),
                opts.ngpu,
                int(config.get("required_batch_size_multiple", 1)),
            )
        else:
            batches = numel_batches(lengths, bins, labels if task == "asr" else None, min_batch_size=opts.ngpu)
        seen = [
            len(b) * min(int(lengths[b].min()), cap or 1 << 62)
            if crop
            else int(np.minimum(lengths[b], cap or 1 << 62).sum())
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


def mask_batch(
    audio_per_gpu_batch_s: float | None, utterance_s: float, cap: int | None = None, multiple: int = 1
) -> int:
    """Utterances of ``utterance_s`` in a GPU's micro-batch (the masks ``require_same_masks``
    trims together): ``floor(audio / utterance)``, at most ``cap`` (utterances per GPU), cut to a
    multiple of ``multiple`` when there are at least that many (fairseq's
    ``required_batch_size_multiple``), at least 1; 1 when the audio is unknown."""
    if audio_per_gpu_batch_s is None or utterance_s <= 0:
        return 1
    count = max(1, int(math.floor(audio_per_gpu_batch_s / utterance_s + 1e-9)))
    count = count if cap is None else min(count, int(cap))
    return count // multiple * multiple or count


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
