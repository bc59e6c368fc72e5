"""``--cpu_kernels {auto,true,false}`` (espnet_ext.espnet.kernel_option): every task takes it, from
the command line or a config; each worker process applies it (auto: on with --ngpu 0); decoding
follows the trained model's config.yaml."""

from __future__ import annotations

import logging

import pytest
from espnet2.tasks.abs_task import AbsTask

from espnet_ext.espnet.kernel_option import apply_cpu_kernels, apply_for_decoding, wants_cpu_kernels
from espnet_ext.espnet.tasks import ASRTask, CLSTask, SSLTask
from espnet_ext.wav2vec2 import cpu_kernels
from espnet_ext.wav2vec2.modules import KERNELS

ALL = set(cpu_kernels.CPU_KERNELS)


@pytest.fixture(autouse=True)
def registry():
    """The registry as it was before the test, whatever the test switched."""
    saved = dict(KERNELS)
    yield
    KERNELS.clear()
    KERNELS.update(saved)


@pytest.mark.parametrize("task", [ASRTask, CLSTask, SSLTask], ids=["asr", "cls", "ssl"])
def test_every_task_takes_the_option(task, tmp_path):
    parser = task.get_parser()
    assert parser.parse_args(["--output_dir", str(tmp_path)]).cpu_kernels == "auto"
    for value in ("auto", "true", "false", "False"):
        assert parser.parse_args(["--output_dir", str(tmp_path), "--cpu_kernels", value]).cpu_kernels == value.lower()
    with pytest.raises(SystemExit):
        parser.parse_args(["--output_dir", str(tmp_path), "--cpu_kernels", "sometimes"])
    assert "--cpu_kernels" in parser.format_help()


def test_a_config_sets_it_and_yaml_booleans_count(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("cpu_kernels: false\n")  # YAML reads a bool
    args = ASRTask.get_parser().parse_args(["--config", str(config), "--output_dir", str(tmp_path)])
    assert not wants_cpu_kernels(args.cpu_kernels, ngpu=0)
    config.write_text("cpu_kernels: true\n")
    args = ASRTask.get_parser().parse_args(["--config", str(config), "--output_dir", str(tmp_path)])
    assert wants_cpu_kernels(args.cpu_kernels, ngpu=1)


@pytest.mark.parametrize(
    "value,ngpu,on",
    [("auto", 0, True), ("auto", 1, False), ("true", 0, True), ("true", 2, True), ("false", 0, False)],
)
def test_apply_does_what_the_value_says(value, ngpu, on):
    (cpu_kernels.disable if on else cpu_kernels.enable)()  # start from the other state
    assert apply_cpu_kernels(value, ngpu) is on
    assert set(KERNELS) == (ALL if on else set())


def test_an_unknown_value_is_an_error():
    with pytest.raises(ValueError, match="cpu_kernels: expected one of auto, true, false; found 'yes'"):
        apply_cpu_kernels("yes", 0)


@pytest.mark.parametrize("task", [ASRTask, SSLTask], ids=["asr", "ssl"])
@pytest.mark.parametrize("value,ngpu,on", [("auto", 0, True), ("auto", 1, False), ("false", 0, False)])
def test_each_worker_applies_it_before_espnet_runs(task, value, ngpu, on, tmp_path, monkeypatch):
    """What ESPnet's main_worker (which builds the model and trains) finds registered."""
    seen = []
    monkeypatch.setattr(AbsTask, "main_worker", classmethod(lambda cls, args: seen.append(set(KERNELS))))
    (cpu_kernels.disable if on else cpu_kernels.enable)()
    args = task.get_parser().parse_args(["--output_dir", str(tmp_path), "--cpu_kernels", value])
    args.ngpu = ngpu
    task.main_worker(args)
    assert seen == [ALL if on else set()]


def test_building_the_model_logs_the_state(tmp_path, caplog):
    argv = ["--output_dir", str(tmp_path), "--token_list", "x", "--frontend", "wav2vec2"]
    argv += ["--frontend_conf", "preset=tiny", "--normalize", "none", "--encoder", "w2v2_light"]
    args = ASRTask.get_parser().parse_args(argv + ["--model_conf", "ctc_weight=1.0"])
    args.token_list = ["<blank>", "<unk>", "a", "<sos/eos>"]
    cpu_kernels.enable()
    with caplog.at_level(logging.INFO):
        ASRTask.build_model(args)
    assert "CPU kernels (--cpu_kernels, espnet_ext.wav2vec2.cpu_kernels): on (attention, " in caplog.text
    caplog.clear()
    cpu_kernels.disable()
    with caplog.at_level(logging.INFO):
        ASRTask.build_model(args)
    assert "espnet_ext.wav2vec2.cpu_kernels): off" in caplog.text


def test_decoding_follows_the_trained_config_and_the_decoding_device(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("token_type: char\n")  # a config without the key: auto
    assert apply_for_decoding(["--asr_train_config", str(config), "--ngpu", "0"], "asr_train_config")
    assert set(KERNELS) == ALL
    assert not apply_for_decoding(["--asr_train_config", str(config), "--ngpu=1"], "asr_train_config")
    assert not KERNELS
    config.write_text("cpu_kernels: false\n")
    assert not apply_for_decoding(["--classification_train_config", str(config)], "classification_train_config")
    config.write_text("cpu_kernels: true\n")
    assert apply_for_decoding(["--asr_train_config", str(config), "--ngpu", "1"], "asr_train_config")
    assert apply_for_decoding(["--output_dir", "x"], "asr_train_config")  # no config given: auto, CPU
    config.write_text("cpu_kernels: often\n")
    with pytest.raises(ValueError, match="config.yaml: cpu_kernels: expected one of auto, true, false"):
        apply_for_decoding(["--asr_train_config", str(config)], "asr_train_config")
