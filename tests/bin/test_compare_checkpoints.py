"""compare_checkpoints: checkpoint description, score reading, table and plot, on synthetic files."""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

import pytest
import torch

from espnet_ext import scoring
from espnet_ext.bin.compare_checkpoints import main
from espnet_ext.report import checkpoints as report
from espnet_ext.wav2vec2.importers import FORMAT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REF = "abcdefghij"  # 10 characters: k substituted characters give a CER of exactly 10 k %


def own_checkpoint(path: Path, **extra) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "version": 1, "config": {}, "model": {}, **extra}, path)
    return path


def fairseq_checkpoint(path: Path, updates: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "model": {"w": torch.zeros(2)},
            "cfg": {"model": {}},
            "optimizer_history": [{"num_updates": 1}, {"num_updates": updates}],
        },
        path,
    )
    return path


def huggingface_dir(path: Path, step=None) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    if step is not None:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def write_scores(exp: Path, errors: dict, decode: str = "decode_ctc_greedy_last5.ave", done: bool = True) -> None:
    """``errors``: {(test set, metric): substituted characters of REF} -> result.txt files."""
    for (test_set, metric), k in errors.items():
        hyp = "x" * k + REF[k:]
        unit = {"cer": "char", "wer": "word", "per": "phn"}[metric]
        if unit == "phn":
            ref, hyp = " ".join(REF), " ".join(hyp)
        else:
            ref = REF
        score = scoring.score({"u1": ref}, {"u1": hyp}, unit)
        scoring.write_result_txt(score, exp / decode / test_set / f"score_{metric}" / "result.txt")
    if done:
        (exp / report.DONE_MARKER).touch()


# --------------------------------------------------------------------------- describe
def test_describe_orders_own_by_updates_then_foreign(tmp_path):
    for n in (300, 20, 100):
        own_checkpoint(tmp_path / "exp/ssl_a/checkpoints" / f"{n}updates.pth")
    fairseq = fairseq_checkpoint(tmp_path / "models/wav2vec_small.pt", 400000)
    hf = huggingface_dir(tmp_path / "models/hf-base")
    stored = own_checkpoint(tmp_path / "models/mine.pth", num_updates=torch.tensor(55))
    found = report.describe(
        [str(tmp_path / "models/*"), str(tmp_path / "exp/ssl_a/checkpoints/*updates.pth")], tag_prefix="cfg"
    )
    assert [(c.name, c.updates, c.origin) for c in found] == [
        ("ssl_a_20updates", 20, "own"),
        ("mine", 55, "own"),
        ("ssl_a_100updates", 100, "own"),
        ("ssl_a_300updates", 300, "own"),
        ("wav2vec_small", 400000, "foreign"),
        ("hf-base", None, "foreign"),
    ]
    assert [c.source_format for c in found[-2:]] == ["fairseq", "huggingface"]
    assert found[0].tag == "cfg_ssl_a_20updates"
    assert {c.path for c in found} >= {str(fairseq), str(hf), str(stored)}
    assert all(os.path.isabs(c.path) for c in found)


def test_exported_backbone_takes_the_count_of_latest_pth(tmp_path):
    exp = tmp_path / "exp/ssl_b"
    exp.mkdir(parents=True)
    torch.save({"num_updates": torch.tensor(1234), "w": torch.zeros(1)}, exp / "latest.pth")
    backbone = own_checkpoint(exp / "backbone.pth")
    (c,) = report.describe([str(backbone)])
    assert (c.name, c.updates, c.origin) == ("ssl_b_backbone", 1234, "own")
    old = time.time() - 100
    os.utime(backbone, (old, old))  # training went on after the export: the count is not known
    (c,) = report.describe([str(backbone)])
    assert c.updates is None and c.origin == "own"


def test_names_are_unique_and_hf_trainer_state_gives_updates(tmp_path):
    a = own_checkpoint(tmp_path / "x/ssl_run/checkpoints/100updates.pth")
    b = own_checkpoint(tmp_path / "y/ssl_run/checkpoints/100updates.pth")
    hf = huggingface_dir(tmp_path / "hf/checkpoint-500", step=500)
    found = report.describe([str(a), str(b), str(hf)])
    names = [c.name for c in found]
    assert len(set(names)) == 3 and all(n.startswith("ssl_run_100updates_") for n in names[:2])
    assert (found[2].name, found[2].updates, found[2].origin) == ("hf_checkpoint-500", 500, "foreign")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: str(d / "nothing*.pth"), "expected at least one match"),
        (lambda d: str(d / "missing.pth"), "expected a checkpoint file"),
        (lambda d: str(own_checkpoint(d / "with space/5updates.pth")), "without whitespace"),
        (lambda d: (torch.save([1, 2], d / "list.pt"), str(d / "list.pt"))[1], "expected a wav2vec 2.0 checkpoint"),
        (lambda d: ((d / "text.pt").write_text("hello"), str(d / "text.pt"))[1], "not a readable PyTorch checkpoint"),
        (lambda d: (d / "emptydir").mkdir() or str(d / "emptydir"), "config.json"),
    ],
)
def test_describe_rejects_bad_input(tmp_path, make, message):
    with pytest.raises(ValueError, match=message):
        report.describe([make(tmp_path)])


def test_a_file_with_unsafe_objects_is_foreign_of_unknown_count(tmp_path, caplog):
    import datetime

    path = tmp_path / "odd.pt"
    torch.save({"model": {}, "cfg": {}, "saved": datetime.date(2020, 1, 1)}, path)
    (c,) = report.describe([str(path)])
    assert (c.origin, c.source_format, c.updates) == ("foreign", "unknown", None)
    assert "not inspected" in caplog.text


def test_manifest_round_trip_and_errors(tmp_path):
    own_checkpoint(tmp_path / "s/checkpoints/7updates.pth")
    hf = huggingface_dir(tmp_path / "hf")
    found = report.describe([str(tmp_path / "s/checkpoints/7updates.pth"), str(hf)], "p")
    path = report.write_manifest(found, tmp_path / "m.tsv")
    assert report.read_manifest(path) == found
    path.write_text(path.read_text().replace("\t7\t", "\tseven\t"))
    with pytest.raises(ValueError, match=r"m\.tsv:2: expected 6 tab-separated fields"):
        report.read_manifest(path)
    path.write_text("name tag\n")
    with pytest.raises(ValueError, match="expected the header"):
        report.read_manifest(path)


# --------------------------------------------------------------------------- table and plot
@pytest.fixture
def compared(tmp_path):
    """A manifest of 3 own checkpoints (given out of order), one of unknown count, one foreign, and
    one unfinished; their scores: CER = 10 x k %."""
    ckpts = [own_checkpoint(tmp_path / "ssl/checkpoints" / f"{n}updates.pth") for n in (200, 50, 100)]
    ckpts.append(own_checkpoint(tmp_path / "other/backbone.pth"))
    ckpts.append(fairseq_checkpoint(tmp_path / "models/base.pt", 400000))
    ckpts.append(own_checkpoint(tmp_path / "ssl/checkpoints/300updates.pth"))
    found = report.describe([str(p) for p in ckpts], "cfg")
    manifest = report.write_manifest(found, tmp_path / "exp/compare_cfg/checkpoints.tsv")
    errors = {  # name: (dev CER, test CER, dev WER, test WER) as substituted characters
        "ssl_50updates": (6, 7, 1, 1),
        "ssl_100updates": (4, 3, 1, 1),
        "ssl_200updates": (2, 4, 1, 1),
        "other_backbone": (5, 5, 1, 1),
        "base": (1, 1, 1, 1),
    }
    for name, (dc, tc, dw, tw) in errors.items():
        write_scores(
            tmp_path / "exp" / f"asr_cfg_{name}",
            {("dev", "cer"): dc, ("test", "cer"): tc, ("dev", "wer"): dw, ("test", "wer"): tw},
        )
    write_scores(tmp_path / "exp/asr_cfg_ssl_300updates", {("dev", "cer"): 0}, done=False)  # no marker
    return tmp_path, manifest, errors


def table_rows(markdown: str):
    lines = [line[1:-1].split("|") for line in markdown.splitlines() if line.startswith("|")]
    return lines[0], lines[2:]


def test_table_rows_columns_and_best(compared):
    root, manifest, errors = compared
    assert (
        main(
            [
                "table",
                str(manifest),
                "--expdir",
                str(root / "exp"),
                "--md",
                str(root / "R.md"),
                "--png",
                str(root / "R.png"),
                "--asr_config",
                "conf/tuning/cfg.yaml",
            ]
        )
        == 0
    )
    header, rows = table_rows((root / "R.md").read_text())
    assert header == ["checkpoint", "updates", "dev CER", "test CER", "dev WER", "test WER", "note"]
    names = [re.sub(r"\*\*| \(foreign\)", "", r[0]) for r in rows]
    assert names == ["ssl_50updates", "ssl_100updates", "ssl_200updates", "ssl_300updates", "other_backbone", "base"]
    assert [r[1] for r in rows] == ["50", "100", "200", "300", "?", "400000"]
    for name, row in zip(names, rows):
        if name == "ssl_300updates":
            assert row[2:6] == ["-"] * 4 and row[6] == "not finished"
            continue
        assert [float(x) for x in row[2:4]] == [10.0 * k for k in errors[name][:2]]
        assert [float(x) for x in row[4:6]] == [100.0, 100.0]
    means = {n: sum(errors[n][:2]) / 2 for n in errors}
    best = min(means, key=means.get)
    assert best == "base"  # the foreign checkpoint competes too
    marked = [n for n, r in zip(names, rows) if r[6] == "**best**"]
    assert marked == [best] and rows[names.index(best)][0].startswith("**")
    assert rows[-1][0].endswith("(foreign)**") or rows[-1][0].endswith("(foreign)")


def test_best_ignores_rows_not_scored_on_every_set(tmp_path):
    own_checkpoint(tmp_path / "s/checkpoints/1updates.pth")
    own_checkpoint(tmp_path / "s/checkpoints/2updates.pth")
    found = report.describe([str(tmp_path / "s/checkpoints/*updates.pth")], "c")
    write_scores(tmp_path / "exp/asr_c_s_1updates", {("dev", "cer"): 0})  # test set missing
    write_scores(tmp_path / "exp/asr_c_s_2updates", {("dev", "cer"): 5, ("test", "cer"): 5})
    rows = report.collect_rows(found, tmp_path / "exp")
    assert report.best_row(rows, "CER", ["dev", "test"]) == 1
    _, table = table_rows(report.format_table(rows))
    assert table[0][3] == "-" and table[1][4] == "**best**"


def test_metric_option_and_decode_dir_choice(tmp_path):
    own_checkpoint(tmp_path / "s/checkpoints/1updates.pth")
    own_checkpoint(tmp_path / "s/checkpoints/2updates.pth")
    found = report.describe([str(tmp_path / "s/checkpoints/*updates.pth")], "c")
    exp1, exp2 = tmp_path / "exp/asr_c_s_1updates", tmp_path / "exp/asr_c_s_2updates"
    write_scores(exp1, {("test", "cer"): 1, ("test", "per"): 9}, decode="decode_a")
    write_scores(exp2, {("test", "cer"): 2, ("test", "per"): 3}, decode="decode_a")
    rows = report.collect_rows(found, tmp_path / "exp")
    assert report.test_sets_and_metrics(rows) == (["test"], ["PER", "CER"])
    assert report.best_row(rows, report.choose_metric(["PER", "CER"]), ["test"]) == 1  # PER by default
    assert report.best_row(rows, report.choose_metric(["PER", "CER"], "cer"), ["test"]) == 0
    with pytest.raises(ValueError, match="expected one of the scored metrics"):
        report.choose_metric(["PER", "CER"], "wer")
    time.sleep(0.05)
    write_scores(exp1, {("test", "cer"): 8}, decode="decode_b")  # newer: chosen unless asked otherwise
    assert report.read_scores(exp1).decode_dir.name == "decode_b"
    assert report.read_scores(exp1).rates == {("test", "CER"): 80.0}
    assert report.read_scores(exp1, "decode_a").rates[("test", "PER")] == 90.0
    assert report.read_scores(exp1, "decode_c") is None


def test_plot_is_a_png_and_outputs_are_not_rewritten(compared):
    import matplotlib.image

    root, manifest, _ = compared
    argv = [
        "table",
        str(manifest),
        "--expdir",
        str(root / "exp"),
        "--md",
        str(root / "out/R.md"),
        "--png",
        str(root / "out/R.png"),
    ]
    assert main(argv) == 0
    png = root / "out/R.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(png)
    assert image.shape[:2] == (500, 800) and image.std() > 0  # 8 x 5 in at 100 dpi, not blank
    assert "![CER against pre-training updates](R.png)" in (root / "out/R.md").read_text()
    old = time.time() - 100
    for path in (png, root / "out/R.md"):
        os.utime(path, (old, old))
    assert main(argv) == 0
    assert [p.stat().st_mtime for p in (png, root / "out/R.md")] == [old, old]
    write_scores(root / "exp/asr_cfg_ssl_300updates", {("dev", "cer"): 0})  # now finished: both change
    assert main(argv) == 0
    assert all(p.stat().st_mtime > old for p in (png, root / "out/R.md"))


def test_plot_without_a_curve_draws_reference_lines(tmp_path):
    fairseq_checkpoint(tmp_path / "m/a.pt", 10)
    found = report.describe([str(tmp_path / "m/a.pt")], "c")
    write_scores(tmp_path / "exp/asr_c_a", {("test", "cer"): 3})
    data = report.plot_png(report.collect_rows(found, tmp_path / "exp"))
    assert data[:8] == PNG_SIGNATURE


def test_cli_errors_name_the_problem(tmp_path, caplog):
    own_checkpoint(tmp_path / "s/checkpoints/1updates.pth")
    manifest = tmp_path / "m.tsv"
    assert main(["describe", "--out", str(manifest), str(tmp_path / "s/checkpoints/*updates.pth")]) == 0
    assert main(["table", str(manifest), "--expdir", str(tmp_path / "exp")]) == 1
    assert "none of its 1 checkpoint(s) has finished" in caplog.text
    assert main(["describe", "--out", str(manifest), str(tmp_path / "nope.pt")]) == 1
    assert "nope.pt: expected a checkpoint file" in caplog.text


# --------------------------------------------------------------------------- random init, significance
def write_utterance_scores(exp: Path, test_set: str, wrong, decode: str = "decode_ctc_greedy_last5.ave") -> None:
    """CER of ``test_set``: utterance k of REF with its first ``wrong[k]`` characters substituted."""
    refs = {f"s-u{k}": REF for k in range(len(wrong))}
    hyps = {f"s-u{k}": "x" * n + REF[n:] for k, n in enumerate(wrong)}
    scoring.write_result_txt(scoring.score(refs, hyps, "char"), exp / decode / test_set / "score_cer" / "result.txt")
    (exp / report.DONE_MARKER).touch()


def test_random_init_row_comes_first_and_rows_are_tested_against_the_best(tmp_path):
    """Six utterances. Against the best (100 updates, errors 1 0 1 0 0 0): 50 updates (1 1 1 0 0 1)
    differs in segments by 0, -1, 0, -1 (mean -1/2, sd sqrt(1/3): Z = -sqrt 3, p = 0.083: not
    significantly worse, bold); random init (5 on each) by -4, -5, -4, -5, -5, -5 (Z = -22)."""
    for n in (100, 50):
        own_checkpoint(tmp_path / "s/checkpoints" / f"{n}updates.pth")
    manifest = report.write_manifest(
        report.describe([str(tmp_path / "s/checkpoints/*updates.pth")], "cfg"), tmp_path / "m.tsv"
    )
    with open(manifest, "a") as f:  # the line compare_checkpoints.sh --random_init true appends
        f.write("random_init\tcfg_random_init\t0\trandom\tpreset\t-\n")
    assert report.read_manifest(manifest)[-1].random_init  # appended last; tabulated first
    found = report.table_order(report.read_manifest(manifest))
    assert [(c.name, c.random_init) for c in found] == [
        ("random_init", True),
        ("s_50updates", False),
        ("s_100updates", False),
    ]
    assert found[0] == report.random_init_checkpoint("cfg")
    for name, wrong in (
        ("s_100updates", [1, 0, 1, 0, 0, 0]),
        ("s_50updates", [1, 1, 1, 0, 0, 1]),
        ("random_init", [5] * 6),
    ):
        write_utterance_scores(tmp_path / "exp" / f"asr_cfg_{name}", "test", wrong)
    rows = report.collect_rows(report.read_manifest(manifest), tmp_path / "exp")
    assert [r.checkpoint for r in rows] == found
    versus = report.compare_to_best(rows, "CER", ["test"], 2)
    assert versus[1].p == pytest.approx(math.erfc(math.sqrt(3) / math.sqrt(2))) and versus[1].not_worse
    assert versus[0].p < 0.001 and not versus[0].not_worse
    _, table = table_rows(report.format_table(rows))
    assert [r[0] for r in table] == ["random init", "**s_50updates**", "**s_100updates**"]
    assert [r[1] for r in table] == ["0", "50", "100"]
    assert [r[-1] for r in table] == [
        "significantly worse (p<0.001, 6 segments)",
        "not significantly worse (p=0.083, 4 segments)",
        "**best**",
    ]
    assert "- random init: no checkpoint" in report.format_table(rows)


def test_a_row_on_other_utterances_is_not_compared(tmp_path):
    for n in (1, 2):
        own_checkpoint(tmp_path / "s/checkpoints" / f"{n}updates.pth")
    found = report.describe([str(tmp_path / "s/checkpoints/*updates.pth")], "c")
    write_utterance_scores(tmp_path / "exp/asr_c_s_1updates", "test", [1, 1, 0])
    write_utterance_scores(tmp_path / "exp/asr_c_s_2updates", "test", [1, 0])
    text = report.format_table(report.collect_rows(found, tmp_path / "exp"))
    _, table = table_rows(text)
    assert table[1][-1] == "**best**" and table[0][0] == "s_1updates" and table[0][-1] == "not compared"
    reason = text.split("Not compared with the best row:\n\n- s_1updates: ", 1)[1].splitlines()[0]
    assert reason.startswith(str(tmp_path / "exp/asr_c_s_2updates/decode_ctc_greedy_last5.ave/test/score_cer"))
    assert "expected the same utterances, found 0 only in the first () and 1 only in the second (s-u2)" in reason
