"""A short wav2vec 1.0 pre-training on the mini corpus, in-process, with the model and
optimisation settings of ``egs2/mini/ssl1/conf/tuning/train_ssl_w2v1_tiny.yaml``: on held-out
utterances the loss starts at its zero-logit value and ends clearly below chance (the best a
model reaches without telling positives from distractors), and the accuracy of the positive
ranked first rises well above ``1 / (N + 1)``. ``pytest -s`` prints the figures.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch
import yaml

import espnet_ext  # noqa: F401  (registry)
from espnet_ext.espnet.wav2vec1 import ESPnetWav2Vec1Model
from espnet_ext.wav2vec1.loss import chance_loss, zero_logit_loss

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "egs2/mini/ssl1/conf/tuning/train_ssl_w2v1_tiny.yaml"
UPDATES = 150
BATCH = 8  # utterances per update, of similar lengths, cropped to the shortest (crop_audio)


def load_corpus() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Every utterance of the mini corpus; every 8th is held out."""
    files = sorted((ROOT / "egs2/mini/corpus").glob("*/wav/*.flac"))
    assert len(files) > 400, "the mini corpus is missing"
    waves = [torch.from_numpy(sf.read(f, dtype="float32")[0]) for f in files]
    return [w for i, w in enumerate(waves) if i % 8], waves[::8]


def padded(waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(w) for w in waves])
    speech = torch.zeros(len(waves), int(lengths.max()))
    for i, w in enumerate(waves):
        speech[i, : len(w)] = w
    return speech, lengths


def evaluate(model: ESPnetWav2Vec1Model, waves: list[torch.Tensor]) -> tuple[float, float]:
    """Loss per prediction and accuracy over ``waves`` (padded batches, fixed distractors)."""
    model.eval()
    generator = torch.Generator().manual_seed(0)
    loss = correct = count = 0.0
    with torch.no_grad():
        for i in range(0, len(waves), 16):
            out = model.pretraining(*padded(waves[i : i + 16]), generator=generator)
            n = float(out.loss.sample_size)
            loss, correct, count = loss + float(out.loss.loss), correct + float(out.stats.accuracy) * n, count + n
    model.train()
    return loss / count, correct / count


def batches(train: list[torch.Tensor], rng: random.Random):
    """Length-sorted groups of BATCH utterances in random order, each cropped to its shortest
    at a random offset (ESPnet's numel batches with HuBERTCollateFn's crop_audio)."""
    ordered = sorted(train, key=len)
    groups = [ordered[i : i + BATCH] for i in range(0, len(ordered) - BATCH + 1, BATCH)]
    while True:
        rng.shuffle(groups)
        for group in groups:
            size = min(len(w) for w in group)
            starts = [rng.randrange(len(w) - size + 1) for w in group]
            yield torch.stack([w[s : s + size] for w, s in zip(group, starts)])


@pytest.fixture(scope="module")
def pretrained():
    conf = yaml.safe_load(CONFIG.read_text())
    assert conf["model"] == "wav2vec1" and conf["optim"] == "adam" and conf["scheduler"] == "warmuplr"
    torch.manual_seed(conf["seed"])
    model = ESPnetWav2Vec1Model(**conf["model_conf"])
    train, heldout = load_corpus()
    start = evaluate(model, heldout)
    from espnet2.schedulers.warmup_lr import WarmupLR

    optimizer = torch.optim.Adam(model.parameters(), **conf["optim_conf"])
    scheduler = WarmupLR(optimizer, **conf["scheduler_conf"])
    began = time.time()
    for _, speech in zip(range(UPDATES), batches(train, random.Random(0))):
        loss, stats, weight = model(speech, torch.full((len(speech),), speech.size(1)))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), conf["grad_clip"])
        optimizer.step()
        optimizer.zero_grad()
        scheduler.step()
    seconds = time.time() - began
    end = evaluate(model, heldout)
    config = model.config
    print(
        f"\nwav2vec 1.0 tiny on the mini corpus, {UPDATES} updates of {BATCH} utterances in {seconds:.0f} s: "
        f"held-out loss {start[0]:.3f} -> {end[0]:.3f} (zero logits "
        f"{zero_logit_loss(config.num_negatives, config.infonce, config.balanced_classes):.3f}, chance "
        f"{chance_loss(config.num_negatives, config.infonce, config.balanced_classes):.3f}), accuracy "
        f"{start[1]:.3f} -> {end[1]:.3f} (chance {1 / (config.num_negatives + 1):.3f})"
    )
    return model, start, end


def test_starts_near_its_zero_logit_value(pretrained):
    model, (loss, accuracy), _ = pretrained
    config = model.config
    assert abs(loss - zero_logit_loss(config.num_negatives, config.infonce, config.balanced_classes)) < 0.15
    assert accuracy < 1.5 / (config.num_negatives + 1)


def test_loss_falls_clearly_below_chance_and_accuracy_rises(pretrained):
    model, _, (loss, accuracy) = pretrained
    config = model.config
    assert loss < 0.9 * chance_loss(config.num_negatives, config.infonce, config.balanced_classes)
    assert accuracy > 2.0 / (config.num_negatives + 1)
    assert int(model.num_updates) == UPDATES  # optimizer updates were counted
