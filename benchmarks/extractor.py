"""The conv feature extractor alone: ours against ``transformers.Wav2Vec2FeatureEncoder`` on the same weights.

    python -m benchmarks extractor [--size tiny|base] [--mode default|layer_norm] [--batch 4]
                                         [--seconds 4] [--repeats 5] [--unpadded]

Both extractors get the same random weights and waveforms (a padded batch, the shortest
utterance 0.6 of the longest, unless ``--unpadded``); ours also gets the lengths, as the
model passes them (its first-layer GroupNorm then ignores padding). "forward" runs under
``torch.no_grad()`` (a frozen extractor, fairseq's fine-tuning); "forward+backward" takes
the weight gradients of a fixed random loss on the ``(B, T, C)`` output, as a training step
does. The two are timed alternately, ``--repeats`` times each after a warm-up, and the
medians are compared (the machine may be shared). Ours runs with the CPU kernels registered (as
training on CPU runs it: :func:`~benchmarks.common.enable_cpu_kernels`). Ours is also checked against the
reference: the largest relative difference of the outputs on the unpadded utterances is
printed (padded ones differ by design: our first-layer GroupNorm ignores the padding).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch import Tensor, nn

from benchmarks.common import enable_cpu_kernels, machine, time_steps
from benchmarks.finetune import SIZES
from espnet_ext.wav2vec2.importers import HUGGINGFACE_RULES, map_state
from espnet_ext.wav2vec2.modules import ConvFeatureExtractor, conv_feature_extractor


def build_pair(size: str, mode: str) -> tuple[ConvFeatureExtractor, nn.Module]:
    """Our extractor and transformers' ``Wav2Vec2FeatureEncoder`` with the same random weights."""
    from transformers import Wav2Vec2Config
    from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2FeatureEncoder

    config = Wav2Vec2Config(
        **SIZES[size], feat_extract_norm="group" if mode == "default" else "layer", conv_bias=mode == "layer_norm"
    )
    torch.manual_seed(0)
    reference = Wav2Vec2FeatureEncoder(config)
    for module in reference.modules():
        if isinstance(module, (nn.Conv1d, nn.GroupNorm, nn.LayerNorm)):
            nn.init.normal_(module.weight, std=0.5 if module.weight.dim() == 1 else 0.1)
            if module.bias is not None:
                nn.init.normal_(module.bias, std=0.1)
    layers = list(zip(config.conv_dim, config.conv_kernel, config.conv_stride))
    ours = conv_feature_extractor(layers, mode, conv_bias=config.conv_bias)
    state = {"feature_extractor." + name: value for name, value in reference.state_dict().items()}
    mapped = map_state(state, HUGGINGFACE_RULES, (), ())
    ours.load_state_dict({name[len("feature_extractor.") :]: value for name, value in mapped.backbone.items()})
    return ours, reference


def _steps(
    ours: nn.Module, reference: nn.Module, speech: Tensor, lengths: Tensor, grad: Tensor
) -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
    """``{"forward": (ours, reference), "forward+backward": (ours, reference)}`` step functions."""

    def forward(module: nn.Module, *args: Tensor) -> Callable[[], None]:
        def step() -> None:
            with torch.no_grad():
                module(speech, *args)

        return step

    def train(module: nn.Module, *args: Tensor) -> Callable[[], None]:
        def step() -> None:
            out = module(speech, *args).transpose(1, 2)  # (B, T, C), as the models use it
            out.backward(grad)
            module.zero_grad(set_to_none=True)

        return step

    return {
        "forward": (forward(ours, lengths), forward(reference)),
        "forward+backward": (train(ours, lengths), train(reference)),
    }


def time_alternately(
    first: Callable[[], None], second: Callable[[], None], repeats: int, device: str
) -> tuple[list[float], list[float]]:
    """Wall times of ``first`` and ``second``, run in turn ``repeats`` times after one warm-up each."""
    times: tuple[list[float], list[float]] = ([], [])
    first()
    second()
    for _ in range(repeats):
        for step, out in ((first, times[0]), (second, times[1])):
            out += time_steps(step, warmup=0, repeats=1, device=device).times_s
    return times


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument(
        "--mode",
        choices=("default", "layer_norm"),
        default="default",
        help="extractor_mode (default: GroupNorm on the first layer; layer_norm: LayerNorm on all)",
    )
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0, help="longest utterance, seconds")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--unpadded", action="store_true", help="all utterances as long as the longest")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)

    enable_cpu_kernels()  # ours is the extractor as training runs it (its CPU kernel)
    ours, reference = build_pair(args.size, args.mode)
    ours, reference = ours.to(args.device).train(), reference.to(args.device).train()
    torch.manual_seed(1)
    samples = int(args.seconds * 16000)
    low = 1.0 if args.unpadded else 0.6
    lengths = torch.linspace(samples, samples * low, args.batch).long()
    speech = torch.randn(args.batch, samples) * 0.1 * (torch.arange(samples) < lengths.unsqueeze(1))
    speech, lengths = speech.to(args.device), lengths.to(args.device)
    with torch.no_grad():
        out_ours, out_ref = ours(speech, lengths), reference(speech)
    full = lengths == samples  # padded utterances differ by design: our GroupNorm ignores padding
    diff = float((out_ours[full] - out_ref[full]).abs().max() / out_ref[full].abs().max())
    grad = torch.randn(out_ref.transpose(1, 2).shape, device=args.device)

    print(
        f"feature extractor, {args.size} model ({args.mode}), batch {args.batch} x {args.seconds:g} s "
        f"({'unpadded' if args.unpadded else 'padded'}), {machine()}"
    )
    print(f"  max |ours - transformers| / max |transformers| on the unpadded utterances: {diff:.1e}")
    print(f"  {'':18s} {'ours':>10s} {'transformers':>13s} {'ratio':>7s}")
    for name, (step_ours, step_ref) in _steps(ours, reference, speech, lengths, grad).items():
        times_ours, times_ref = time_alternately(step_ours, step_ref, args.repeats, args.device)
        ours_s, ref_s = _median(times_ours), _median(times_ref)
        print(f"  {name:18s} {ours_s * 1e3:8.1f} ms {ref_s * 1e3:10.1f} ms {ours_s / ref_s:7.3f}")
    return 0
