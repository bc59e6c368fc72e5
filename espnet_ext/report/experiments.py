"""The results table of every experiment of a recipe, with the differences that are real.

Reads, below ``EXPDIR`` (a recipe's ``exp``):

``asr_*/config.yaml``
    The training config as ESPnet writes it (every option resolved), flattened into dotted keys
    (``frontend_conf.path``, ``optim_conf.lr``). The table shows the keys whose values differ
    across the experiments, leaving out those that differ between any two runs and say nothing
    (:data:`IGNORED_KEYS`: ``output_dir``, data and shape file paths, the feature statistics'
    path, distributed-run and logging settings, and ``portable_conf``: the architecture a
    pre-trained frontend was read with, recorded for packing, which the checkpoint's path already
    tells apart). Paths show as their file name (the pre-trained
    checkpoint: ``100updates.pth``), with as many parent directories as it takes to tell two
    apart; long lists as their length.
``asr_*/<decode>/<test_set>/score_{cer,wer,per,ter}/result.txt``
    Stage 13's scoring: the error rate of its ``Sum/Avg`` row (as RESULTS.md shows it) and the
    per-utterance alignments (:func:`espnet_ext.scoring.significance.read_score_dir`).

One Markdown table per metric, a row per experiment and decode dir (an experiment without
scores: one row, "not scored"), a column per test set. Per test set the row of lowest error
rate and every row not significantly worse than it are in bold; the others' cells give the
test against that best row: MAPSSWE's two-sided p (SCTK's matched-pairs sentence-segment word
error test; not significantly worse: p >= 0.05), or with ``test="bootstrap"`` the 95 %
paired-bootstrap interval of the difference in points (not significantly worse: the interval
reaches 0 or below). A cell that cannot be compared (other utterances, other references)
reads "n/a", explained under the table. No torch, no ESPnet: this runs at the end of stage 13.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from espnet_ext.core.atomic import write_text
from espnet_ext.report import PathLike
from espnet_ext.scoring import significance
from espnet_ext.scoring.result_txt import read_summary

METRICS = ("CER", "WER", "PER", "TER")
TESTS = ("mapsswe", "bootstrap")
ALPHA = 0.05
NOT_SCORED = "not scored"
#: config keys that differ between any two runs and say nothing about the model
IGNORED_KEYS = re.compile(
    r"^(output_dir|print_config|log_level|dry_run|.*shape_file.*|.*data_path_and_name_and_type.*|"
    r"normalize_conf\.stats_file|dist_.*|local_rank|multiprocessing_distributed|wandb_.*|use_wandb|"
    r"use_tensorboard|use_matplotlib|create_graph_in_tensorboard|num_att_plot|resume|collect_stats|"
    r"write_collected_feats|portable_conf\..*)$"
)
MAX_INLINE_SETTINGS = 4  # more differing keys than this go to a table of their own
MAX_CELL = 32  # characters of a settings cell


# --------------------------------------------------------------------------- experiments
class Experiment(NamedTuple):
    """An experiment dir: its flattened config and its score dirs."""

    path: Path
    config: dict[str, Any]  # dotted key -> value ({} without config.yaml)
    scores: dict[str, dict[tuple[str, str], Path]]  # decode dir -> (test set, metric) -> score dir

    @property
    def name(self) -> str:
        return self.path.name


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (lists and scalars are values)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def read_config(path: Path) -> dict[str, Any]:
    """The flattened ``config.yaml``; {} when there is none. ValueError naming the file when
    it is not a YAML mapping."""
    if not path.is_file():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: expected ESPnet's YAML training config, found unreadable YAML ({error})") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a YAML mapping of training options, found {type(data).__name__}")
    return flatten(data)


def find_scores(exp: Path) -> dict[str, dict[tuple[str, str], Path]]:
    """``{decode dir: {(test set, metric): score dir}}`` of ``exp/<decode>/<set>/score_<metric>/result.txt``."""
    found: dict[str, dict[tuple[str, str], Path]] = {}
    for result in sorted(exp.glob("*/*/score_*/result.txt")):
        metric = result.parent.name[len("score_") :].upper()
        if metric in METRICS:
            found.setdefault(result.parents[2].name, {})[(result.parents[1].name, metric)] = result.parent
    return found


def find_experiments(expdir: PathLike) -> list[Experiment]:
    """Every ``expdir/asr_*/`` directory, sorted by name. ValueError when there is none."""
    expdir = Path(expdir)
    dirs = sorted(p for p in expdir.glob("asr_*") if p.is_dir() and not p.name.startswith("asr_stats"))
    if not dirs:
        raise ValueError(f"{expdir}: expected experiment dirs asr_*/ (stage 11's output), found none")
    return [Experiment(d, read_config(d / "config.yaml"), find_scores(d)) for d in dirs]


# --------------------------------------------------------------------------- settings
def _canonical(config: Mapping[str, Any], key: str) -> str:
    """A comparable text of ``config[key]`` (a marker when the key is absent)."""
    return json.dumps(config[key], sort_keys=True, default=str) if key in config else "\0absent"


def differing_keys(configs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Keys whose values (or presence) differ across ``configs``, in first-seen order, less
    :data:`IGNORED_KEYS`; none for a single config."""
    keys = list(dict.fromkeys(k for c in configs for k in c))
    return [k for k in keys if not IGNORED_KEYS.match(k) and len({_canonical(c, k) for c in configs}) > 1]


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and "/" in value and not value.startswith(("http:", "https:"))


def _path_tail(value: str, parts: int) -> str:
    """A path by its file name (``parts`` 1), its last two components (2), or the component
    ``parts`` from the end and the file name (``run1/…/100updates.pth``); the path part of
    ``path:src:dst`` items (ESPnet's ``init_param``) likewise."""
    path, sep, rest = value.partition(":")
    components = Path(path).parts
    if parts <= 2 or len(components) <= parts:
        shown = "/".join(components[-parts:])
    else:
        shown = f"{components[-parts]}/…/{components[-1]}"
    return shown + sep + rest


def _render(value: Any, parts: int = 1) -> str:
    """A short text for a config value: paths by their last ``parts`` components."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if _is_path(value):
        return _path_tail(value, parts)
    if isinstance(value, (list, tuple)):
        items = [_render(v, parts) for v in value]
        text = ",".join(items)
        return text if len(items) == 1 or (len(text) <= MAX_CELL and len(items) <= 8) else f"[{len(items)} items]"
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return str(value)


def _shorten(text: str) -> str:
    """``text`` cut in the middle to :data:`MAX_CELL` characters, ``|`` escaped for Markdown."""
    if len(text) > MAX_CELL:
        half = (MAX_CELL - 1) // 2
        text = text[:half] + "…" + text[-(MAX_CELL - 1 - half) :]
    return text.replace("|", "\\|")


def render_settings(configs: Sequence[Mapping[str, Any]], key: str) -> list[str]:
    """The cells of ``key`` for each config ("-" where absent): paths with as many parent
    directories as it takes to tell different values apart, then a short hash if still alike."""
    raws = {_canonical(c, key): c[key] for c in configs if key in c}
    for parts in range(1, 6):
        cells = {raw: _shorten(_render(value, parts)) for raw, value in raws.items()}
        if len(set(cells.values())) == len(raws):
            break
    else:
        cells = {raw: f"{cell} #{hashlib.sha1(raw.encode()).hexdigest()[:6]}" for raw, cell in cells.items()}
    return [cells[_canonical(c, key)] if key in c else "-" for c in configs]


# --------------------------------------------------------------------------- significance per test set
class Row(NamedTuple):
    """A table row: an experiment and one of its decode dirs (None: it has no scores)."""

    experiment: Experiment
    decode: str | None

    def score_dir(self, test_set: str, metric: str) -> Path | None:
        return self.experiment.scores.get(self.decode, {}).get((test_set, metric)) if self.decode else None


class Column(NamedTuple):
    """One test set and metric across the rows: a cell per row, the best row, what to explain."""

    cells: list[str]
    best: int | None
    utterances: tuple[int, int] | None  # the best row's utterances and reference tokens
    problems: list[str]  # why a cell reads n/a


def table_rows(experiments: Sequence[Experiment]) -> list[Row]:
    """A row per experiment and decode dir (sorted); one "not scored" row for an experiment without scores."""
    return [Row(e, d) for e in experiments for d in (sorted(e.scores) or [None])]


def p_text(p: float) -> str:
    """A p-value for a cell: 3 decimals below 0.1 (so that none rounds onto 0.05), else 2."""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}" if p < 0.1 else f"p={p:.2f}"


def _against_best(best: significance.ScoredSet, other: significance.ScoredSet, test: str) -> tuple[bool, str]:
    """(other is not significantly worse than best, the test's text for other's cell)."""
    a, b = significance.paired(best, other)
    if test == "bootstrap":
        boot = significance.bootstrap_utterances(a, b)
        return boot.low <= 0.0, f"[{boot.low:+.1f}, {boot.high:+.1f}]"
    m = significance.mapsswe_utterances(a, b)
    return not m.significant(ALPHA), p_text(m.reported_p) + (" (sign test)" if m.no_variance else "")


def _read(score_dir: Path, cache: dict[Path, Any]) -> tuple[float | None, Any]:
    """The score dir's (rate shown in its Sum/Avg row, its ScoredSet or the ValueError that
    prevents reading it); cached. The rate is None when result.txt has no Sum/Avg row."""
    if score_dir not in cache:
        try:
            shown: float | None = read_summary(score_dir / significance.RESULT_TXT).errors
        except ValueError:
            shown = None
        try:
            cache[score_dir] = (shown, significance.read_score_dir(score_dir))
        except ValueError as error:
            cache[score_dir] = (shown, error)
    return cache[score_dir]


def _exact_rate(shown: float | None, scored: Any) -> float:
    """The rate that ranks rows: from the alignments (unrounded) where they were read."""
    if isinstance(scored, significance.ScoredSet) and scored.ref_words:
        return 100.0 * scored.errors / scored.ref_words
    return math.inf if shown is None else shown


def _cell(shown: float | None, bold: bool, text: str = "") -> str:
    number = "?" if shown is None else f"{shown:.1f}"
    return (f"**{number}**" if bold else number) + (f" {text}" if text else "")


def compare_column(
    rows: Sequence[Row], test_set: str, metric: str, test: str = "mapsswe", cache: dict[Path, Any] | None = None
) -> Column:
    """The cells of ``test_set``'s ``metric`` column (see the module docstring)."""
    cache = {} if cache is None else cache
    read = {
        i: _read(path, cache) for i, row in enumerate(rows) if (path := row.score_dir(test_set, metric)) is not None
    }
    cells = ["-"] * len(rows)
    if not read:
        return Column(cells, None, None, [])
    best = min(read, key=lambda i: (_exact_rate(*read[i]), i))
    best_set, problems = read[best][1], []
    cells[best] = _cell(read[best][0], True)
    for i, (shown, scored) in read.items():
        if i == best:
            continue
        problem = next((x for x in (best_set, scored) if isinstance(x, Exception)), None)
        if problem is None:
            try:
                not_worse, text = _against_best(best_set, scored, test)
                cells[i] = _cell(shown, not_worse, text)
                continue
            except ValueError as error:
                problem = error
        cells[i] = _cell(shown, False, "n/a")
        problems.append(f"{_label(rows[i])}: {problem}")
    size = (len(best_set.utterances), best_set.ref_words) if isinstance(best_set, significance.ScoredSet) else None
    return Column(cells, best, size, problems)


def _label(row: Row) -> str:
    return f"{row.experiment.name}/{row.decode}" if row.decode else row.experiment.name


# --------------------------------------------------------------------------- Markdown
_TOKENS = {"CER": "characters", "WER": "words", "PER": "phones", "TER": "BPE tokens"}


def metrics_found(experiments: Sequence[Experiment]) -> list[str]:
    """The metrics scored in any experiment, in :data:`METRICS` order."""
    found = {m for e in experiments for by_set in e.scores.values() for _, m in by_set}
    return [m for m in METRICS if m in found]


def _note(metric: str, test: str, columns: Mapping[str, Column], test_sets: Sequence[str]) -> list[str]:
    """The lines under a metric's table: what bold and the numbers mean, the test sets' sizes,
    the cells that could not be compared."""
    if test == "bootstrap":
        how = (
            "the paired bootstrap over utterances (Bisani & Ney 2004; 10,000 resamples, seed 0): the 95 % "
            f"interval of the difference in {metric} points from that row reaches 0; the other rows give it"
        )
    else:
        how = (
            "MAPSSWE (NIST's matched-pairs sentence-segment word error test, as SCTK's `sc_stats -t mapsswe`) "
            f"against that row, two-sided p >= {ALPHA}; the other rows give its p-value (where every segment "
            "differs by the same count, MAPSSWE has no variance and the exact sign test over the segments "
            'gives p, marked "sign test")'
        )
    lines = [f"**Bold**: per test set, the lowest {metric} and every row not significantly worse than it: {how}."]
    sizes = [
        f"{t} {columns[t].utterances[0]} utterances, {columns[t].utterances[1]:,} {_TOKENS[metric]}"
        for t in test_sets
        if columns[t].utterances
    ]
    if sizes:
        lines.append(
            f'Test sets: {"; ".join(sizes)}. "{NOT_SCORED}": no `<decode>/<test_set>/'
            f"score_{metric.lower()}/result.txt` yet."
        )
    problems = [f"{t}, {p}" for t in test_sets for p in columns[t].problems]
    if problems:
        lines.append("n/a (not compared): " + "; ".join(problems))
    return lines


def metric_table(
    rows: Sequence[Row],
    metric: str,
    keys: Sequence[str],
    settings: Mapping[str, list[str]],
    test: str = "mapsswe",
    cache: dict[Path, Any] | None = None,
) -> list[str]:
    """A metric's section: the table (experiment, the settings ``keys``, decode dir, a column
    per test set) and its note. ``settings[key]``: a cell per row."""
    scored = [r for r in rows if r.decode is not None]
    test_sets = sorted({t for r in scored for (t, m) in r.experiment.scores[r.decode] if m == metric})
    columns = {t: compare_column(rows, t, metric, test, cache) for t in test_sets}
    head = ["experiment", *(k.replace("|", "\\|") for k in keys), "decode", *test_sets]
    out = [
        f"## {metric} (%)",
        "",
        "|" + "|".join(head) + "|",
        "|" + "---|" * (len(head) - len(test_sets)) + "---:|" * len(test_sets),
    ]
    for i, row in enumerate(rows):
        cells = [row.experiment.name, *(settings[k][i] for k in keys), row.decode or NOT_SCORED]
        out.append("|" + "|".join(cells + [columns[t].cells[i] for t in test_sets]) + "|")
    return out + [line for note in _note(metric, test, columns, test_sets) for line in ("", note)] + [""]


def format_results(expdir: PathLike, metric: str | None = None, test: str = "mapsswe") -> str:
    """The Markdown of every experiment below ``expdir`` (see the module docstring): a section
    per metric scored (or only ``metric``: cer, wer, per or ter)."""
    if test not in TESTS:
        raise ValueError(f"test: expected one of {', '.join(TESTS)}, found {test!r}")
    if metric and metric.upper() not in METRICS:
        raise ValueError(f"metric: expected cer, wer, per or ter, found {metric!r}")
    experiments = find_experiments(expdir)
    metrics = [metric.upper()] if metric else metrics_found(experiments)
    rows = table_rows(experiments)
    configs = [e.config for e in experiments]
    keys = differing_keys([c for c in configs if c])  # an experiment not yet trained has none: "-" cells
    per_experiment = {k: dict(zip((e.name for e in experiments), render_settings(configs, k))) for k in keys}
    settings = {k: [per_experiment[k][r.experiment.name] for r in rows] for k in keys}
    inline = keys if len(keys) <= MAX_INLINE_SETTINGS else []
    out = ["<!-- Generated by `python -m espnet_ext.bin.show_results`. -->", f"# Results of {Path(expdir)}", ""]
    cache: dict[Path, Any] = {}
    for m in metrics:
        out += metric_table(rows, m, inline, settings, test, cache)
    if not metrics:
        out += [
            f"No experiment is scored yet (stage 13 writes <decode>/<test_set>/score_<metric>/result.txt): "
            f"{', '.join(e.name for e in experiments)}.",
            "",
        ]
    if keys and not inline:
        out += settings_table(experiments, keys, per_experiment)
    elif not keys and len(experiments) > 1:
        out += ["The experiments' configs differ in no setting shown (paths and logging aside).", ""]
    return "\n".join(out)


def settings_table(
    experiments: Sequence[Experiment], keys: Sequence[str], per_experiment: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """A table of the settings that differ, a row per experiment (when too many for the results table)."""
    head = ["experiment", *(k.replace("|", "\\|") for k in keys)]
    out = ["## Settings that differ", "", "|" + "|".join(head) + "|", "|" + "---|" * len(head)]
    for e in experiments:
        out.append("|" + "|".join([e.name, *(per_experiment[k][e.name] for k in keys)]) + "|")
    return out + [""]


def write_results(expdir: PathLike, out: PathLike, metric: str | None = None, test: str = "mapsswe") -> str:
    """Write :func:`format_results` to ``out`` atomically; returns the text."""
    text = format_results(expdir, metric, test)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    write_text(out, text)
    return text
