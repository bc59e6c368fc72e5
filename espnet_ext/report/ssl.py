"""The report of a pre-training run: one PNG page of curves and a Markdown summary.

What it reads, in ``exp/ssl_<tag>/`` (ssl1 stage 11, ``espnet_ext.bin.ssl_train``):

``checkpoint.pth``
    ESPnet's reporter state (``reporter.stats[epoch][train|valid][stat]``): the per-epoch
    averages of every epoch, resumes included. Read with ``torch.load(weights_only=True)``.
``train.log``
    The ``<E>epoch results: [train] k=v, ... [valid] k=v, ...`` lines (per epoch, used where
    the checkpoint lacks an epoch), the ``<E>epoch:train:<a>-<b>batch: k=v, ...`` lines
    written every ``log_interval`` iterations (ESPnet sometimes omits a ``, `` between two
    values; both forms are read), and the warnings of the collapse monitor
    (:class:`espnet_ext.espnet.ssl_model.CollapseMonitor`). The launcher rewrites the log on a
    resume, so its per-interval points cover the last launch only.
``config.yaml``
    ``model_conf`` (preset and overrides): K (``num_negatives``) for the chance levels
    ``log(K + 1)`` of L_m and ``1 / (K + 1)`` of the accuracy, and G·V, the codebook size.
``checkpoints/<N>updates.pth``
    Listed in the summary.

Stats (:mod:`espnet_ext.espnet.ssl_model`): ``loss``, ``loss_m`` (L_m), ``loss_d`` (L_d),
``feature_pen``, ``code_ppl``, ``prob_ppl``, ``acc``, ``sim_pos``, ``sim_neg``, ``temp``;
the learning rate is ESPnet's ``optim0_lr0`` (training only). Interval points are placed at
fractional epochs, ``E - 1 + b / (iterations in epoch E)``.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from espnet_ext.report import PathLike, figure_png, pyplot

#: (stat, label, better): "min", "max" or None (no best value)
STATS: tuple[tuple[str, str, str | None], ...] = (
    ("loss", "loss (per masked frame)", "min"),
    ("loss_m", "L_m (contrastive)", "min"),
    ("loss_d", "L_d (diversity)", "min"),
    ("feature_pen", "feature penalty", "min"),
    ("code_ppl", "code perplexity", "max"),
    ("prob_ppl", "prob perplexity", "max"),
    ("acc", "accuracy (masked frames)", "max"),
    ("sim_pos", "cosine similarity, positive", "max"),
    ("sim_neg", "cosine similarity, negatives", "min"),
    ("temp", "Gumbel temperature", None),
    ("optim0_lr0", "learning rate", None),
)
MONITOR_WARNING = "wav2vec2 pre-training:"
_VALUE = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|-?nan|-?inf"
_PAIR = re.compile(rf"([A-Za-z_][A-Za-z0-9_]*)=({_VALUE})")
_EPOCH_RESULTS = re.compile(r"(\d+)epoch results: (.*)$")
_INTERVAL = re.compile(r"(\d+)epoch:train:(\d+)-(\d+)batch: (.*)$")
_SECTION = re.compile(r"\[(\w+)\]")

Epochs = dict[int, dict[str, dict[str, float]]]  # epoch -> phase (train, valid) -> stat -> value


class Interval(NamedTuple):
    """One ``log_interval`` line: training batches ``first..last`` of ``epoch``."""

    epoch: int
    first: int
    last: int
    stats: dict[str, float]


class Chance(NamedTuple):
    """Reference levels from the model config."""

    num_negatives: int  # K
    codebook: int  # G x V

    @property
    def loss_m(self) -> float:
        return math.log(self.num_negatives + 1)

    @property
    def acc(self) -> float:
        return 1.0 / (self.num_negatives + 1)


class History(NamedTuple):
    """Everything the report shows."""

    exp_dir: Path
    epochs: Epochs
    intervals: list[Interval]
    warnings: list[str]  # collapse-monitor warnings from the log, each once
    updates: int | None  # optimizer updates of the model in checkpoint.pth
    checkpoints: list[int]  # N of checkpoints/<N>updates.pth, sorted
    chance: Chance | None
    sources: list[str]  # what was read


# --------------------------------------------------------------------------- reading
def parse_pairs(text: str) -> dict[str, float]:
    """``k=v`` pairs of a log line (``, `` between them or not); ``time`` (a duration) is skipped."""
    return {key: float(value) for key, value in _PAIR.findall(text) if key != "time"}


def parse_log(text: str) -> tuple[Epochs, list[Interval], list[str]]:
    """Per-epoch results, per-interval training lines and collapse-monitor warnings of a train.log."""
    epochs: Epochs = {}
    intervals: list[Interval] = []
    warnings: dict[str, None] = {}
    for line in text.splitlines():
        if MONITOR_WARNING in line and "WARNING" in line:
            warnings.setdefault(line.split(MONITOR_WARNING, 1)[1].strip())
        if (match := _INTERVAL.search(line)) is not None:
            epoch, first, last, rest = match.groups()
            intervals.append(Interval(int(epoch), int(first), int(last), parse_pairs(rest)))
        elif (match := _EPOCH_RESULTS.search(line)) is not None:
            parts = _SECTION.split(match.group(2))  # ["", "train", "k=v...", "valid", "k=v...", ...]
            epochs[int(match.group(1))] = {phase: parse_pairs(body) for phase, body in zip(parts[1::2], parts[2::2])}
    return epochs, intervals, list(warnings)


def _number(value: Any) -> float | None:
    if isinstance(value, (datetime.timedelta, bool)) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_checkpoint(path: PathLike) -> tuple[Epochs, int | None]:
    """The reporter's per-epoch stats and the model's ``num_updates`` from an ESPnet ``checkpoint.pth``."""
    from espnet_ext.wav2vec2.importers import torch_load

    state = torch_load(path, mmap=True, extra_globals=[datetime.timedelta])
    reporter = state.get("reporter") if isinstance(state, Mapping) else None
    if not isinstance(reporter, Mapping) or not isinstance(reporter.get("stats"), Mapping):
        raise ValueError(f"{path}: expected an ESPnet checkpoint with reporter.stats; found none")
    epochs: Epochs = {}
    for epoch, phases in reporter["stats"].items():
        epochs[int(epoch)] = {
            phase: {k: v for k, v in ((k, _number(v)) for k, v in values.items()) if v is not None}
            for phase, values in phases.items()
            if isinstance(values, Mapping)
        }
    model = state.get("model") or {}
    updates = model.get("num_updates") if isinstance(model, Mapping) else None
    return epochs, None if updates is None else int(updates)


def read_chance(config: PathLike) -> Chance | None:
    """K and G·V of a ``model: wav2vec2`` config.yaml; None for other models or without one."""
    import yaml

    from espnet_ext.wav2vec2.presets import preset_config

    path = Path(config)
    if not path.is_file():
        return None
    conf = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    model_conf = conf.get("model_conf") or {}
    if conf.get("model") != "wav2vec2":
        return None
    values = preset_config(model_conf.get("preset", "base")).to_dict()
    values.update(model_conf.get("config") or {})
    return Chance(int(values["num_negatives"]), int(values["latent_groups"]) * int(values["latent_vars"]))


def load_history(exp_dir: PathLike, log: PathLike | None = None) -> History:
    """Read a pre-training experiment (see the module docstring).

    Raises:
        ValueError: neither ``checkpoint.pth`` nor the log holds any epoch's results.
    """
    exp_dir = Path(exp_dir)
    log_path = Path(log) if log is not None else exp_dir / "train.log"
    epochs: Epochs = {}
    intervals: list[Interval] = []
    warnings: list[str] = []
    sources: list[str] = []
    updates = None
    if log_path.is_file():
        epochs, intervals, warnings = parse_log(log_path.read_text(encoding="utf-8", errors="replace"))
        sources.append(f"{log_path} ({len(epochs)} epoch results, {len(intervals)} log-interval lines)")
    if (exp_dir / "checkpoint.pth").is_file():
        stored, updates = read_checkpoint(exp_dir / "checkpoint.pth")
        epochs.update(stored)
        sources.append(f"{exp_dir / 'checkpoint.pth'} ({len(stored)} epochs)")
    if not epochs:
        raise ValueError(
            f"{exp_dir}: expected epoch results in {exp_dir / 'checkpoint.pth'} or {log_path}; "
            "found none (has an epoch of pre-training finished?)"
        )
    checkpoints = sorted(
        int(p.name[: -len("updates.pth")])
        for p in (exp_dir / "checkpoints").glob("*updates.pth")
        if p.name[: -len("updates.pth")].isdigit()
    )
    return History(
        exp_dir,
        dict(sorted(epochs.items())),
        intervals,
        warnings,
        updates,
        checkpoints,
        read_chance(exp_dir / "config.yaml"),
        sources,
    )


# --------------------------------------------------------------------------- series
def epoch_series(history: History, phase: str, stat: str) -> list[tuple[float, float]]:
    """``(epoch, value)`` of one stat of one phase, epochs in order."""
    return [
        (e, phases[phase][stat])
        for e, phases in history.epochs.items()
        if stat in phases.get(phase, {}) and math.isfinite(phases[phase][stat])
    ]


def interval_series(history: History, stat: str) -> list[tuple[float, float]]:
    """``(fractional epoch, value)`` of one stat of the log-interval lines."""
    out = []
    for item in history.intervals:
        if stat not in item.stats or not math.isfinite(item.stats[stat]):
            continue
        out.append((item.epoch - 1 + item.last / _iterations(history, item.epoch), item.stats[stat]))
    return out


def _iterations(history: History, epoch: int) -> float:
    """Training iterations in ``epoch``: the growth of the reporter's total_count, else the log's last batch."""

    def total(e: int) -> float | None:
        return history.epochs.get(e, {}).get("train", {}).get("total_count")

    end, start = total(epoch), (total(epoch - 1) if epoch > 1 else 0.0)
    if end is not None and start is not None and end > start:
        return end - start
    return float(max(i.last for i in history.intervals if i.epoch == epoch))


# --------------------------------------------------------------------------- summary
class StatSummary(NamedTuple):
    """Start, end and best values of one stat in one phase."""

    stat: str
    phase: str
    start: float
    end: float
    best: tuple[float, int] | None  # (value, epoch)


def summarize(history: History) -> list[StatSummary]:
    """A :class:`StatSummary` per stat and phase that has values."""
    out = []
    for stat, _, better in STATS:
        for phase in ("train", "valid"):
            series = epoch_series(history, phase, stat)
            if not series:
                continue
            best = None
            if better is not None:
                target = (min if better == "min" else max)(v for _, v in series)
                best = (target, int(next(e for e, v in series if v == target)))  # the first epoch reaching it
            out.append(StatSummary(stat, phase, series[0][1], series[-1][1], best))
    return out


def checks(history: History) -> list[str]:
    """Problems visible in the last epoch: L_m at chance, codebook collapse, non-finite losses."""
    found = []
    last = history.epochs[max(history.epochs)]
    values = last.get("valid") or last.get("train") or {}
    if any(not math.isfinite(v) for k, v in values.items() if k.startswith("loss")):
        found.append(f"epoch {max(history.epochs)}: non-finite loss")
    if history.chance is not None:
        lm, ppl = values.get("loss_m"), values.get("code_ppl")
        if lm is not None and lm > 0.98 * history.chance.loss_m:
            found.append(f"last epoch: L_m {lm:.3f} at chance (log(K+1) = {history.chance.loss_m:.3f}): not learning")
        if ppl is not None and ppl < 0.1 * history.chance.codebook:
            found.append(
                f"last epoch: code perplexity {ppl:.1f} < 0.1 x G·V = {0.1 * history.chance.codebook:.1f}: "
                "codebook collapse"
            )
    return found


def _fmt(value: float) -> str:
    return f"{value:.3e}" if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4) else f"{value:.3f}"


def format_summary(history: History, plot_name: str | None = None) -> str:
    """The Markdown summary (see the module docstring)."""
    labels = {stat: label for stat, label, _ in STATS}
    epochs = list(history.epochs)
    out = [
        "<!-- Generated by python -m espnet_ext.bin.ssl_report. -->",
        f"# Pre-training report: {history.exp_dir.name}",
        "",
        f"- epochs: {len(epochs)} ({epochs[0]}-{epochs[-1]}); optimizer updates: "
        f"{'unknown' if history.updates is None else history.updates}",
        f"- checkpoints: {', '.join(f'{n}updates.pth' for n in history.checkpoints) or 'none'}",
    ]
    if history.chance is not None:
        c = history.chance
        out.append(
            f"- chance levels (K = {c.num_negatives} distractors): L_m = log(K+1) = {c.loss_m:.3f}, "
            f"accuracy = 1/(K+1) = {c.acc:.3f}; codebook G·V = {c.codebook} (the perplexities' maximum)"
        )
    out += [
        f"- read: {'; '.join(history.sources)}",
        "",
        "|stat|phase|start|end|best (epoch)|",
        "|---|---|---:|---:|---:|",
    ]
    for s in summarize(history):
        best = "" if s.best is None else f"{_fmt(s.best[0])} ({s.best[1]})"
        out.append(f"|{labels[s.stat]} (`{s.stat}`)|{s.phase}|{_fmt(s.start)}|{_fmt(s.end)}|{best}|")
    problems = [f"log: {w}" for w in history.warnings] + checks(history)
    out += ["", "## Warnings", ""] + ([f"- {p}" for p in problems] or ["none"])
    if plot_name:
        out += ["", f"![curves]({plot_name})"]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- plot
#: panels of the page: (title, stats, reference level name or None)
PANELS: tuple[tuple[str, Sequence[str], str | None], ...] = (
    ("loss (per masked frame)", ("loss",), None),
    ("L_m (contrastive)", ("loss_m",), "loss_m"),
    ("L_d (diversity)", ("loss_d",), None),
    ("perplexity (code, prob)", ("code_ppl", "prob_ppl"), "codebook"),
    ("accuracy (masked frames)", ("acc",), "acc"),
    ("cosine similarity (positive, negatives)", ("sim_pos", "sim_neg"), None),
    ("learning rate", ("optim0_lr0",), None),
    ("feature penalty", ("feature_pen",), None),
    ("Gumbel temperature", ("temp",), None),
)


def _reference(history: History, name: str | None) -> tuple[float, str] | None:
    if name is None or history.chance is None:
        return None
    c = history.chance
    return {
        "loss_m": (c.loss_m, "chance log(K+1)"),
        "acc": (c.acc, "chance 1/(K+1)"),
        "codebook": (float(c.codebook), "G·V"),
    }[name]


def _panel(ax: Any, history: History, title: str, stats: Sequence[str], reference: str | None, colors) -> None:
    for k, stat in enumerate(stats):
        color = colors[k % len(colors)]
        points = interval_series(history, stat)
        if points:
            ax.plot(
                *zip(*points),
                color=color,
                alpha=0.35,
                linewidth=0.8,
                marker=".",
                markersize=3,
                label=f"{stat} train (log interval)",
            )
        for phase, style in (("train", "-"), ("valid", "--")):
            points = epoch_series(history, phase, stat)
            if points:
                ax.plot(*zip(*points), linestyle=style, marker="o", markersize=3, color=color, label=f"{stat} {phase}")
    level = _reference(history, reference)
    if level is not None:
        ax.axhline(level[0], color="gray", linestyle=":", linewidth=1, label=level[1])
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("epoch", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=6, loc="best")
    else:
        ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="gray")


def plot_png(history: History) -> bytes:
    """One page (3 x 3 panels) of curves as PNG bytes: per epoch (train solid, valid dashed) and,
    where the log has them, per log interval (faint); chance levels dotted."""
    plt = pyplot()
    fig, axes = plt.subplots(3, 3, figsize=(14, 10))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, stats, reference) in zip(axes.flat, PANELS):
        _panel(ax, history, title, stats, reference, colors)
    fig.suptitle(f"wav2vec 2.0 pre-training: {history.exp_dir.name}", fontsize=11)
    fig.tight_layout()
    return figure_png(fig)
