"""``python -m espnet_ext.bench pretrain`` runs end to end (it checks the output, not a speed)."""

import math
import re

import pytest
import torch

from espnet_ext.bench import pretrain

SECONDS = r"(\d+\.\d+) s/step"


def test_pretrain_benchmark_prints_both_timings_a_ratio_and_comparable_losses(capsys, check_ratio):
    assert pretrain.main(["--size", "tiny", "--batch", "2", "--seconds", "1", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pre-training step, tiny model, batch 2 x 1-0.6 s"), out
    ours = re.search(r"ours \(Wav2Vec2Pretraining\)\s+" + SECONDS, out)
    reference = re.search(r"transformers Wav2Vec2ForPreTraining\s+" + SECONDS, out)
    ratio = re.search(r"ratio ours/reference: (\d+\.\d+)", out)
    assert ours and reference and ratio, out
    ours_s, reference_s = float(ours.group(1)), float(reference.group(1))
    assert ours_s > 0 and reference_s > 0
    check_ratio(float(ratio.group(1)), ours_s, reference_s, half_unit=0.0005)  # s/step printed to 1 ms
    assert ("audio per second" in out) == torch.cuda.is_available()  # for the (default) cuda device only
    losses = re.search(r"first-step loss per masked frame: ours (\S+), reference (\S+) \(chance", out)
    assert losses, out
    for loss in map(float, losses.groups()):  # both near chance at initialisation: both pre-train
        assert abs(loss / math.log(101) - 1) < 0.25, out


def test_pretrain_benchmark_rejects_bad_sizes():
    with pytest.raises(SystemExit):
        pretrain.main(["--batch", "0"])


def test_pretrain_benchmark_with_compile_times_a_compiled_copy_of_ours(capsys, check_ratio):
    torch._dynamo.reset()
    assert pretrain.main(["--size", "tiny", "--batch", "2", "--seconds", "1", "--repeats", "1", "--compile"]) == 0
    torch._dynamo.reset()
    out = capsys.readouterr().out
    ours = re.search(r"ours \(Wav2Vec2Pretraining\)\s+" + SECONDS, out)
    compiled = re.search(r"ours, (\d+) layers compiled\s+" + SECONDS, out)
    summary = re.search(r"first step \(compilation included\) (\d+\.\d) s; ratio compiled/ours (\d+\.\d+)", out)
    assert ours and compiled and summary, out
    assert int(compiled.group(1)) == 2  # the tiny config's layers
    check_ratio(float(summary.group(2)), float(compiled.group(2)), float(ours.group(1)), half_unit=0.0005)
    losses = re.search(r"ours (\S+), reference (\S+), compiled (\S+) \(chance", out)
    assert losses, out
    for loss in map(float, losses.groups()):
        assert abs(loss / math.log(101) - 1) < 0.25, out
