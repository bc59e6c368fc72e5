"""``python -m benchmarks finetune`` and ``extractor`` run end to end (they check the output,
not a speed), with the CPU kernels registered."""

import re

import pytest
import torch

from benchmarks import extractor, finetune
from espnet_ext.wav2vec2 import cpu_kernels
from espnet_ext.wav2vec2.modules import KERNELS


@pytest.mark.parametrize("compile_", [False, True], ids=["eager", "compile"])
def test_finetune_benchmark_prints_both_timings_and_their_ratio(capsys, step_timings, compiled_timing, compile_):
    torch._dynamo.reset()
    argv = ["--size", "tiny", "--batch", "2", "--seconds", "1", "--repeats", "1", "--device", "cpu"]
    assert finetune.main(argv + ["--compile"] * compile_) == 0
    torch._dynamo.reset()
    out = capsys.readouterr().out
    assert out.startswith("fine-tuning step, tiny model, batch 2 x 1 s, 1 interleaved repeats"), out
    ours_s, _ = step_timings(out, "ours (wav2vec2 frontend)", "ESPnet huggingface frontend")
    assert bool(compiled_timing(out, r"ours, torch_compile: true", ours_s)) == compile_, out


def test_extractor_benchmark_agrees_with_transformers_and_prints_both_passes(capsys, check_ratio):
    with cpu_kernels.disabled():  # the benchmark registers them itself (ours is the extractor as training runs it)
        assert (
            extractor.main(["--size", "tiny", "--batch", "2", "--seconds", "1", "--repeats", "1", "--device", "cpu"])
            == 0
        )
        assert KERNELS == cpu_kernels.CPU_KERNELS
    out = capsys.readouterr().out
    diff = re.search(r"on the unpadded utterances: (\S+)", out)
    assert diff and float(diff.group(1)) < 1e-4, out  # the same function as transformers' extractor
    rows = re.findall(r"^  (forward(?:\+backward)?)\s+(\d+\.\d) ms\s+(\d+\.\d) ms\s+(\d+\.\d+)$", out, re.M)
    assert [row[0] for row in rows] == ["forward", "forward+backward"], out
    for _, ours_ms, ref_ms, ratio in rows:
        assert float(ours_ms) > 0 and float(ref_ms) > 0
        check_ratio(float(ratio), float(ours_ms), float(ref_ms), half_unit=0.05)  # ms printed to 0.1
