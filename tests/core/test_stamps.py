"""Step inputs (espnet_ext.core.stamps and its CLI): what counts as a change, the one-line
description of it, and the directory a result with other inputs goes to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from espnet_ext.core import stamps


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_configs_compare_by_content_not_by_text(tmp_path):
    config = write(tmp_path / "c.yaml", "max_epoch: 15  # epochs\noptim_conf:\n  lr: 0.001\n")
    before = stamps.record({"config": config})
    write(config, "# a comment\noptim_conf: {lr: 0.001}\nmax_epoch: 15\n")  # same content, other text
    assert stamps.record({"config": config})["fingerprint"] == before["fingerprint"]
    write(config, "max_epoch: 6\noptim_conf:\n  lr: 0.002\n")
    after = stamps.record({"config": config})
    assert after["fingerprint"] != before["fingerprint"]
    assert stamps.changes(before, after) == ["config: max_epoch 15 -> 6, optim_conf.lr 0.001 -> 0.002"]


def test_a_config_subset_ignores_other_keys(tmp_path):
    config = write(tmp_path / "c.yaml", "frontend: wav2vec2\nfrontend_conf: {layer: 3}\nmax_epoch: 15\n")
    spec = f"{config}@frontend,frontend_conf"
    before = stamps.record({"frontend": spec})
    assert before["inputs"]["frontend"]["value"] == {"frontend": "wav2vec2", "frontend_conf.layer": 3}
    write(config, "frontend: wav2vec2\nfrontend_conf: {layer: 3}\nmax_epoch: 6\n")
    assert stamps.record({"frontend": spec})["fingerprint"] == before["fingerprint"]
    write(config, "frontend: wav2vec2\nfrontend_conf: {layer: 4}\nmax_epoch: 6\n")
    assert stamps.changes(before, stamps.record({"frontend": spec})) == ["frontend: frontend_conf.layer 3 -> 4"]


def test_files_compare_by_content_wherever_they_are(tmp_path):
    a = write(tmp_path / "a/model.pth", "weights")
    b = write(tmp_path / "b/model.pth", "weights")
    first = stamps.record(files={"pretrained": a})
    assert stamps.record(files={"pretrained": b})["fingerprint"] == first["fingerprint"]  # moved, same content
    write(b, "other weights")
    assert stamps.changes(first, stamps.record(files={"pretrained": b})) == [f"pretrained changed ({b})"]
    gone = stamps.record(files={"pretrained": tmp_path / "none.pth"})
    assert gone["inputs"]["pretrained"]["value"] == stamps.MISSING
    assert stamps.changes(first, gone) == [f"pretrained is missing ({tmp_path / 'none.pth'})"]


def test_a_directory_input_is_its_files(tmp_path):
    model = tmp_path / "hf"
    write(model / "config.json", "{}")
    write(model / "model.safetensors", "w")
    write(model / ".cache/lock", "x")  # hidden: not part of the model
    before = stamps.record(files={"pretrained": model})
    write(model / ".cache/lock", "y")
    assert stamps.record(files={"pretrained": model})["fingerprint"] == before["fingerprint"]
    write(model / "model.safetensors", "w2")
    assert stamps.record(files={"pretrained": model})["fingerprint"] != before["fingerprint"]


def test_options_and_added_or_removed_inputs_are_named(tmp_path):
    before = stamps.record(options={"asr_args": "", "fs": "16000"})
    after = stamps.record(options={"asr_args": "--seed 1", "nbpe": "30"})
    assert stamps.changes(before, after) == ["asr_args '' -> --seed 1", "fs removed", "nbpe added"]
    assert stamps.changes(None, after) == ["no record of the inputs it was made with"]


def test_the_hash_cache_reuses_a_hash_until_the_file_changes(tmp_path, monkeypatch):
    big = write(tmp_path / "big.pth", "x" * 1000)
    cache = stamps.HashCache(tmp_path / "cache.json")
    digest = cache.sha256(big)
    cache.save()
    reads = []
    real_open = open

    def counting_open(path, *args, **kwargs):
        if Path(path) == big:
            reads.append(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    again = stamps.HashCache(tmp_path / "cache.json")
    assert again.sha256(big) == digest and reads == []  # from the cache: the file is not read
    write(big, "y" * 1000)
    os.utime(big, ns=(1, 1))  # same size, other modification time
    assert again.sha256(big) != digest and len(reads) == 1


def test_is_done_only_with_the_same_inputs(tmp_path):
    marker = tmp_path / "step/.done"
    current = stamps.record(options={"fs": "16000"})
    assert stamps.is_done(marker, current) == (False, "not done yet")
    write(marker, "")  # a marker without a record (made before inputs were recorded)
    assert stamps.is_done(marker, current) == (False, "no record of the inputs it was made with")
    stamps.write_record(marker, current)
    assert stamps.is_done(marker, current) == (True, "already done")
    assert stamps.is_done(marker, stamps.record(options={"fs": "8000"})) == (False, "fs 16000 -> 8000")


def test_choose_dir_keeps_experiments_that_differ_apart(tmp_path):
    base = tmp_path / "exp/asr_x"
    first = stamps.record(options={"max_epoch": "15"})
    assert stamps.choose_dir(base, first) == (base, "")  # new
    base.mkdir(parents=True)
    assert stamps.choose_dir(base, first) == (base, "")  # empty
    stamps.write_record(base / stamps.RECORD_NAME, first)
    assert stamps.choose_dir(base, first) == (base, "")  # same inputs
    second = stamps.record(options={"max_epoch": "6"})
    other, why = stamps.choose_dir(base, second)
    assert other == tmp_path / f"exp/asr_x_{second['fingerprint'][:8]}"
    assert why == f"{base} was made with other inputs (max_epoch 15 -> 6): using {other}"
    (base / stamps.RECORD_NAME).unlink()
    write(base / "train.log", "")  # an experiment made without a record
    assert stamps.choose_dir(base, first)[0] == tmp_path / f"exp/asr_x_{first['fingerprint'][:8]}"


def stamp_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "espnet_ext.bin.stamp", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_cli_check_marks_and_dir(tmp_path):
    write(tmp_path / "c.yaml", "a: 1\n")
    inputs = ("--config", "config=c.yaml", "--option", "x=1", "--cache", "cache.json")
    first = stamp_cli(tmp_path, "check", "out/.done", *inputs)
    assert (first.returncode, first.stdout) == (1, "not done yet\n")
    (tmp_path / "out/.done.next").rename(tmp_path / "out/.done")  # the driver's mark_done
    assert stamp_cli(tmp_path, "check", "out/.done", *inputs).returncode == 0
    write(tmp_path / "c.yaml", "a: 2\n")
    changed = stamp_cli(tmp_path, "check", "out/.done", *inputs)
    assert (changed.returncode, changed.stdout) == (1, "config: a 1 -> 2\n")
    assert json.loads((tmp_path / "out/.done.next").read_text())["inputs"]["config"]["value"] == {"a": 2}
    chosen = stamp_cli(tmp_path, "dir", "out", "--save", "rec.json", *inputs)
    fp = json.loads((tmp_path / "rec.json").read_text())["fingerprint"]
    assert chosen.stdout.splitlines()[0] == f"out_{fp[:8]}"  # out holds a step with other inputs
    assert chosen.stdout.splitlines()[1].startswith("out was made with other inputs (no record")


@pytest.mark.parametrize(
    "args, message",
    [
        (("--option", "x"), "--option: expected NAME=VALUE, found 'x'"),
        (("--option", "x=1", "--file", "x=f"), "--option: ['x'] named by another input too"),
        (("--config", "c=missing.yaml"), "missing.yaml: expected a readable YAML config"),
    ],
)
def test_cli_rejects_bad_inputs(tmp_path, args, message):
    result = stamp_cli(tmp_path, "check", "m", *args)
    assert result.returncode == 2 and message in result.stderr
