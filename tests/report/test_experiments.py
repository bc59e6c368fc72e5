"""espnet_ext.report.experiments and python -m espnet_ext.bin.show_results: the results table of
every experiment of a recipe, on fake exp dirs (config.yaml, stage 13's score dirs) whose
significance figures are computed by hand."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from espnet_ext import scoring
from espnet_ext.bin.show_results import main
from espnet_ext.report import experiments as report

REF = "abcdefghij"  # 10 characters, one token each: an error is 10 % of an utterance
UTTS = [f"spk{k % 2}-utt{k:02d}" for k in range(10)]
DECODE = "decode_ctc_greedy_asr_model_valid.loss.ave"


def write_score(exp: Path, test_set: str, wrong, decode: str = DECODE, utts=UTTS) -> Path:
    """Stage 13's score_cer of ``test_set``: the utterances of index in ``wrong`` have their 6th
    character substituted (an isolated error: one MAPSSWE segment of 4 words)."""
    refs = {u: REF for u in utts}
    hyps = {u: REF[:5] + "x" + REF[6:] if k in wrong else REF for k, u in enumerate(utts)}
    return scoring.write_result_txt(
        scoring.score(refs, hyps, "char"), exp / decode / test_set / "score_cer" / "result.txt"
    ).parent


def write_exp(root: Path, name: str, checkpoint: str, lr: float, **extra) -> Path:
    """``root/asr_<name>/config.yaml`` as ESPnet writes it (paths of the run included)."""
    exp = root / f"asr_{name}"
    exp.mkdir(parents=True)
    config = {
        "config": "conf/tuning/train_asr_w2v2_mini_ctc.yaml",
        "output_dir": str(exp),
        "seed": 0,
        "train_shape_file": [f"exp/asr_stats_{name}/train/speech_shape"],
        "valid_data_path_and_name_and_type": [[f"dump/raw/dev_{name}/wav.scp", "speech", "sound"]],
        "frontend": "wav2vec2",
        "frontend_conf": {"path": checkpoint, "preset": None},
        "normalize_conf": {"stats_file": f"exp/asr_stats_{name}/train/feats_stats.npz"},
        "optim": "adam",
        "optim_conf": {"lr": lr},
        "token_list": list("abcdefghijx"),
        "best_model_criterion": [["valid", "loss", "min"]],
        **extra,
    }
    (exp / "config.yaml").write_text(yaml.safe_dump(config))
    return exp


@pytest.fixture
def expdir(tmp_path):
    """Four experiments: a (10 % CER on test), b (2 %, the best; dev too), c (3 %), d (no scores)."""
    root = tmp_path / "exp"
    write_score(write_exp(root, "a", "/m/ssl/checkpoints/100updates.pth", 0.001), "test", range(10))
    b = write_exp(root, "b", "/m/ssl/checkpoints/200updates.pth", 0.001)
    write_score(b, "test", [0, 1])
    write_score(b, "dev", [0])
    write_score(write_exp(root, "c", "/m/ssl/checkpoints/200updates.pth", 0.002), "test", [0, 1, 2])
    write_exp(root, "d", "/m/ssl/checkpoints/300updates.pth", 0.003)
    (root / "asr_stats_raw_char").mkdir()  # stage 10's statistics: not an experiment
    return root


def rows_of(markdown: str, section: str = "## CER (%)"):
    lines = markdown.split(section, 1)[1].splitlines()
    table = [line[1:-1].split("|") for line in lines if line.startswith("|")]
    return table[0], table[2:]


def normal_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def test_table_marks_the_best_and_rows_not_significantly_worse(expdir):
    """On test, against b: c's segments differ by 0, 0, -1 (mean -1/3, sd sqrt(1/3): Z = -1,
    p = 0.32: not significantly worse, bold); a's by 0, 0 and eight times -1 (mean -0.8,
    sd sqrt(1.6 / 9): Z = -6, p < 0.001: worse)."""
    text = report.format_results(expdir)
    header, rows = rows_of(text)
    assert header == ["experiment", "frontend_conf.path", "optim_conf.lr", "decode", "dev", "test"]
    by_name = {r[0]: r for r in rows}
    assert list(by_name) == ["asr_a", "asr_b", "asr_c", "asr_d"]
    assert by_name["asr_b"][3:] == [DECODE, "**1.0**", "**2.0**"]
    assert f"{normal_p(-1.0):.2f}" == "0.32" and by_name["asr_c"][5] == "**3.0** p=0.32"
    z_a = -0.8 / (math.sqrt(1.6 / 9) / math.sqrt(10))
    assert z_a == pytest.approx(-6.0) and normal_p(z_a) < 0.001 and by_name["asr_a"][5] == "10.0 p<0.001"
    assert by_name["asr_a"][4] == "-" and by_name["asr_d"][3:] == [report.NOT_SCORED, "-", "-"]
    assert [r[1:3] for r in rows] == [
        ["100updates.pth", "0.001"],
        ["200updates.pth", "0.001"],
        ["200updates.pth", "0.002"],
        ["300updates.pth", "0.003"],
    ]
    assert "MAPSSWE" in text and "p >= 0.05" in text
    (expdir / "asr_e").mkdir()  # not trained yet: no config.yaml, no settings shown for it
    header, rows = rows_of(report.format_results(expdir))
    assert header[1:3] == ["frontend_conf.path", "optim_conf.lr"] and rows[-1][:4] == ["asr_e", "-", "-", "not scored"]
    assert "test 10 utterances, 100 characters" in text


def test_bootstrap_intervals_against_the_best(expdir):
    """c differs from b on one utterance of 10: about a third of the resamples miss it, so the
    interval starts at 0 (bold); a is worse on 8 of 10, every interval point above 0."""
    _, rows = rows_of(report.format_results(expdir, test="bootstrap"))
    by_name = {r[0]: r for r in rows}
    assert by_name["asr_c"][5].startswith("**3.0** [+0.0, +")
    low = float(by_name["asr_a"][5].split("[")[1].split(",")[0])
    assert by_name["asr_a"][5].startswith("10.0 [") and low > 0


def test_several_decodes_and_metrics(expdir):
    write_score(expdir / "asr_b", "test", [0, 1, 2, 3], decode="decode_ctc_beam")
    (expdir / "asr_b/decode_ctc_beam/test/score_wer").mkdir(parents=True)
    refs = {u: "a b" for u in UTTS}
    scoring.write_result_txt(
        scoring.score(refs, refs, "word"), expdir / "asr_b/decode_ctc_beam/test/score_wer/result.txt"
    )
    text = report.format_results(expdir)
    _, cer_rows = rows_of(text)
    assert [(r[0], r[3]) for r in cer_rows][1:3] == [("asr_b", "decode_ctc_beam"), ("asr_b", DECODE)]
    # against b's other decode: segment differences 0, 0, -1, -1: mean -1/2, sd sqrt(1/3), Z = -sqrt(3)
    assert f"{normal_p(-math.sqrt(3)):.3f}" == "0.083" and cer_rows[1][5] == "**4.0** p=0.083"
    _, wer_rows = rows_of(text, "## WER (%)")
    assert [r[-1] for r in wer_rows] == ["-", "**0.0**", "-", "-", "-"]
    only = report.format_results(expdir, metric="wer")
    assert "## WER (%)" in only and "## CER (%)" not in only


def test_ter_gets_a_table_after_the_others(expdir):
    """TER (stage 13's score_ter for BPE recipes) is a metric of its own, in BPE tokens."""
    refs = {u: "▁a b" for u in UTTS}
    ter = scoring.score(refs, {**refs, UTTS[0]: "▁a"}, "bpe", bpe=str.split)
    scoring.write_result_txt(ter, expdir / f"asr_b/{DECODE}/test/score_ter/result.txt")
    text = report.format_results(expdir)
    assert text.index("## CER (%)") < text.index("## TER (%)")
    _, ter_rows = rows_of(text, "## TER (%)")
    assert [r[-1] for r in ter_rows] == ["-", "**5.0**", "-", "-"]  # only asr_b is scored
    assert f"test {len(UTTS)} utterances, {2 * len(UTTS)} BPE tokens" in text
    assert "## CER" not in report.format_results(expdir, metric="ter")


def test_utterances_that_differ_are_not_compared(expdir):
    exp = write_exp(expdir, "e", "/m/ssl/checkpoints/400updates.pth", 0.001)
    write_score(exp, "test", [0, 1, 2], utts=UTTS[:9])
    _, rows = rows_of(text := report.format_results(expdir))
    assert {r[0]: r for r in rows}["asr_e"][5] == "3.3 n/a"
    b_dir, e_dir = expdir / f"asr_b/{DECODE}/test/score_cer", exp / f"{DECODE}/test/score_cer"
    assert f"n/a (not compared): test, asr_e/{DECODE}: {b_dir} and {e_dir}: expected the same utterances" in text


def test_many_differing_settings_get_a_table_of_their_own(tmp_path):
    root = tmp_path / "exp"
    for k in range(2):
        write_score(
            write_exp(
                root,
                f"x{k}",
                f"/m/run{k}/checkpoints/100updates.pth",
                0.001 * (k + 1),
                seed=k,
                encoder_conf={"num_blocks": 2 + k, "dropout_rate": 0.1},
                init_param=[f"/m/run{k}/model.pth:encoder:encoder"],
            ),
            "test",
            [k],
        )
    text = report.format_results(root)
    header, _ = rows_of(text)
    assert header == ["experiment", "decode", "test"]
    header, rows = rows_of(text, "## Settings that differ")
    assert header == [
        "experiment",
        "encoder_conf.num_blocks",
        "frontend_conf.path",
        "init_param",
        "optim_conf.lr",
        "seed",
    ]  # the config's order (yaml.safe_dump sorts it)
    assert rows[0] == ["asr_x0", "2", "run0/…/100updates.pth", "run0/model.pth:encoder:encoder", "0.001", "0"]
    assert rows[1][2] == "run1/…/100updates.pth"


def test_settings_rendering():
    configs = [
        report.flatten({"a": {"b": 1, "c": [1, 2]}, "output_dir": "exp/x", "p": "/r/s1/m.pth", "l": list(range(50))}),
        report.flatten(
            {
                "a": {"b": 2, "c": [1, 2]},
                "output_dir": "exp/y",
                "p": "/r/s2/m.pth",
                "l": list(range(49)) + [0],
                "new": None,
            }
        ),
    ]
    assert configs[0]["a.c"] == [1, 2] and "a" not in configs[0]
    assert report.differing_keys(configs) == ["a.b", "p", "l", "new"]
    assert report.render_settings(configs, "p") == ["s1/m.pth", "s2/m.pth"]
    assert report.render_settings(configs, "new") == ["-", "none"]
    cells = report.render_settings(configs, "l")
    assert cells[0].startswith("[50 items] #") and cells[0] != cells[1]
    assert report.differing_keys(configs[:1]) == []
    # the architecture a pre-trained frontend recorded for packing is not a setting
    recorded = [
        report.flatten({"portable_conf": {"frontend_conf": {"config": {"encoder_layers": 4}}}, "p": "/a"}),
        report.flatten({"p": "/b"}),
    ]
    assert report.differing_keys(recorded) == ["p"]


def test_no_experiments_or_bad_config_is_an_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 1
    assert f"{tmp_path}: expected experiment dirs asr_*/" in capsys.readouterr().err
    (tmp_path / "asr_x").mkdir()
    (tmp_path / "asr_x/config.yaml").write_text("- a list\n")
    assert main([str(tmp_path)]) == 1
    assert "asr_x/config.yaml: expected a YAML mapping" in capsys.readouterr().err
    (tmp_path / "asr_x/config.yaml").write_text("seed: 0\n")
    assert main([str(tmp_path)]) == 0
    assert "No experiment is scored yet" in capsys.readouterr().out


def test_cli_writes_the_file_quickly_without_torch_or_espnet(expdir, tmp_path):
    out = tmp_path / "RESULTS_all.md"
    code = (
        "import json, sys, time; t = time.time(); from espnet_ext.bin.show_results import main; "
        f"status = main([{str(expdir)!r}, '--out', {str(out)!r}, '--metric', 'cer']); "
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'espnet', 'espnet2'}); "
        "print(json.dumps([status, heavy, time.time() - t]), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    status, heavy, seconds = json.loads(proc.stderr.splitlines()[-1])
    assert proc.returncode == 0 and status == 0 and heavy == [], proc.stderr
    assert seconds < 5
    assert out.read_text() == proc.stdout and "|asr_b|" in proc.stdout
    assert not list(tmp_path.glob("RESULTS_all.md.tmp*"))


def test_segments_all_differing_alike_fall_back_to_the_sign_test(expdir):
    """f: two errors where b has one (utterances 0, 1), one where b has none (2-6): seven
    segments, each one error worse than b's; MAPSSWE has no variance (sc_stats: Z = 0), the
    sign test gives p = 2 / 2 ** 7."""
    exp = write_exp(expdir, "f", "/m/ssl/checkpoints/500updates.pth", 0.001)
    refs = {u: REF for u in UTTS}
    hyps = {u: REF[:5] + ("xx" + REF[7:] if k < 2 else "x" + REF[6:] if k < 7 else REF[5:]) for k, u in enumerate(UTTS)}
    scoring.write_result_txt(scoring.score(refs, hyps, "char"), exp / DECODE / "test/score_cer/result.txt")
    _, rows = rows_of(report.format_results(expdir))
    assert 2 / 2**7 == 0.015625 and {r[0]: r for r in rows}["asr_f"][5] == "9.0 p=0.016 (sign test)"
