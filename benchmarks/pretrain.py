"""Pre-training step (forward + backward + AdamW update) of our ``Wav2Vec2Pretraining`` against
``transformers.Wav2Vec2ForPreTraining`` on the same weights and config.

    python -m benchmarks pretrain [--size tiny|base] [--batch 4] [--seconds 4] [--repeats 3]
                                        [--device cpu|cuda] [--bf16] [--compile]

A random Hugging Face ``Wav2Vec2ForPreTraining`` (``num_negatives`` 100, ``mask_time_prob``
0.65, ``mask_time_length`` 10, layerdrop 0) is saved to a temporary directory and ours is
loaded from it with :func:`~espnet_ext.wav2vec2.pretraining.pretraining_from_checkpoint`,
so both have the same weights, quantizer and projections. Our feature penalty weight is 0
(Hugging Face has none), so both minimise ``L_m + 0.1 * L_d`` per masked frame.

Each step draws its own masks and negatives, as each implementation does in training: ours
inside ``forward`` (on the model's device); Hugging Face's on the host with
``_compute_mask_indices`` and ``_sample_negative_indices``, as its pre-training example
does, then copied to the device. The Gumbel temperature follows the update count in both.
The batch is ``--batch`` utterances of ``--seconds`` down to 0.6x that, zero-padded.

The two are timed interleaved (ours, reference, ours, ...) after one warm-up step each, so
that a machine shared with other jobs slows both alike; medians are printed. The losses of
the first step are printed too: they differ (different masks, negatives and Gumbel noise)
but must both be near chance, ``log(K + 1)`` per masked frame, at initialisation.

``--compile`` adds a third model to the rotation: a copy of ours (same weights) whose
Transformer layers are compiled (:func:`~espnet_ext.wav2vec2.compile.compile_layers`,
dynamic shapes). Its first step, which compiles, is timed apart and printed; the ratio
line then compares the compiled copy with both eager models.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import tempfile
from collections.abc import Callable
from typing import NamedTuple

import torch

from benchmarks.common import (
    StepFigures,
    autocast,
    compiled_summary,
    enable_cpu_kernels,
    machine,
    padded_noise_batch,
    step_args,
    time_compared,
)
from benchmarks.finetune import SIZES as FINETUNE_SIZES

PRETRAINING = dict(num_negatives=100, mask_time_prob=0.65, mask_time_length=10, layerdrop=0.0)
SIZES = {
    # finetune's tiny backbone with a quantizer like our ``tiny`` preset's (V = 16, final_dim 32)
    "tiny": dict(FINETUNE_SIZES["tiny"], codevector_dim=32, proj_codevector_dim=32, num_codevectors_per_group=16),
    "base": dict(),  # transformers' defaults are the BASE model (G = 2, V = 320, final_dim 256)
}
LEARNING_RATE = 1e-4


def build_models(size: str, device: str):
    """(ours, reference) in training mode on ``device``, with the same weights."""
    from transformers import Wav2Vec2Config, Wav2Vec2ForPreTraining

    from espnet_ext.wav2vec2.pretraining import pretraining_from_checkpoint

    torch.manual_seed(0)
    reference = Wav2Vec2ForPreTraining(Wav2Vec2Config(**SIZES[size], **PRETRAINING))
    with tempfile.TemporaryDirectory() as directory:
        reference.save_pretrained(directory)
        ours = pretraining_from_checkpoint(directory, feature_penalty_weight=0.0)
    return ours.to(device).train(), reference.to(device).train()


def our_step(
    model,
    speech,
    lengths,
    bf16: bool,
    losses: list[float],
    *,
    fused: bool = False,
    around: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> Callable[[], None]:
    """Ours: masks and negatives drawn inside ``forward``. ``lengths`` None: the unpadded path (a
    batch cropped to one length); ``fused``: ``AdamW(fused=True)``; ``around``: a context each
    step runs in (an SDPA backend, a cuDNN setting)."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, fused=fused or None)
    updates = [0]

    def step() -> None:
        with around() if around is not None else contextlib.nullcontext(), autocast(speech.device.type, bf16):
            out = model(speech, lengths, num_updates=updates[0])
        out.loss.per_frame.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        updates[0] += 1
        if len(losses) < 1:
            losses.append(float(out.loss.per_frame.detach()))

    return step


def reference_step(model, speech, attention_mask, bf16: bool, losses: list[float]) -> Callable[[], None]:
    """Hugging Face: host-side masks and negatives, as ``run_wav2vec2_pretraining_no_trainer.py``.

    The group-norm quirk: Hugging Face's example refuses configs other than
    ``do_stable_layer_norm=True, feat_extract_norm="layer"`` (LARGE-style), and its docs advise
    not passing ``attention_mask`` to ``"group"`` models, whose extractor GroupNorm takes
    statistics over the padded length. ``Wav2Vec2ForPreTraining`` itself runs BASE (``"group"``)
    fine, and here it gets ``attention_mask`` as the example passes it: the mask never reaches
    its extractor, only the Transformer, the masks and the negatives. ``attention_mask`` None: a
    batch of one length, run without one (as Hugging Face advises for ``"group"`` models). Ours, given ``lengths``,
    takes those GroupNorm statistics over each utterance's valid frames (a documented deviation
    in :mod:`espnet_ext.wav2vec2.modules`): features of padded utterances differ slightly, the
    work per step hardly does.
    """
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    config, device = model.config, speech.device
    frames = int(model._get_feat_extract_output_lengths(speech.size(1)))
    host_attention_mask = None if attention_mask is None else attention_mask.cpu()  # the collator's host batch
    updates = [0]

    def step() -> None:
        sub_attention_mask = (
            None
            if host_attention_mask is None
            else model._get_feature_vector_attention_mask(frames, host_attention_mask)
        )
        shape = (speech.size(0), frames)
        mask = _compute_mask_indices(
            shape, config.mask_time_prob, config.mask_time_length, attention_mask=sub_attention_mask, min_masks=2
        )
        negatives = _sample_negative_indices(shape, config.num_negatives, mask_time_indices=mask)
        mask = torch.tensor(mask, dtype=torch.bool, device=device)
        negatives = torch.tensor(negatives, dtype=torch.long, device=device)
        num_losses = mask.sum()
        model.set_gumbel_temperature(max(2.0 * 0.999995 ** updates[0], 0.5))
        with autocast(device.type, bf16):
            out = model(
                speech, attention_mask=attention_mask, mask_time_indices=mask, sampled_negative_indices=negatives
            )
        loss = out.loss / num_losses
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        updates[0] += 1
        if len(losses) < 1:
            losses.append(float(loss.detach()))

    return step


class Comparison(NamedTuple):
    """What :func:`compare` measured, per model (``ours``, ``reference``, ``compiled``)."""

    labels: dict[str, str]
    steps: dict[str, StepFigures]
    first_loss: dict[str, float]  # of the first step, per masked frame
    compile_s: float | None  # the compiled copy's first step (compilation included)
    audio_s: float  # seconds of audio in the batch (padding left out)


def compare(
    ours, reference, batch: int, seconds: float, repeats: int, device: str, bf16: bool = False, compile_: bool = False
) -> Comparison:
    """Time pre-training steps of ``ours`` and ``reference`` (None: ours alone) on one batch,
    interleaved; ``compile_`` adds a copy of ours with compiled Transformer layers."""
    speech, lengths, attention_mask = padded_noise_batch(batch, seconds, device)
    losses: dict[str, list[float]] = {"ours": []}
    steps = {"ours": our_step(ours, speech, lengths, bf16, losses["ours"])}
    labels = {"ours": "ours (Wav2Vec2Pretraining)"}
    if reference is not None:
        losses["reference"] = []
        steps["reference"] = reference_step(reference, speech, attention_mask, bf16, losses["reference"])
        labels["reference"] = "transformers Wav2Vec2ForPreTraining"
    if compile_:
        from espnet_ext.wav2vec2.compile import compile_layers

        compiled = copy.deepcopy(ours)
        labels["compiled"] = f"ours, {compile_layers(compiled)} layers compiled"
        losses["compiled"] = []
        steps["compiled"] = our_step(compiled, speech, lengths, bf16, losses["compiled"])
    figures, first_s = time_compared(steps, repeats, device, compiling=["compiled"] if compile_ else [])
    return Comparison(
        labels,
        figures,
        {name: values[0] for name, values in losses.items()},
        first_s.get("compiled"),
        float(lengths.sum()) / 16000,
    )


def print_comparison(args: argparse.Namespace, result: Comparison, num_negatives: int) -> None:
    """The benchmark's report: s/step per model, ratios, audio throughput on CUDA, first-step losses."""
    medians = {name: figures.median_s for name, figures in result.steps.items()}
    times = {name: figures.times_s for name, figures in result.steps.items()}
    ours_s, ref_s = medians["ours"], medians["reference"]
    precision = ", bf16 autocast" if args.bf16 else ""
    print(
        f"pre-training step, {args.size} model, batch {args.batch} x {args.seconds:g}-{0.6 * args.seconds:g} s, "
        f"{args.repeats} interleaved repeats{precision}, {machine()}"
    )
    for name, label in result.labels.items():
        print(f"  {label:36s} {medians[name]:8.3f} s/step  (range {min(times[name]):.3f}-{max(times[name]):.3f})")
    fastest = min(times["ours"]) / min(times["reference"])  # less sensitive to other jobs on the machine
    print(f"  ratio ours/reference: {ours_s / ref_s:.3f} (of medians; of fastest steps: {fastest:.3f})")
    if result.compile_s is not None:
        print(compiled_summary(result.compile_s, medians["compiled"], ours_s, ref_s))
    if args.device.startswith("cuda"):
        best = min(medians, key=lambda name: medians[name] if name != "reference" else math.inf)
        print(f"  ours: {result.audio_s / medians[best]:.1f} s of audio per second ({result.labels[best]})")
    chance = math.log(num_negatives + 1)
    loss = result.first_loss
    compiled_loss = f", compiled {loss['compiled']:.3f}" if "compiled" in loss else ""
    print(
        f"  first-step loss per masked frame: ours {loss['ours']:.3f}, "
        f"reference {loss['reference']:.3f}{compiled_loss} (chance log(K+1) = {chance:.3f})"
    )


def main(argv=None) -> int:
    args = step_args(argv, __doc__, SIZES, "also time a copy of ours with torch.compile'd Transformer layers")

    enable_cpu_kernels()
    ours, reference = build_models(args.size, args.device)
    result = compare(ours, reference, args.batch, args.seconds, args.repeats, args.device, args.bf16, args.compile)
    print_comparison(args, result, ours.options.num_negatives)
    return 0
