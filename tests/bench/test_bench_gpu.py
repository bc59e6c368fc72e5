"""``python -m benchmarks gpu --quick --device cpu``: the GPU check's code at tiny sizes on
CPU, so that it cannot rot before a GPU runs it. One run with a forced failure in a middle
section: every section reports a status and its figures, the sections after the failed one
still run, the exit status is 1. (No speed is checked.) The quick run took 63 s on 2 idle cores
before its sections were forked from a runner that imports torch, transformers and ESPnet once
(the recipe's stages 1-11 beside the other sections); forked, 53 s on the same idle machine
(docs/benchmarks.md). As it runs a recipe, its tests are marked slow (``make test`` runs them)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import pytest

from benchmarks import gpu
from benchmarks.gpu_sections import FULL, QUICK, QUICK_CPU, SECTIONS, Epoch, parse_epochs, plan_for


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, venv_env, project_root):
    out = tmp_path_factory.mktemp("gpu_check")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "gpu",
            "--quick",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--fault",
            "decode=error",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=venv_env,
        cwd=project_root,
    )
    data = json.loads((out / "gpu_check.json").read_text())
    return result, data, (out / "gpu_check.md").read_text(), out


def results(data, section):
    return {r["measurement"]: r for r in data["sections"][section]["results"]}


@pytest.mark.slow  # the quick run: the mini pre-training recipe (stages 1-11) among the rest
def test_every_section_runs_and_a_failure_does_not_stop_the_others(quick_run):
    result, data, _, out = quick_run
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert list(data["sections"]) == list(SECTIONS)  # decode failed; compile and recipe still ran
    statuses = {name: section["status"] for name, section in data["sections"].items()}
    assert statuses == dict.fromkeys(SECTIONS, "ok") | {"decode": "failed"}, data["sections"]["recipe"]["error"]
    assert "forced failure (--fault)" in data["sections"]["decode"]["error"]
    assert data["exit_status"] == 1 and data["not_ok"] == ["decode"]
    assert data["device"] == "cpu" and data["quick"] and data["total_s"] <= data["budget_s"]
    assert data["plan"]["beside"] == ["recipe"]  # started first, reported last (in the sections' order)
    for section in data["sections"].values():
        assert 0 < section["seconds"] <= section["limit_s"] and section["rows"]
    log = (out / "gpu_check.log").read_text()
    assert [m.group(1) for m in re.finditer(r"^===== (\w+): (\w+)", log, re.M)] == list(SECTIONS)
    assert "8 of 9 sections ok; not ok: decode" in result.stdout


@pytest.mark.slow
def test_training_step_figures(quick_run):
    _, data, _, _ = quick_run
    rows = results(data, "pretrain")
    steps = [r for r in rows.values() if "precision" in r]
    assert [(r["precision"], r["batch"]) for r in steps] == [("bf16", 1), ("bf16", 2), ("fp32", 1), ("fp32", 2)]
    for r in steps:
        for model in (r["ours"], r["reference"]):
            assert model["s_per_step"] > 0 and model["audio_per_s"] == pytest.approx(r["audio_s"] / model["s_per_step"])
            assert model["peak_step_memory_bytes"] is None  # CUDA only
            assert abs(model["first_loss"] / math.log(101) - 1) < 0.25  # near chance: both pre-train
        assert r["speedup"] == pytest.approx(r["reference"]["s_per_step"] / r["ours"]["s_per_step"])
        assert set(r["targets"].values()) == {"n/a (BASE, bf16, GPU only)"}
    sdpa = rows["SDPA fast kernels in our bf16 pre-training step"]
    assert set(sdpa["kernels"]) == {"flash", "memory-efficient"}
    finetune = [r for r in results(data, "finetune").values()]
    assert [r["precision"] for r in finetune] == ["bf16", "fp32"]
    for r in finetune:
        assert r["ours"]["s_per_step"] > 0 and r["reference"]["s_per_step"] > 0 and r["speedup"] > 0
    compiled, encoder = results(data, "compile").values()
    assert compiled["first_step_s"] > 0 and compiled["layers"] == "ours, 2 layers compiled"
    assert compiled["backend"] == encoder["backend"] == "aot_eager"  # on CPU (quick): no C++ build
    for r in (compiled, encoder):
        assert r["speedup"] == pytest.approx(r["eager"]["s_per_step"] / r["compiled"]["s_per_step"])
    assert encoder["mode"] is None and encoder["first_step_s"] > 0  # CUDA graphs: inductor on CUDA only


@pytest.mark.slow
def test_cropped_ablation_and_profile_figures(quick_run):
    _, data, _, _ = quick_run
    padded, cropped, ratio = results(data, "cropped").values()
    assert (padded["kind"], cropped["kind"]) == ("padded", "cropped") and padded["batch"] == QUICK.step_batch
    assert cropped["audio_s"] == QUICK.step_batch * QUICK.seconds > padded["audio_s"]
    for r in (padded, cropped):
        for model in (r["ours"], r["reference"]):
            assert model["steps"] == QUICK.step_repeats and model["min_s"] <= model["s_per_step"] <= model["max_s"]
            assert model["q25_s"] <= model["q75_s"] and len(model["times_s"]) == QUICK.step_repeats
            assert abs(model["first_loss"] / math.log(101) - 1) < 0.25
        assert r["speedup"] == pytest.approx(r["reference"]["s_per_step"] / r["ours"]["s_per_step"])
    assert set(ratio["cropped_over_padded"]) == {"ours", "reference"}
    ablation = list(results(data, "ablation").values())
    variants = [r.get("variant") for r in ablation[:-1]]
    assert variants[:2] == ["everything on", "lengths given (masked path)"]
    assert {"cudnn.benchmark off", "AdamW not fused (foreach)", "SDPA flash only", "SDPA math only"} <= set(variants)
    timed = [r for r in ablation[:-1] if "refused" not in r]
    assert timed[0]["relative_to_everything_on"] == 1.0
    assert all(r["ours"]["steps"] == QUICK.step_repeats for r in timed)
    big = ablation[-1]
    assert big["batch"] == QUICK.big_batch and big["ours"]["s_per_step"] > 0 and big["reference"]["s_per_step"] > 0
    busy, top = results(data, "profile").values()
    assert busy["busy_fraction"] is None and busy["steps"] == QUICK.profile_steps and busy["wall_ms"] > 0  # CPU
    assert top["top"] and abs(sum(k["share"] for k in top["top"]) - 1) <= 1 and top["top"][0]["ms"] > 0


@pytest.mark.slow
def test_decoding_figures_are_kept_when_the_section_fails(quick_run):
    _, data, _, _ = quick_run
    rows = list(results(data, "decode").values())
    assert [r["batch"] for r in rows] == [1, 32]
    for r in rows:
        assert r["rtf"] == pytest.approx(r["seconds"] / r["audio_s"]) and r["rtf"] > 0
        assert r["hypotheses_equal_first_batch"] and r["utterances"] == 4


@pytest.mark.slow
def test_recipe_trains_and_its_loss_falls(quick_run):
    _, data, _, out = quick_run
    rows = list(results(data, "recipe").values())
    assert len(rows) == 3, rows
    data_stage, train, sync = rows
    assert data_stage["train_utterances"] > 0
    assert train["status"] == 0 and len(train["epochs"]) == 2 and train["updates"] == 6  # 2 epochs of 3 updates
    assert train["loss_finite"] and train["loss_falls"]
    assert train["epochs"] == [e._asdict() for e in parse_epochs((out / "recipe_train.log").read_text())]
    assert sync["checked"] is False and len(sync["losses"]) == 3 and all(map(math.isfinite, sync["losses"]))
    env = {k: v for r in results(data, "env").values() for k, v in r.items()}
    assert env["gpu"] is None and env["torch"] and env["python"]


@pytest.mark.slow
def test_table_has_a_row_per_measurement_and_each_sections_status(quick_run):
    _, data, table, _ = quick_run
    lines = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| section")]
    assert len(lines) == sum(len(s["rows"]) for s in data["sections"].values())
    first = {}
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert len(cells) == 7, line
        if cells[0]:
            first[cells[0]] = cells[1]
    assert list(first) == list(SECTIONS)
    assert first["decode"].startswith("failed, ") and "forced failure" in first["decode"]
    assert all(first[name].startswith("ok, ") for name in SECTIONS if name != "decode")
    assert "| ≥ 1,000 audio-s/s: n/a (BASE, bf16, GPU only); ≥ 1.5× HF: n/a (BASE, bf16, GPU only) |" in table
    assert re.search(r"\| [\d.,]+ audio-s/s \([\d.]+ s/step\) \|", table)


def test_a_running_section_reports_its_measurements_before_it_ends(tmp_path):
    """The runner hands on a section's measurements while it runs (status ``running``), so the
    reports of a check killed from outside keep them; at its limit it is stopped as before."""
    result = tmp_path / "section.json"
    code = (
        "import json, sys, time; "
        "open(sys.argv[1], 'w').write(json.dumps(dict(rows=[['m', '1 s', '', '', '']], results=[{'x': 1}], "
        "errors=[]))); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(result)], start_new_session=True)
    started = gpu.Started(proc, gpu.time.monotonic(), 5.0, result, tmp_path / "section.log")
    seen = []
    outcome = gpu.finish_section(started, seen.append)
    assert seen and all(o.status == "running" for o in seen)
    assert seen[-1].rows == [gpu.Row("m", "1 s")] and seen[-1].results == [{"x": 1}]
    assert outcome.status == "timeout" and outcome.rows == seen[-1].rows


def test_a_hanging_section_is_killed_at_its_limit(tmp_path, capsys):
    status = gpu.main(
        [
            "--quick",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--sections",
            "env",
            "--fault",
            "env=hang",
            "--limit",
            "env=3",
        ]
    )
    assert status == 1
    section = json.loads((tmp_path / "gpu_check.json").read_text())["sections"]["env"]
    assert section["status"] == "timeout" and section["limit_s"] == 3 and 3 <= section["seconds"] < 10
    assert section["error"] == "killed at its time limit, 3 s"
    assert "| env | timeout, 3 s: killed at its time limit, 3 s | — |" in (tmp_path / "gpu_check.md").read_text()


def test_a_section_beside_the_others_is_killed_at_its_limit_and_reported_in_order(tmp_path, capsys):
    status = gpu.main(
        [
            "--quick",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--sections",
            "recipe",
            "env",
            "--fault",
            "recipe=hang",
            "--fault",
            "env=hang",
            "--limit",
            "recipe=3",
            "--limit",
            "env=8",
        ]
    )
    assert status == 1
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    assert list(data["sections"]) == ["recipe", "env"] and data["not_ok"] == ["recipe", "env"]
    recipe, env = data["sections"]["recipe"], data["sections"]["env"]
    assert recipe["status"] == "timeout" and recipe["limit_s"] == 3 and 3 <= recipe["seconds"] < 6  # while env ran
    assert env["status"] == "timeout" and 8 <= env["seconds"] < 12
    log = (tmp_path / "gpu_check.log").read_text()
    order = [m.groups() for m in re.finditer(r"^===== (\w+): (\w+)", log, re.M)]
    assert order == [("recipe", "timeout"), ("env", "timeout")]
    out = capsys.readouterr().out
    assert out.index("recipe: running (limit 3 s, beside the others)") < out.index("env: running")


def test_a_spent_budget_skips_the_remaining_sections(tmp_path, capsys):
    status = gpu.main(
        [
            "--quick",
            "--device",
            "cpu",
            "--out",
            str(tmp_path),
            "--sections",
            "env",
            "pretrain",
            "--fault",
            "env=hang",
            "--budget",
            "6",
        ]
    )
    assert status == 1
    sections = json.loads((tmp_path / "gpu_check.json").read_text())["sections"]
    assert sections["env"]["status"] == "timeout" and sections["pretrain"]["status"] == "skipped"
    assert sections["pretrain"]["error"].startswith("not started: ")


def test_only_the_quick_cpu_run_changes_backend_runs_sections_beside_and_forks():
    assert plan_for(False, "cuda") == plan_for(False, "cpu") == FULL
    assert plan_for(True, "cuda:0") == QUICK and QUICK_CPU == plan_for(True, "cpu")
    assert (FULL.compile_backend, FULL.beside) == (QUICK.compile_backend, QUICK.beside) == ("inductor", ())
    assert (QUICK_CPU.compile_backend, QUICK_CPU.beside, QUICK_CPU.fork) == ("aot_eager", ("recipe",), True)
    assert not FULL.fork and not QUICK.fork  # GPU runs: each section a new interpreter
    assert QUICK_CPU._replace(compile_backend="inductor", beside=(), fork=False) == QUICK  # the same sizes


def test_bad_options_are_usage_errors():
    for argv in (
        ["--limit", "nope=3"],
        ["--limit", "env=0"],
        ["--fault", "env=explode"],
        ["--budget", "-1"],
        ["--sections", "nope"],
    ):
        with pytest.raises(SystemExit) as e:
            gpu.parse_args(argv)
        assert e.value.code == 2


def test_epoch_lines_of_an_espnet_train_log_are_parsed():
    line = (
        "[vm] 2026-12-02 14:22:50,166 (trainer:394) INFO: 12epoch results: [train] iter_time=0.020, loss=6.168, "
        "loss_m=2.884, train_time=0.805, time=14.5 seconds, total_count=18, [valid] loss=4.965, loss_m=2.826, "
        "time=0.6 seconds, total_count=4, [att_plot] time=1.13 seconds, total_count=0"
    )
    assert parse_epochs(f"noise\n{line}\nmore") == [Epoch(12, 6.168, 4.965, 14.5, 18)]
    assert parse_epochs(line.split(", [valid]")[0]) == [Epoch(12, 6.168, None, 14.5, 18)]
