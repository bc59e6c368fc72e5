"""The project's log format for every command-line entry point (data tools, corpus scripts, training wrappers)."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def setup_logging(level: int | str = logging.INFO, force: bool = True) -> None:
    """Log at ``level`` (a number or a name such as ``"INFO"``) and above to the current stderr in
    :data:`LOG_FORMAT`. ``force``: replace the root logger's handlers (a second call in the same
    process then writes to the stderr of that moment); without it, a logger already set up is kept
    (e.g. pytest's ``caplog``)."""
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=force)
