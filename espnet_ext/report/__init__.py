"""Reports: tables and plots of experiments.

* :mod:`espnet_ext.report.checkpoints`: error rates after fine-tuning from each of several
  pre-training checkpoints (``compare_checkpoints.sh``): a Markdown table and a plot.
* :mod:`espnet_ext.report.ssl`: the curves and a Markdown summary of a pre-training run.
* :mod:`espnet_ext.report.classification`: a scored classification set's files, the confusion
  matrix plot included.

Plots use matplotlib's Agg backend (no display needed). Outputs are written only when their
content changed (:func:`write_if_changed`), so a re-run that finds nothing new leaves the
files, and their modification times, as they were.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Union

from espnet_ext.core.atomic import write_bytes

PathLike = Union[str, "os.PathLike[str]"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (imported on first use: matplotlib is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig: Any, dpi: int = 100) -> bytes:
    """The PNG bytes of a matplotlib figure (closed afterwards). No date or software version is
    written into the file, so the same figure gives the same bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    pyplot().close(fig)
    return buffer.getvalue()


def write_if_changed(path: PathLike, data: str | bytes) -> bool:
    """Write ``data`` (text as UTF-8) to ``path`` unless it already holds exactly that; atomic.

    Returns whether the file was written.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if path.is_file() and path.read_bytes() == payload:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, payload)
    return True
