"""``python -m benchmarks pretrain`` runs end to end (it checks the output, not a speed)."""

import math
import re

import pytest
import torch

from benchmarks import pretrain

OURS, REFERENCE = "ours (Wav2Vec2Pretraining)", "transformers Wav2Vec2ForPreTraining"
COMPILED = r"ours, (\d+) layers compiled"


def test_pretrain_benchmark_prints_both_timings_a_ratio_and_comparable_losses(capsys, step_timings, compiled_timing):
    assert pretrain.main(["--size", "tiny", "--batch", "2", "--seconds", "1", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pre-training step, tiny model, batch 2 x 1-0.6 s"), out
    ours_s, _ = step_timings(out, OURS, REFERENCE)
    assert compiled_timing(out, COMPILED, ours_s) is None
    assert ("audio per second" in out) == torch.cuda.is_available()  # for the (default) cuda device only
    losses = re.search(r"first-step loss per masked frame: ours (\S+), reference (\S+) \(chance", out)
    assert losses, out
    for loss in map(float, losses.groups()):  # both near chance at initialisation: both pre-train
        assert abs(loss / math.log(101) - 1) < 0.25, out


def test_pretrain_benchmark_rejects_bad_sizes():
    with pytest.raises(SystemExit):
        pretrain.main(["--batch", "0"])


def test_pretrain_benchmark_with_compile_times_a_compiled_copy_of_ours(capsys, step_timings, compiled_timing):
    torch._dynamo.reset()
    assert pretrain.main(["--size", "tiny", "--batch", "2", "--seconds", "1", "--repeats", "1", "--compile"]) == 0
    torch._dynamo.reset()
    out = capsys.readouterr().out
    ours_s, _ = step_timings(out, OURS, REFERENCE)
    compiled = compiled_timing(out, COMPILED, ours_s)
    assert compiled and int(compiled.group(1)) == 2, out  # the tiny config's layers
    losses = re.search(r"ours (\S+), reference (\S+), compiled (\S+) \(chance", out)
    assert losses, out
    for loss in map(float, losses.groups()):
        assert abs(loss / math.log(101) - 1) < 0.25, out
