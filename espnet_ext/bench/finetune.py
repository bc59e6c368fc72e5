"""Fine-tuning step (forward + backward, CTC) of the ``wav2vec2`` frontend against ESPnet's
``huggingface`` frontend on the same Hugging Face model (random weights, saved locally).

    python -m espnet_ext.bench finetune [--size tiny|base] [--batch 4] [--seconds 4] [--repeats 3] [--compile]

Both run the same model config, batch and CTC head in training mode, timed interleaved (one
warm-up step each, then ours, reference, ours, ...: a shared machine slows both alike), with Hugging Face's
time masking and layerdrop off (the frontends would draw different masks). ESPnet's frontend
returns sample counts as lengths, so the CTC lengths here come from the conv arithmetic for
both. ``--compile`` adds a third frontend to the rotation, ours with ``torch_compile: true``
(compiled Transformer layers); its first step, which compiles, is timed apart.
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from espnet_ext.bench.common import compiled_summary, machine, time_interleaved, time_steps

SIZES = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                 conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
    "base": dict(),  # transformers' defaults are the BASE model
}


def save_hf_model(size: str, directory: str) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    config = Wav2Vec2Config(**SIZES[size], mask_time_prob=0.0, layerdrop=0.0)
    torch.manual_seed(0)
    Wav2Vec2Model(config).save_pretrained(directory)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                             do_normalize=False, return_attention_mask=True).save_pretrained(directory)


def make_step(frontend, head, speech, lengths, out_lengths, targets, target_lengths, optimizer):
    ctc = torch.nn.CTCLoss(zero_infinity=True)

    def step():
        feats, _ = frontend(speech, lengths)
        logp = head(feats).log_softmax(-1).transpose(0, 1)
        loss = ctc(logp, targets, out_lengths[: feats.size(0)].clamp(max=feats.size(1)), target_lengths)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0, help="longest utterance, seconds")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", action="store_true",
                        help="also time ours with torch.compile'd Transformer layers (frontend torch_compile: true)")
    args = parser.parse_args(argv)

    import espnet_ext  # noqa: F401
    from espnet2.asr.frontend.huggingface import HuggingFaceFrontend

    from espnet_ext.espnet.frontend import Wav2Vec2Frontend

    with tempfile.TemporaryDirectory() as directory:
        save_hf_model(args.size, directory)
        ours = Wav2Vec2Frontend(path=directory).to(args.device).train()
        reference = HuggingFaceFrontend(directory).to(args.device).train()
        compiled = Wav2Vec2Frontend(path=directory, torch_compile=True).to(args.device).train() if args.compile else None
    torch.manual_seed(1)
    samples = int(args.seconds * 16000)
    lengths = torch.linspace(samples, samples * 0.6, args.batch).long()
    speech = torch.randn(args.batch, samples) * 0.1
    speech = speech * (torch.arange(samples) < lengths.unsqueeze(1))
    speech, lengths = speech.to(args.device), lengths.to(args.device)
    out_lengths = ours.model.output_lengths(lengths)
    targets = torch.randint(1, 30, (args.batch, 20), device=args.device)
    target_lengths = torch.full((args.batch,), 20, device=args.device)
    frontends = {"ours (wav2vec2 frontend)": ours, "ESPnet huggingface frontend": reference}
    if compiled is not None:
        frontends["ours, torch_compile: true"] = compiled
    steps = {}
    for name, frontend in frontends.items():
        torch.manual_seed(2)  # the same CTC head for each
        head = torch.nn.Linear(frontend.output_size(), 32).to(args.device)
        optimizer = torch.optim.SGD(list(frontend.parameters()) + list(head.parameters()), lr=1e-5)
        steps[name] = make_step(frontend, head, speech, lengths, out_lengths, targets, target_lengths, optimizer)
    compile_s = None
    if compiled is not None:
        compile_s = time_steps(steps["ours, torch_compile: true"], warmup=0, repeats=1,
                               device=args.device).median_s  # compiles
    times = time_interleaved(steps, args.repeats, args.device)
    medians = {name: sorted(t)[len(t) // 2] for name, t in times.items()}
    ours_s, ref_s = medians["ours (wav2vec2 frontend)"], medians["ESPnet huggingface frontend"]
    print(f"fine-tuning step, {args.size} model, batch {args.batch} x {args.seconds:g} s, "
          f"{args.repeats} interleaved repeats, {machine()}")
    for name, seconds in medians.items():
        print(f"  {name:32s} {seconds:8.3f} s/step  (range {min(times[name]):.3f}-{max(times[name]):.3f})")
    print(f"  ratio ours/reference: {ours_s / ref_s:.3f} (of medians; of fastest steps: "
          f"{min(times['ours (wav2vec2 frontend)']) / min(times['ESPnet huggingface frontend']):.3f})")
    if compile_s is not None:
        print(compiled_summary(compile_s, medians["ours, torch_compile: true"], ours_s, ref_s))
    return 0
