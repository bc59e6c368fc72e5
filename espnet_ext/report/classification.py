"""A scored classification set on disk: its metrics (:mod:`espnet_ext.scoring.classification`)
and the confusion matrix as an image, ``confusion.png`` (cells coloured by the share of their row)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from espnet_ext.report import figure_png, pyplot, write_if_changed
from espnet_ext.scoring.classification import Scores, ratio, write_metrics


def plot_confusion(scores: Scores, path: Path, title: str) -> None:
    """The confusion matrix as a PNG (rows: reference, columns: prediction)."""
    plt = pyplot()
    matrix, columns = scores.table()
    share = ratio(matrix.astype(float), matrix.sum(axis=1, keepdims=True).astype(float))
    size = 1.0 + 0.6 * len(columns)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(scores.classes)), scores.classes)
    ax.set_xlabel("prediction")
    ax.set_ylabel("reference")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="share of the reference class")
    fig.tight_layout()
    write_if_changed(path, figure_png(fig, dpi=100))


def write_scores(scores: Scores, out_dir: Path, name: str) -> None:
    """``metrics.json``, ``confusion.md`` and ``confusion.png`` of the set ``name`` in ``out_dir``."""
    write_metrics(scores, out_dir, name)
    plot_confusion(
        scores, out_dir / "confusion.png", f"{name}: accuracy {scores.accuracy:.1f}%, macro-F1 {scores.macro_f1:.1f}%"
    )
