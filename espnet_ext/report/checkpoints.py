"""Error rates after fine-tuning from each of several pre-training checkpoints: a table and a plot.

The library behind ``egs2/TEMPLATE/asr1/compare_checkpoints.sh`` (through
``python -m espnet_ext.bin.compare_checkpoints``). What it reads and writes:

Checkpoints (:func:`describe`): files or globs of files, and Hugging Face model directories.
*Own* checkpoints are this project's format (``espnet_ext.wav2vec2``: ssl1's
``checkpoints/<N>updates.pth`` and its ``backbone.pth`` export); *foreign* ones are fairseq
``.pt`` files and Hugging Face directories (and files that cannot be inspected safely).
The update count comes from the name ``<N>updates.pth``; else from the checkpoint where it
is stored: a ``num_updates`` entry of an own file, fairseq's
``optimizer_history[-1]["num_updates"]``, a Hugging Face ``trainer_state.json``'s
``global_step``; else, for an own file next to a ``latest.pth`` that is not newer than it
(ssl1's ``backbone.pth``, exported from ``latest.pth``), that model's ``num_updates``
buffer; else it is unknown. Files are only peeked at (``torch.load(weights_only=True,
mmap=True)``), never built into models.

Manifest (:func:`write_manifest`): a TSV with the header
``name tag updates origin format path``, one checkpoint a line, in table order: own
checkpoints by update count, own ones of unknown count, then foreign ones. ``tag`` is the
fine-tuning experiment's ``--asr_tag`` (``exp/asr_<tag>``). A row of 0 updates, or of origin
``random`` (``random_init <cfg>_random_init 0 random preset -``: the config's own preset
fine-tuned from random initialisation), is the random-initialisation baseline: it reads
"random init" and comes first.

Scores (:func:`read_scores`): ``exp/asr_<tag>/<decode>/<test_set>/score_{cer,wer,per}/result.txt``
(asr.sh stage 13), the error rate of the ``Sum/Avg`` row; a row counts as finished when the
driver has left ``exp/asr_<tag>/.done_compare``. The decode dir is the one asked for, else
each experiment's newest.

Table (:func:`format_table`): a row per checkpoint, a column per test set and metric (the
chosen metric first). The best row is the lowest mean of the chosen metric over the test
sets, among rows scored on all of them; it and every row not significantly worse than it are
in bold. The test (:func:`compare_to_best`) is MAPSSWE
(:mod:`espnet_ext.scoring.significance`) of the chosen metric against the best row, over the
utterances of all test sets pooled; not significantly worse: two-sided p >= 0.05 (where every
segment differs by the same count, the sign test over the segments). Plot
(:func:`plot_png`): the chosen metric against pre-training updates, a line per test set;
foreign checkpoints, and own ones of unknown update count, as labelled horizontal reference
lines.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from espnet_ext import scoring
from espnet_ext.core.atomic import write_text
from espnet_ext.report import PathLike, figure_png, pyplot
from espnet_ext.scoring import significance

logger = logging.getLogger(__name__)

DONE_MARKER = ".done_compare"
UPDATES_FILE = re.compile(r"^(\d+)updates\.pth$")
#: metrics in order of preference for the default chosen metric
METRICS = ("PER", "CER", "WER")
ORIGINS = ("own", "foreign", "random")
RANDOM_INIT = "random init"  # the label of the random-initialisation row
ALPHA = 0.05  # the level of the test against the best row
MANIFEST_COLUMNS = ("name", "tag", "updates", "origin", "format", "path")
#: file or directory names that say nothing about the checkpoint: the parent's name is prefixed
GENERIC_NAMES = re.compile(
    r"^(backbone|checkpoint|checkpoint_best|checkpoint_last|checkpoint[-_]\d+|model|latest|"
    r"pytorch_model|final)$"
)
# characters the recipe's word-split --asr_args cannot carry in a path
_UNSAFE_PATH = re.compile(r"[\s'\"\\*?\[\]$`]")
_GLOB = re.compile(r"[*?\[]")


class Checkpoint(NamedTuple):
    """One pre-training checkpoint to compare (a manifest line)."""

    name: str  # readable and unique, safe in a file name
    tag: str  # the fine-tuning experiment: exp/asr_<tag>
    updates: int | None  # pre-training updates, None when unknown (0: random initialisation)
    origin: str  # "own", "foreign" or "random" (no checkpoint: random initialisation)
    source_format: str  # "espnet_ext", "fairseq", "huggingface", "unknown" ("preset" for random)
    path: str  # absolute ("-" for random initialisation)

    @property
    def foreign(self) -> bool:
        return self.origin == "foreign"

    @property
    def random_init(self) -> bool:
        """The fine-tuning from a randomly initialised backbone (0 updates)."""
        return self.origin == "random" or self.updates == 0


# --------------------------------------------------------------------------- checkpoints
def expand(patterns: Sequence[str]) -> list[Path]:
    """Files and directories named by ``patterns`` (globs expanded, sorted), absolute, each once.

    Raises:
        ValueError: a pattern matches nothing, a path does not exist, or a path holds
            whitespace, quotes or glob characters (they cannot pass through ``--asr_args``).
    """
    found: dict[str, None] = {}
    for pattern in patterns:
        if _GLOB.search(pattern):
            import glob

            matches = sorted(glob.glob(pattern))
            if not matches:
                raise ValueError(f"checkpoint pattern {pattern!r}: expected at least one match, found none")
        elif os.path.exists(pattern):
            matches = [pattern]
        else:
            raise ValueError(f"{pattern}: expected a checkpoint file or a Hugging Face directory, found nothing")
        for match in matches:
            path = os.path.abspath(match)
            if _UNSAFE_PATH.search(path):
                raise ValueError(
                    f"{path!r}: expected a path without whitespace, quotes or glob characters (it is "
                    "passed to the recipe in --asr_args); link it under a plain name"
                )
            found.setdefault(path)
    return [Path(p) for p in found]


def _as_int(value: Any) -> int | None:
    try:
        number = int(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _peek_file(path: Path) -> Any:
    """The object in a torch file, tensors memory-mapped where the format allows it."""
    from espnet_ext.wav2vec2.importers import torch_load

    return torch_load(path, mmap=True)


def _latest_updates(path: Path) -> int | None:
    """``num_updates`` of the ``latest.pth`` beside ``path``, if ``path`` is not older than it."""
    latest = path.parent / "latest.pth"
    if not latest.is_file() or path.stat().st_mtime < latest.stat().st_mtime:
        return None
    try:
        state = _peek_file(latest)
    except Exception as error:  # an unreadable latest.pth only costs the count
        logger.warning("%s: update count of %s unknown: %s is unreadable (%s)", path, path.name, latest, error)
        return None
    return _as_int(state.get("num_updates")) if isinstance(state, Mapping) else None


def _file_format(path: Path) -> tuple[str, int | None]:
    """``(format, stored update count)`` of a checkpoint file."""
    from espnet_ext.wav2vec2.importers import FORMAT, UnsafeCheckpointError

    try:
        obj = _peek_file(path)  # a file torch cannot read: a ValueError naming it
    except UnsafeCheckpointError:
        logger.warning(
            "%s: not inspected (it holds objects outside the safe list); taken as a foreign checkpoint "
            "of unknown update count",
            path,
        )
        return "unknown", None
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        stored = _as_int(obj.get("num_updates"))
        return "espnet_ext", stored if stored is not None else _latest_updates(path)
    if isinstance(obj, Mapping) and "model" in obj and ("cfg" in obj or "args" in obj):
        history = obj.get("optimizer_history") or [{}]
        last = history[-1] if isinstance(history[-1], Mapping) else {}
        return "fairseq", _as_int(last.get("num_updates"))
    keys = sorted(map(str, obj))[:10] if isinstance(obj, Mapping) else type(obj).__name__
    raise ValueError(
        f"{path}: expected a wav2vec 2.0 checkpoint (this project's 'format' key, or fairseq's "
        f"'model' with 'cfg' or 'args'); found {keys}"
    )


def _dir_format(path: Path) -> tuple[str, int | None]:
    if not (path / "config.json").is_file():
        raise ValueError(f"{path}: expected a Hugging Face model directory with config.json; found none")
    state = path / "trainer_state.json"
    step = json.loads(state.read_text(encoding="utf-8")).get("global_step") if state.is_file() else None
    return "huggingface", _as_int(step)


def _base_name(path: Path) -> str:
    match = UPDATES_FILE.match(path.name)
    if match:
        run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        name = f"{run.name}_{match.group(1)}updates"
    else:
        name = path.name if path.is_dir() else path.stem
        if GENERIC_NAMES.match(name):
            name = f"{path.parent.name}_{name}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "checkpoint"


def _unique_names(paths: Sequence[Path]) -> list[str]:
    names = [_base_name(p) for p in paths]
    counts = collections.Counter(names)
    return [
        f"{n}_{hashlib.sha1(str(p).encode()).hexdigest()[:6]}" if counts[n] > 1 else n for n, p in zip(names, paths)
    ]


def table_order(checkpoints: Sequence[Checkpoint]) -> list[Checkpoint]:
    """Random initialisation, own checkpoints by update count, own ones of unknown count, then
    foreign ones (by count, name)."""
    return sorted(checkpoints, key=lambda c: (not c.random_init, c.foreign, c.updates is None, c.updates or 0, c.name))


def random_init_checkpoint(tag_prefix: str = "") -> Checkpoint:
    """The manifest row of the random-initialisation baseline (compare_checkpoints.sh --random_init true)."""
    tag = f"{tag_prefix}_random_init" if tag_prefix else "random_init"
    return Checkpoint("random_init", tag, 0, "random", "preset", "-")


def describe(patterns: Sequence[str], tag_prefix: str = "") -> list[Checkpoint]:
    """The checkpoints named by ``patterns`` (see :func:`expand`), in :func:`table_order`."""
    paths = expand(patterns)
    if not paths:
        raise ValueError("expected at least one checkpoint; found none")
    out = []
    for path, name in zip(paths, _unique_names(paths)):
        source_format, stored = _dir_format(path) if path.is_dir() else _file_format(path)
        match = UPDATES_FILE.match(path.name)
        updates = int(match.group(1)) if match else stored
        origin = "own" if source_format == "espnet_ext" else "foreign"
        tag = f"{tag_prefix}_{name}" if tag_prefix else name
        out.append(Checkpoint(name, tag, updates, origin, source_format, str(path)))
    return table_order(out)


def write_manifest(checkpoints: Sequence[Checkpoint], path: PathLike) -> Path:
    """Write the manifest TSV (see the module docstring); returns its path."""
    lines = ["\t".join(MANIFEST_COLUMNS)]
    for c in checkpoints:
        lines.append(
            "\t".join([c.name, c.tag, "" if c.updates is None else str(c.updates), c.origin, c.source_format, c.path])
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "\n".join(lines) + "\n")
    return path


def read_manifest(path: PathLike) -> list[Checkpoint]:
    """Read a manifest TSV written by :func:`write_manifest`."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or tuple(lines[0].split("\t")) != MANIFEST_COLUMNS:
        raise ValueError(
            f"{path}: expected the header {' '.join(MANIFEST_COLUMNS)!r} (tab-separated); "
            f"found {lines[0] if lines else 'an empty file'!r}"
        )
    out = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(MANIFEST_COLUMNS) or fields[3] not in ORIGINS or not re.fullmatch(r"\d*", fields[2]):
            raise ValueError(
                f"{path}:{number}: expected {len(MANIFEST_COLUMNS)} tab-separated fields (updates a "
                f"number or empty, origin {', '.join(ORIGINS)}); found {line!r}"
            )
        name, tag, updates, origin, source_format, ckpt = fields
        out.append(Checkpoint(name, tag, int(updates) if updates else None, origin, source_format, ckpt))
    return out


# --------------------------------------------------------------------------- scores
class Scores(NamedTuple):
    """Error rates of one experiment's decode dir."""

    decode_dir: Path
    rates: dict[tuple[str, str], float]  # (test set, metric) -> error rate, %
    score_dirs: Mapping[tuple[str, str], Path] = {}  # (test set, metric) -> score_<metric> dir


class Row(NamedTuple):
    """A table row: a checkpoint, its fine-tuning experiment and its scores (None: not finished)."""

    checkpoint: Checkpoint
    exp_dir: Path
    scores: Scores | None


def read_scores(exp_dir: PathLike, decode_tag: str | None = None) -> Scores | None:
    """The error rates in ``exp_dir/<decode>/<set>/score_<metric>/result.txt``, from the decode dir
    ``decode_tag`` or else the one with the newest result; None when there are none."""
    exp_dir = Path(exp_dir)
    by_decode: dict[Path, list[Path]] = {}
    for result in sorted(exp_dir.glob("*/*/score_*/result.txt")):
        if result.parent.name[len("score_") :].upper() in METRICS:
            by_decode.setdefault(result.parents[2], []).append(result)
    if decode_tag is not None:
        chosen = exp_dir / decode_tag
        if chosen not in by_decode:
            return None
    elif by_decode:
        chosen = max(by_decode, key=lambda d: (max(p.stat().st_mtime for p in by_decode[d]), d.name))
    else:
        return None
    dirs = {(p.parent.parent.name, p.parent.name[len("score_") :].upper()): p.parent for p in by_decode[chosen]}
    return Scores(chosen, {key: scoring.read_summary(d / "result.txt").errors for key, d in dirs.items()}, dirs)


def collect_rows(checkpoints: Sequence[Checkpoint], expdir: PathLike, decode_tag: str | None = None) -> list[Row]:
    """A :class:`Row` per checkpoint, in :func:`table_order` (a random-initialisation row appended
    to the manifest comes first); scores only for experiments the driver marked finished."""
    rows = []
    for c in table_order(checkpoints):
        exp = Path(expdir) / f"asr_{c.tag}"
        rows.append(Row(c, exp, read_scores(exp, decode_tag) if (exp / DONE_MARKER).is_file() else None))
    return rows


def test_sets_and_metrics(rows: Sequence[Row]) -> tuple[list[str], list[str]]:
    """The test sets (sorted) and metrics (in :data:`METRICS` order) found in any row."""
    keys = {key for row in rows if row.scores for key in row.scores.rates}
    return sorted({s for s, _ in keys}), [m for m in METRICS if any(k[1] == m for k in keys)]


def choose_metric(metrics: Sequence[str], requested: str | None = None) -> str:
    """``requested`` (cer, wer or per) if scored, else the first of PER, CER, WER that is."""
    if requested:
        metric = requested.upper()
        if metric not in metrics:
            raise ValueError(f"metric {requested}: expected one of the scored metrics {list(metrics)}")
        return metric
    if not metrics:
        raise ValueError("no scores: expected <decode>/<set>/score_{cer,wer,per}/result.txt in a finished experiment")
    return metrics[0]


def mean_rate(row: Row, metric: str, test_sets: Sequence[str]) -> float | None:
    """Mean of ``metric`` over ``test_sets``; None unless the row is scored on all of them."""
    if row.scores is None or not test_sets:
        return None
    values = [row.scores.rates.get((s, metric)) for s in test_sets]
    return None if any(v is None for v in values) else sum(values) / len(values)


def best_row(rows: Sequence[Row], metric: str, test_sets: Sequence[str]) -> int | None:
    """Index of the row with the lowest :func:`mean_rate` (the first of equals); None if none is scored."""
    means = [(m, i) for i, row in enumerate(rows) if (m := mean_rate(row, metric, test_sets)) is not None]
    return min(means)[1] if means else None


class Versus(NamedTuple):
    """A row tested against the best row (:func:`compare_to_best`)."""

    p: float | None  # the test's p-value; None when the rows could not be compared
    not_worse: bool  # not significantly worse than the best row
    note: str  # what the table's note column says
    reason: str = ""  # why the rows could not be compared


def _scored_set(path: Path, cache: dict[Path, Any]) -> significance.ScoredSet:
    if path not in cache:
        cache[path] = significance.read_score_dir(path)
    return cache[path]


def _versus(m: significance.Mapsswe) -> Versus:
    p = m.reported_p
    text = (
        ("p<0.001" if p < 0.001 else f"p={p:.3f}" if p < 0.1 else f"p={p:.2f}")
        + (", sign test" if m.no_variance else "")
        + f", {m.segments} segment{'s' if m.segments != 1 else ''}"
    )
    if not m.significant(ALPHA):
        return Versus(p, True, f"not significantly worse ({text})")
    return Versus(p, False, f"{'significantly worse' if m.mean < 0 else 'differs'} ({text})")


def compare_to_best(rows: Sequence[Row], metric: str, test_sets: Sequence[str], best: int | None) -> dict[int, Versus]:
    """MAPSSWE of ``metric`` of every row scored on all ``test_sets`` against the ``best`` row,
    over the utterances of the test sets pooled (see the module docstring), by row index."""
    out: dict[int, Versus] = {}
    cache: dict[Path, Any] = {}
    for i, row in enumerate(rows):
        if best is None or i == best or mean_rate(row, metric, test_sets) is None:
            continue
        try:
            pairs = [
                (
                    _scored_set(rows[best].scores.score_dirs[(t, metric)], cache),
                    _scored_set(row.scores.score_dirs[(t, metric)], cache),
                )
                for t in test_sets
            ]
            out[i] = _versus(significance.mapsswe_utterances(*significance.paired_sets(pairs)))
        except (ValueError, KeyError) as error:
            out[i] = Versus(None, False, "not compared", str(error).strip("'"))
    return out


# --------------------------------------------------------------------------- table
def _label(row: Row) -> str:
    if row.checkpoint.random_init:
        return RANDOM_INIT
    return f"{row.checkpoint.name} (foreign)" if row.checkpoint.foreign else row.checkpoint.name


def _note(i: int, row: Row, best: int | None, versus: Mapping[int, Versus]) -> str:
    if row.scores is None:
        return "not finished"
    if i == best:
        return "**best**"
    return versus[i].note if i in versus else "not scored on every test set"


def format_table(
    rows: Sequence[Row], metric: str | None = None, asr_config: str | None = None, plot_name: str | None = None
) -> str:
    """The Markdown of ``RESULTS_checkpoints.md`` (see the module docstring)."""
    test_sets, metrics = test_sets_and_metrics(rows)
    chosen = choose_metric(metrics, metric)
    columns = [(s, m) for m in [chosen] + [m for m in metrics if m != chosen] for s in test_sets]
    best = best_row(rows, chosen, test_sets)
    versus = compare_to_best(rows, chosen, test_sets, best)
    out = [
        "<!-- Generated by compare_checkpoints.sh (python -m espnet_ext.bin.compare_checkpoints table). -->",
        "# Error rates across pre-training checkpoints",
        "",
    ]
    if asr_config:
        out.append(f"Fine-tuned with `{asr_config}` from each checkpoint; error rates in %.")
    decode_dirs = sorted({r.scores.decode_dir.name for r in rows if r.scores})
    sets = ", ".join(test_sets)
    out.append(
        f"Decoding: `{'`, `'.join(decode_dirs)}`. Best (**best**): the lowest mean {chosen} over {sets}. "
        f"In bold with it, the checkpoints not significantly worse than it: MAPSSWE (NIST's matched-pairs "
        f"sentence-segment word error test, as SCTK's sc_stats) of {chosen} against the best row over the "
        f"utterances of {sets} pooled, two-sided p >= {ALPHA} (the sign test over the segments where every "
        "segment differs by the same count)."
    )
    out += [
        "",
        "|checkpoint|updates|" + "|".join(f"{s} {m}" for s, m in columns) + "|note|",
        "|---|---:|" + "---:|" * len(columns) + "---|",
    ]
    for i, row in enumerate(rows):
        updates = "?" if row.checkpoint.updates is None else str(row.checkpoint.updates)
        cells = ["-"] * len(columns) if row.scores is None else [_percent(row.scores.rates.get(k)) for k in columns]
        bold = i == best or (i in versus and versus[i].not_worse)
        label = f"**{_label(row)}**" if bold else _label(row)
        out.append(f"|{label}|{updates}|" + "|".join(cells) + f"|{_note(i, row, best, versus)}|")
    reasons = [f"- {_label(rows[i])}: {v.reason}" for i, v in versus.items() if v.reason]
    if reasons:
        out += ["", "Not compared with the best row:", ""] + reasons
    if plot_name:
        out += ["", f"![{chosen} against pre-training updates]({plot_name})"]
    out += ["", "Checkpoints:", ""]
    for row in rows:
        scored = row.scores.decode_dir if row.scores else row.exp_dir
        if row.checkpoint.random_init and row.checkpoint.origin == "random":
            out.append(f"- {RANDOM_INIT}: no checkpoint, the config's preset randomly initialised -> `{scored}`")
            continue
        out.append(
            f"- {row.checkpoint.name}: `{row.checkpoint.path}` ({row.checkpoint.origin}, "
            f"{row.checkpoint.source_format}) -> `{scored}`"
        )
    return "\n".join(out) + "\n"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


# --------------------------------------------------------------------------- plot
def plot_png(rows: Sequence[Row], metric: str | None = None, asr_config: str | None = None) -> bytes:
    """The plot as PNG bytes: ``metric`` against pre-training updates, a line per test set; foreign
    checkpoints and own ones of unknown count as labelled horizontal reference lines."""
    test_sets, metrics = test_sets_and_metrics(rows)
    chosen = choose_metric(metrics, metric)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    curve = [r for r in rows if r.scores and not r.checkpoint.foreign and r.checkpoint.updates is not None]
    references = [r for r in rows if r.scores and r not in curve]
    best = best_row(rows, chosen, test_sets)
    for k, test_set in enumerate(test_sets):
        color = colors[k % len(colors)]
        points = [
            (r.checkpoint.updates, r.scores.rates[(test_set, chosen)])
            for r in curve
            if (test_set, chosen) in r.scores.rates
        ]
        if points:
            ax.plot(*zip(*points), marker="o", color=color, label=f"{test_set} {chosen}")
        if best is not None and rows[best] in curve and (test_set, chosen) in rows[best].scores.rates:
            ax.plot(
                rows[best].checkpoint.updates,
                rows[best].scores.rates[(test_set, chosen)],
                marker="*",
                markersize=14,
                color=color,
                linestyle="none",
                label="best" if k == 0 else None,
            )
        for j, row in enumerate(references):
            value = row.scores.rates.get((test_set, chosen))
            if value is None:
                continue
            style = ("--", ":", "-.")[j % 3]
            ax.axhline(
                value, color=color, linestyle=style, linewidth=1.2, label=f"{test_set}: {_label(row)} {value:.1f}"
            )
            ax.annotate(
                f"{row.checkpoint.name} ({test_set})",
                xy=(1.0, value),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 3),
                textcoords="offset points",
                ha="right",
                va="bottom",
                fontsize=8,
                color=color,
            )
    config = f" with {Path(asr_config).stem}" if asr_config else ""
    _finish_axes(ax, curve, chosen, f"{chosen} after fine-tuning{config} from each pre-training checkpoint")
    return figure_png(fig)


def _finish_axes(ax: Any, curve: Sequence[Row], metric: str, title: str) -> None:
    ax.set_xlabel("pre-training updates")
    ax.set_ylabel(f"{metric} (%)")
    if curve:
        xs = [r.checkpoint.updates for r in curve]
        pad = max((max(xs) - min(xs)) * 0.05, 1)
        ax.set_xlim(min(xs) - pad, max(xs) + pad)
    else:
        ax.set_xticks([])
    low, high = ax.get_ylim()
    ax.set_ylim(max(0.0, low), high if math.isfinite(high) else 100.0)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.figure.tight_layout()
