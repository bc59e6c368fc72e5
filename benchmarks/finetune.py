"""Fine-tuning step (forward + backward, CTC) of the ``wav2vec2`` frontend against ESPnet's
``huggingface`` frontend on the same Hugging Face model (random weights, saved locally).

    python -m benchmarks finetune [--size tiny|base] [--batch 4] [--seconds 4] [--repeats 3] [--compile]
                                        [--device cpu|cuda] [--bf16]

Both run the same model config, batch and CTC head in training mode, timed interleaved (one
warm-up step each, then ours, reference, ours, ...: a shared machine slows both alike), with Hugging Face's
time masking and layerdrop off (the frontends would draw different masks). ESPnet's frontend
returns sample counts as lengths, so the CTC lengths here come from the conv arithmetic for
both. ``--compile`` adds a third frontend to the rotation, ours with ``torch_compile: true``
(compiled Transformer layers); its first step, which compiles, is timed apart.
"""

from __future__ import annotations

import tempfile
from typing import Any

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

SIZES = {
    "tiny": dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    ),
    "base": dict(),  # transformers' defaults are the BASE model
}
OURS, REFERENCE, COMPILED = "ours (wav2vec2 frontend)", "ESPnet huggingface frontend", "ours, torch_compile: true"


def save_hf_model(size: str, directory: str) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    config = Wav2Vec2Config(**SIZES[size], mask_time_prob=0.0, layerdrop=0.0)
    torch.manual_seed(0)
    Wav2Vec2Model(config).save_pretrained(directory)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=False, return_attention_mask=True
    ).save_pretrained(directory)


def build_frontends(size: str, device: str, compile_: bool = False) -> dict[str, Any]:
    """Ours (and ours with compiled layers when ``compile_``) and ESPnet's ``huggingface``
    frontend on one saved Hugging Face model, in training mode on ``device``, by label."""
    from espnet2.asr.frontend.huggingface import HuggingFaceFrontend

    import espnet_ext  # noqa: F401
    from espnet_ext.espnet.frontend import Wav2Vec2Frontend

    with tempfile.TemporaryDirectory() as directory:
        save_hf_model(size, directory)
        frontends = {OURS: Wav2Vec2Frontend(path=directory), REFERENCE: HuggingFaceFrontend(directory)}
        if compile_:
            frontends[COMPILED] = Wav2Vec2Frontend(path=directory, torch_compile=True)
    return {label: frontend.to(device).train() for label, frontend in frontends.items()}


def make_step(frontend, head, speech, lengths, out_lengths, targets, target_lengths, optimizer, bf16: bool = False):
    ctc = torch.nn.CTCLoss(zero_infinity=True)

    def step():
        with autocast(speech.device.type, bf16):
            feats, _ = frontend(speech, lengths)
            logp = head(feats).log_softmax(-1).transpose(0, 1)
            loss = ctc(logp.float(), targets, out_lengths[: feats.size(0)].clamp(max=feats.size(1)), target_lengths)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def compare(
    frontends: dict[str, Any], batch: int, seconds: float, repeats: int, device: str, bf16: bool = False
) -> tuple[dict[str, StepFigures], float | None]:
    """Time fine-tuning steps (frontend + linear CTC head, SGD) of ``frontends`` on one batch,
    interleaved: the figures by label, and the compiled frontend's first step (None without one)."""
    speech, lengths, _ = padded_noise_batch(batch, seconds, device)
    out_lengths = frontends[OURS].model.output_lengths(lengths)
    targets = torch.randint(1, 30, (batch, 20), device=device)
    target_lengths = torch.full((batch,), 20, device=device)
    steps = {}
    for name, frontend in frontends.items():
        torch.manual_seed(2)  # the same CTC head for each
        head = torch.nn.Linear(frontend.output_size(), 32).to(device)
        optimizer = torch.optim.SGD(list(frontend.parameters()) + list(head.parameters()), lr=1e-5)
        steps[name] = make_step(frontend, head, speech, lengths, out_lengths, targets, target_lengths, optimizer, bf16)
    figures, first_s = time_compared(steps, repeats, device, compiling=[COMPILED] if COMPILED in steps else [])
    return figures, first_s.get(COMPILED)


def main(argv=None) -> int:
    args = step_args(
        argv, __doc__, SIZES, "also time ours with torch.compile'd Transformer layers (frontend torch_compile: true)"
    )

    enable_cpu_kernels()
    frontends = build_frontends(args.size, args.device, args.compile)
    figures, compile_s = compare(frontends, args.batch, args.seconds, args.repeats, args.device, args.bf16)
    medians = {name: f.median_s for name, f in figures.items()}
    times = {name: f.times_s for name, f in figures.items()}
    ours_s, ref_s = medians[OURS], medians[REFERENCE]
    print(
        f"fine-tuning step, {args.size} model, batch {args.batch} x {args.seconds:g} s, "
        f"{args.repeats} interleaved repeats{', bf16 autocast' if args.bf16 else ''}, {machine()}"
    )
    for name, seconds in medians.items():
        print(f"  {name:32s} {seconds:8.3f} s/step  (range {min(times[name]):.3f}-{max(times[name]):.3f})")
    print(
        f"  ratio ours/reference: {ours_s / ref_s:.3f} (of medians; of fastest steps: "
        f"{min(times[OURS]) / min(times[REFERENCE]):.3f})"
    )
    if compile_s is not None:
        print(compiled_summary(compile_s, medians[COMPILED], ours_s, ref_s))
    return 0
