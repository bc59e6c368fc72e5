"""Decoding real-time factor on CPU: the project's batched CTC greedy decoder against ESPnet's
own inference path on the same model and audio.

    python -m benchmarks decode [--size tiny|base] [--batch_sizes 1 8 32] [--num_utts 32]
                                      [--data_dir DIR] [--repeats 3] [--threads N]
    python -m benchmarks decode --asr_train_config exp/X/config.yaml \\
                                      --asr_model_file exp/X/last10.ave.pth --data_dir dump/raw/test

Ours: :func:`espnet_ext.espnet.ctc_greedy.greedy_batch` (what ``espnet_ext.bin.asr_inference`` runs
for ``decoding: ctc_greedy``) over zero-padded batches of ``--batch_sizes`` utterances, taken
in data order as the decoding entry point takes them, ids turned into text. The reference:
``espnet2.bin.asr_inference.Speech2Text`` with ``ctc_weight`` 1.0 and ``beam_size`` 1 (no LM,
no length penalty), the nearest thing ESPnet has to greedy CTC; it decodes one utterance at a
time (ESPnet's ``asr_inference`` supports batch size 1 only). Both load the model from the
same ``config.yaml`` + ``.pth`` files.

Without ``--asr_model_file`` a model is built here and saved to a temporary directory: the
``wav2vec2`` frontend (preset ``tiny`` or ``base``, random weights) + ``w2v2_light`` encoder +
CTC over English characters. Its CTC output layer is then rescaled to look like a trained
one on this audio (:func:`sharpen_ctc`): peaked posteriors, ``--blank_fraction`` of the frames
blank. Left random, it would emit about one token per frame, the reference's worst case (its
label-synchronous search takes one step per output token, up to the number of frames), and
greedy and search would disagree on near-ties. Figures on a trained model
(``--asr_model_file``) remain the realistic ones.

Audio: ``--data_dir`` (a data dir whose ``wav.scp`` holds 16 kHz audio; the first
``--num_utts``, 0 for all), else the mini corpus's English utterances. It is read before
timing; the figures are decoding only (encoder forward, CTC, search, ids to text).

Printed: per decoder and batch size the decoding time (median of ``--repeats`` rounds, the
decoders alternating so that other jobs on the machine slow all alike), audio seconds per
second and the real-time factor (decoding seconds / audio seconds), our ratio to the
reference; then how many hypotheses differ from the reference's and from ours at batch size 1.
Greedy CTC and a beam-1 prefix search need not agree (the search ranks prefixes by their
summed probability over alignments, greedy takes the best frame path), least of all on random
weights.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import median
from typing import NamedTuple

import numpy as np
import torch

from benchmarks.common import enable_cpu_kernels, machine, time_interleaved

SAMPLE_RATE = 16000
MINI_WAVS = Path(__file__).resolve().parents[1] / "egs2" / "mini" / "corpus" / "en" / "wav"
#: The built model's token list: CTC blank, unknown, word boundary, English characters, sos/eos.
CHAR_TOKENS = ["<blank>", "<unk>", "<space>"] + list("abcdefghijklmnopqrstuvwxyz'") + ["<sos/eos>"]
LOGIT_STD = 8.0  # the built model's CTC logits: standard deviation over tokens (peaked posteriors)
CALIBRATION_UTTS = 8  # utterances used to sharpen the built model's CTC layer
REFERENCE = "ESPnet Speech2Text"
OURS = "ours (ctc_greedy)"


class Utterance(NamedTuple):
    """One utterance to decode: its id and float32 samples at 16 kHz."""

    uttid: str
    audio: np.ndarray


class Hypothesis(NamedTuple):
    """A decoding result: token ids (no blank, no sos/eos) and the text."""

    token_int: list[int]
    text: str


# ----------------------------------------------------------------------------- audio


def mini_utterances(num_utts: int) -> list[Utterance]:
    """The first ``num_utts`` English utterances of the shipped mini corpus (0: all)."""
    import soundfile

    paths = sorted(MINI_WAVS.glob("*.flac"))
    if not paths:
        raise ValueError(f"{MINI_WAVS}: no .flac files; expected the shipped mini corpus")
    paths = paths[:num_utts] if num_utts else paths
    return [Utterance(p.stem, soundfile.read(str(p), dtype="float32")[0]) for p in paths]


def data_dir_utterances(data_dir: str, num_utts: int) -> list[Utterance]:
    """The first ``num_utts`` utterances of ``data_dir/wav.scp`` (0: all), 16 kHz, channel 0.

    Raises:
        ValueError: a missing ``wav.scp``, unreadable audio or another sample rate (naming it).
    """
    from espnet_ext.data.format import AudioError, load_audio
    from espnet_ext.data.kaldi_files import read_map, sorted_keys

    wav_scp = Path(data_dir) / "wav.scp"
    if not wav_scp.is_file():
        raise ValueError(f"{wav_scp}: missing; expected a data dir with a wav.scp")
    entries = read_map(wav_scp)
    keys = sorted_keys(entries)
    utts = []
    for key in keys[:num_utts] if num_utts else keys:
        try:
            audio, fs = load_audio(entries[key])
        except AudioError as e:
            raise ValueError(f"{wav_scp}: utterance {key}: {e}") from None
        if fs != SAMPLE_RATE:
            raise ValueError(f"{wav_scp}: utterance {key}: {fs} Hz audio; expected {SAMPLE_RATE} Hz (dump it first)")
        utts.append(Utterance(key, audio[:, 0].astype(np.float32)))
    return utts


# ----------------------------------------------------------------------------- model


def build_model_files(
    size: str, directory: str, utts: Sequence[Utterance], blank_fraction: float, seed: int = 0
) -> dict[str, str]:
    """Build a random ``wav2vec2`` (preset ``size``) + CTC model, its output layer sharpened on
    ``utts`` (:func:`sharpen_ctc`); save ``config.yaml`` and ``model.pth`` in ``directory``;
    return them as Speech2Text's keyword arguments."""
    import yaml

    from espnet_ext.espnet.tasks import ASRTask

    conf = dict(
        frontend="wav2vec2",
        frontend_conf=dict(preset=size),
        normalize=None,
        input_size=None,
        encoder="w2v2_light",
        encoder_conf=dict(dropout_rate=0.1),
        model_conf=dict(ctc_weight=1.0, lsm_weight=0.0),  # CTC only: no attention decoder
        token_list=CHAR_TOKENS,
        token_type="char",
    )
    conf_path = Path(directory) / "train.yaml"
    conf_path.write_text(yaml.safe_dump(conf), encoding="utf-8")
    args = ASRTask.get_parser().parse_args(["--config", str(conf_path), "--output_dir", directory])
    torch.manual_seed(seed)
    model = ASRTask.build_model(args).eval()
    sharpen_ctc(model, utts, blank_fraction)
    files = dict(
        asr_train_config=str(Path(directory) / "config.yaml"), asr_model_file=str(Path(directory) / "model.pth")
    )
    Path(files["asr_train_config"]).write_text(yaml.safe_dump(vars(args)), encoding="utf-8")
    torch.save(model.state_dict(), files["asr_model_file"])
    return files


def sharpen_ctc(model, utts: Sequence[Utterance], blank_fraction: float, logit_std: float = LOGIT_STD) -> None:
    """Rescale ``model.ctc.ctc_lo`` in place so that on ``utts`` its logits have a standard
    deviation of ``logit_std`` over tokens and the blank wins ``blank_fraction`` of the frames."""
    speech, lengths = pad_batch(utts[:CALIBRATION_UTTS])
    with torch.no_grad():
        enc, enc_lens = model.encode(speech, lengths)
        logits = model.ctc.ctc_lo(enc)[torch.arange(enc.size(1)) < enc_lens[:, None]]  # (frames, V)
        scale = logit_std / float(logits.std(dim=-1).mean())
        logits = logits * scale
        others = torch.cat([logits[:, : model.blank_id], logits[:, model.blank_id + 1 :]], dim=-1)
        margin = others.max(dim=-1).values - logits[:, model.blank_id]  # blank wins where <= shift
        shift = float(torch.quantile(margin, blank_fraction))
        model.ctc.ctc_lo.weight.mul_(scale)
        model.ctc.ctc_lo.bias.mul_(scale)
        model.ctc.ctc_lo.bias[model.blank_id] += shift


def load_ours(files: dict[str, str], device: str = "cpu"):
    """(model on ``device``, ids -> text function) as ``espnet_ext.espnet.ctc_greedy.decode`` builds them."""
    from espnet2.text.build_tokenizer import build_tokenizer
    from espnet2.text.token_id_converter import TokenIDConverter

    from espnet_ext.espnet.tasks import ASRTask

    model, args = ASRTask.build_model_from_file(files["asr_train_config"], files["asr_model_file"], device)
    converter = TokenIDConverter(token_list=args.token_list)
    tokenizer = build_tokenizer(token_type=args.token_type, bpemodel=args.bpemodel)

    def to_text(ids: list[int]) -> str:
        return tokenizer.tokens2text(converter.ids2tokens(ids))

    return model.eval(), to_text


def load_reference(files: dict[str, str]):
    """ESPnet's ``Speech2Text``: CTC prefix search only (ctc_weight 1.0), beam 1, no LM."""
    from espnet2.bin.asr_inference import Speech2Text

    return Speech2Text(
        **files,
        device="cpu",
        ctc_weight=1.0,
        beam_size=1,
        lm_weight=0.0,
        penalty=0.0,
        nbest=1,
        maxlenratio=0.0,
        minlenratio=0.0,
    )


# ----------------------------------------------------------------------------- decoding


def pad_batch(utts: Sequence[Utterance]):
    """Zero-padded ``(B, L)`` float32 speech and ``(B,)`` lengths, as ESPnet's collate makes them."""
    lengths = torch.tensor([len(u.audio) for u in utts])
    speech = torch.zeros(len(utts), int(lengths.max()))
    for i, u in enumerate(utts):
        speech[i, : len(u.audio)] = torch.from_numpy(u.audio)
    return speech, lengths


def our_decoder(
    model, to_text, utts: Sequence[Utterance], batch_size: int, out: dict[str, Hypothesis]
) -> Callable[[], None]:
    """A step that decodes every utterance with greedy CTC, ``batch_size`` at a time, into ``out``
    (batches padded on the host, then copied to the model's device, as a data loader's are)."""
    from espnet_ext.espnet.ctc_greedy import greedy_batch

    device = next(model.parameters()).device

    def step() -> None:
        with torch.no_grad():
            for first in range(0, len(utts), batch_size):
                chunk = utts[first : first + batch_size]
                speech, lengths = (x.to(device) for x in pad_batch(chunk))
                for u, (ids, _) in zip(chunk, greedy_batch(model, speech, lengths)):
                    out[u.uttid] = Hypothesis(ids, to_text(ids))

    return step


def reference_decoder(speech2text, utts: Sequence[Utterance], out: dict[str, Hypothesis]) -> Callable[[], None]:
    """A step that decodes every utterance with ``Speech2Text``, one at a time, into ``out``."""

    def step() -> None:
        for u in utts:
            text, _, token_int, _ = speech2text(u.audio)[0]
            out[u.uttid] = Hypothesis(list(token_int), text or "")

    return step


def espnet_best_path(speech2text, utts: Sequence[Utterance]) -> dict[str, Hypothesis]:
    """ESPnet's own best-path decoding, one utterance at a time (unpadded): ``CTC.argmax`` of the
    reference model's encoder output, repeats merged and blanks dropped, as Speech2Text does for
    intermediate CTC layers. A correctness reference for our batched greedy decoder (not timed)."""
    model = speech2text.asr_model
    out = {}
    with torch.no_grad():
        for u in utts:
            speech = torch.from_numpy(u.audio)[None]
            enc, _ = model.encode(speech, torch.tensor([speech.size(1)]))
            path = model.ctc.argmax(enc)[0].tolist()
            ids = [k for k, _ in itertools.groupby(path) if k != model.blank_id]
            out[u.uttid] = Hypothesis(ids, "")
    return out


def count_differing(hyps: dict[str, Hypothesis], reference: dict[str, Hypothesis]) -> int:
    """Utterances whose token ids differ."""
    return sum(hyps[k].token_int != reference[k].token_int for k in reference)


def mean_length(hyps: dict[str, Hypothesis]) -> float:
    """Mean hypothesis length in tokens."""
    return sum(len(h.token_int) for h in hyps.values()) / max(1, len(hyps))


# ----------------------------------------------------------------------------- report


def print_report(
    title: str,
    audio_s: float,
    times: dict[str, list[float]],
    hyps: dict[str, dict[str, Hypothesis]],
    best_path: dict[str, Hypothesis],
) -> None:
    """The table: decoder, batch, seconds, audio s/s, RTF, ratio; then the hypothesis checks."""
    print(title)
    print(f"  {'decoder':20s} {'batch':>5s} {'decode s':>9s} {'audio s/s':>10s} {'RTF':>8s} {'ours/ref':>9s}")
    ref_s = median(times[REFERENCE])
    for name, values in times.items():
        seconds = median(values)
        decoder, _, batch = name.partition(" @")
        ratio = f"{seconds / ref_s:9.3f}" if name != REFERENCE else f"{'-':>9s}"
        print(
            f"  {decoder:20s} {batch or '1':>5s} {seconds:9.4f} {audio_s / seconds:10.1f} "
            f"{seconds / audio_s:8.5f} {ratio}"
        )
    reference = hyps[REFERENCE]
    ours = {name: h for name, h in hyps.items() if name != REFERENCE}
    first = next(iter(ours.values()))
    for label, against in (
        ("the reference (beam-1 prefix search)", reference),
        ("ESPnet's CTC.argmax best path, per utterance", best_path),
        ("ours at the first batch size", first),
    ):
        counts = ", ".join(
            f"{count_differing(h, against)} of {len(against)} at batch {name.split('@')[1]}" for name, h in ours.items()
        )
        print(f"  hypotheses differing from {label}: {counts}")
    print(f"  mean hypothesis length: ours {mean_length(first):.1f} tokens, reference {mean_length(reference):.1f}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options (``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks decode", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size",
        choices=["tiny", "base"],
        default="tiny",
        help="wav2vec2 preset of the model built here (random weights)",
    )
    parser.add_argument("--asr_train_config", help="a trained model's config.yaml instead (with --asr_model_file)")
    parser.add_argument("--asr_model_file", help="a trained model's .pth (with --asr_train_config)")
    parser.add_argument("--data_dir", help="data dir whose wav.scp holds 16 kHz audio (default: the mini corpus)")
    parser.add_argument("--num_utts", type=int, default=32, help="utterances to decode (0: all)")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 8, 32], help="utterances per batch (ours)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (one untimed warm-up round first)")
    parser.add_argument(
        "--blank_fraction",
        type=float,
        default=0.75,
        help="built model: fraction of frames whose best token is blank (trained CTC: most)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if (args.asr_train_config is None) != (args.asr_model_file is None):
        parser.error("give both --asr_train_config and --asr_model_file, or neither")
    if not 0.0 <= args.blank_fraction < 1.0:
        parser.error(f"expected 0 <= --blank_fraction < 1; found {args.blank_fraction}")
    if args.num_utts < 0 or args.repeats < 1 or min(args.batch_sizes) < 1:
        parser.error(
            f"expected --num_utts >= 0, --repeats >= 1, --batch_sizes >= 1; found {args.num_utts}, "
            f"{args.repeats}, {args.batch_sizes}"
        )
    return args


def run(args: argparse.Namespace, utts: list[Utterance], files: dict[str, str], model_name: str) -> None:
    """Load the model both ways, decode ``utts`` with each decoder, print the report."""
    model, to_text = load_ours(files)
    speech2text = load_reference(files)
    hyps: dict[str, dict[str, Hypothesis]] = {REFERENCE: {}}
    steps = {REFERENCE: reference_decoder(speech2text, utts, hyps[REFERENCE])}
    for batch_size in dict.fromkeys(args.batch_sizes):
        name = f"{OURS} @{batch_size}"
        hyps[name] = {}
        steps[name] = our_decoder(model, to_text, utts, batch_size, hyps[name])
    times = time_interleaved(steps, args.repeats, "cpu")
    best_path = espnet_best_path(speech2text, utts)
    audio_s = sum(len(u.audio) for u in utts) / SAMPLE_RATE
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print_report(
        f"decoding (CTC greedy vs {REFERENCE} ctc_weight 1.0 beam 1), {model_name}, "
        f"{params:.2f} M parameters, {len(utts)} utterances, {audio_s:.1f} s of audio, "
        f"{args.repeats} interleaved repeats, {machine()}",
        audio_s,
        times,
        hyps,
        best_path,
    )


def quiet_espnet() -> None:
    """Keep ESPnet's per-utterance search warnings, its note that a CTC-only model has no
    decoder, and its deprecation warning out of the report."""
    logging.getLogger("espnet.nets.beam_search").setLevel(logging.ERROR)
    logging.getLogger().addFilter(lambda record: "Set decoder to none" not in record.getMessage())
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"espnet2\.")


def benchmark(args: argparse.Namespace) -> None:
    """Read the audio, get the model (given or built), run and print the benchmark."""
    import espnet_ext  # noqa: F401  (registry and quiet nltk, before ESPnet)

    quiet_espnet()
    enable_cpu_kernels()  # as decoding on CPU runs (--cpu_kernels auto)
    utts = data_dir_utterances(args.data_dir, args.num_utts) if args.data_dir else mini_utterances(args.num_utts)
    if args.asr_model_file:
        files = dict(asr_train_config=args.asr_train_config, asr_model_file=args.asr_model_file)
        run(args, utts, files, f"model {args.asr_model_file}")
        return
    with tempfile.TemporaryDirectory() as directory:
        files = build_model_files(args.size, directory, utts, args.blank_fraction)
        run(
            args,
            utts,
            files,
            f"{args.size} model (random weights, CTC layer sharpened, {args.blank_fraction:g} of frames blank)",
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status. ``--threads`` holds for this call only."""
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads or threads)
    try:
        benchmark(args)
    finally:
        torch.set_num_threads(threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
