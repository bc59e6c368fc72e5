"""Pre-training step (forward + backward + AdamW update) of our ``Wav2Vec2Pretraining`` against
``transformers.Wav2Vec2ForPreTraining`` on the same weights and config.

    python -m espnet_ext.bench pretrain [--size tiny|base] [--batch 4] [--seconds 4] [--repeats 3]
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
from statistics import median
from typing import Callable, Dict, List

import torch

from espnet_ext.bench.common import compiled_summary, machine, time_interleaved, time_steps
from espnet_ext.bench.finetune import SIZES as FINETUNE_SIZES

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


def make_batch(batch: int, seconds: float, device: str):
    """Zero-padded noise ``(B, L)``, lengths ``(B,)`` from ``seconds`` down to 0.6x, attention mask."""
    torch.manual_seed(1)
    samples = int(seconds * 16000)
    lengths = torch.linspace(samples, samples * 0.6, batch).long()
    attention_mask = (torch.arange(samples) < lengths.unsqueeze(1)).long()
    speech = torch.randn(batch, samples) * 0.1 * attention_mask
    return speech.to(device), lengths.to(device), attention_mask.to(device)


def autocast(device: str, bf16: bool):
    """bfloat16 autocast on ``device``'s type when ``bf16``, else nothing."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def our_step(model, speech, lengths, bf16: bool, losses: List[float]) -> Callable[[], None]:
    """Ours: masks and negatives drawn inside ``forward``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    updates = [0]

    def step() -> None:
        with autocast(speech.device.type, bf16):
            out = model(speech, lengths, num_updates=updates[0])
        out.loss.per_frame.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        updates[0] += 1
        if len(losses) < 1:
            losses.append(float(out.loss.per_frame.detach()))

    return step


def reference_step(model, speech, attention_mask, bf16: bool, losses: List[float]) -> Callable[[], None]:
    """Hugging Face: host-side masks and negatives, as ``run_wav2vec2_pretraining_no_trainer.py``.

    The group-norm quirk: Hugging Face's example refuses configs other than
    ``do_stable_layer_norm=True, feat_extract_norm="layer"`` (LARGE-style), and its docs advise
    not passing ``attention_mask`` to ``"group"`` models, whose extractor GroupNorm takes
    statistics over the padded length. ``Wav2Vec2ForPreTraining`` itself runs BASE (``"group"``)
    fine, and here it gets ``attention_mask`` as the example passes it: the mask never reaches
    its extractor, only the Transformer, the masks and the negatives. Ours, given ``lengths``,
    takes those GroupNorm statistics over each utterance's valid frames (a documented deviation
    in :mod:`espnet_ext.wav2vec2.modules`): features of padded utterances differ slightly, the
    work per step hardly does.
    """
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    config, device = model.config, speech.device
    frames = int(model._get_feat_extract_output_lengths(speech.size(1)))
    host_attention_mask = attention_mask.cpu()  # the example's collator works on the host batch
    updates = [0]

    def step() -> None:
        sub_attention_mask = model._get_feature_vector_attention_mask(frames, host_attention_mask)
        shape = (speech.size(0), frames)
        mask = _compute_mask_indices(shape, config.mask_time_prob, config.mask_time_length,
                                     attention_mask=sub_attention_mask, min_masks=2)
        negatives = _sample_negative_indices(shape, config.num_negatives, mask_time_indices=mask)
        mask = torch.tensor(mask, dtype=torch.bool, device=device)
        negatives = torch.tensor(negatives, dtype=torch.long, device=device)
        num_losses = mask.sum()
        model.set_gumbel_temperature(max(2.0 * 0.999995 ** updates[0], 0.5))
        with autocast(device.type, bf16):
            out = model(speech, attention_mask=attention_mask, mask_time_indices=mask,
                        sampled_negative_indices=negatives)
        loss = out.loss / num_losses
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        updates[0] += 1
        if len(losses) < 1:
            losses.append(float(loss.detach()))

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0, help="longest utterance, seconds")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast in the forward pass")
    parser.add_argument("--compile", action="store_true",
                        help="also time a copy of ours with torch.compile'd Transformer layers")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.seconds <= 0 or args.repeats < 1:
        parser.error(f"expected --batch >= 1, --seconds > 0, --repeats >= 1; "
                     f"found {args.batch}, {args.seconds}, {args.repeats}")

    ours, reference = build_models(args.size, args.device)
    speech, lengths, attention_mask = make_batch(args.batch, args.seconds, args.device)
    first_loss: Dict[str, List[float]] = {"ours": [], "reference": [], "compiled": []}
    steps = {"ours": our_step(ours, speech, lengths, args.bf16, first_loss["ours"]),
             "reference": reference_step(reference, speech, attention_mask, args.bf16, first_loss["reference"])}
    labels = {"ours": "ours (Wav2Vec2Pretraining)", "reference": "transformers Wav2Vec2ForPreTraining"}
    compile_s = None
    if args.compile:
        from espnet_ext.wav2vec2.compile import compile_layers

        compiled = copy.deepcopy(ours)
        num_compiled = compile_layers(compiled)
        steps["compiled"] = our_step(compiled, speech, lengths, args.bf16, first_loss["compiled"])
        labels["compiled"] = f"ours, {num_compiled} layers compiled"
        compile_s = time_steps(steps["compiled"], warmup=0, repeats=1, device=args.device).median_s  # compiles
    times = time_interleaved(steps, args.repeats, args.device)
    medians = {name: median(t) for name, t in times.items()}
    ours_s, ref_s = medians["ours"], medians["reference"]

    precision = ", bf16 autocast" if args.bf16 else ""
    print(f"pre-training step, {args.size} model, batch {args.batch} x {args.seconds:g}-{0.6 * args.seconds:g} s, "
          f"{args.repeats} interleaved repeats{precision}, {machine()}")
    for name, label in labels.items():
        print(f"  {label:36s} {medians[name]:8.3f} s/step  "
              f"(range {min(times[name]):.3f}-{max(times[name]):.3f})")
    fastest = min(times["ours"]) / min(times["reference"])  # less sensitive to other jobs on the machine
    print(f"  ratio ours/reference: {ours_s / ref_s:.3f} (of medians; of fastest steps: {fastest:.3f})")
    if compile_s is not None:
        print(compiled_summary(compile_s, medians["compiled"], ours_s, ref_s))
    if args.device.startswith("cuda"):
        audio_s = float(lengths.sum()) / 16000
        best = min(medians, key=lambda name: medians[name] if name != "reference" else math.inf)
        print(f"  ours: {audio_s / medians[best]:.1f} s of audio per second ({labels[best]})")
    chance = math.log(ours.options.num_negatives + 1)
    compiled_loss = f", compiled {first_loss['compiled'][0]:.3f}" if first_loss["compiled"] else ""
    print(f"  first-step loss per masked frame: ours {first_loss['ours'][0]:.3f}, "
          f"reference {first_loss['reference'][0]:.3f}{compiled_loss} (chance log(K+1) = {chance:.3f})")
    return 0
