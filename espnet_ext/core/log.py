"""The project's log format for every command-line entry point (data tools, corpus scripts, training wrappers)."""

from __future__ import annotations

import logging
import sys
from typing import Union

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def setup_logging(level: Union[int, str] = logging.INFO) -> None:
    """Log at ``level`` (a number or a name such as ``"INFO"``) and above to stderr in :data:`LOG_FORMAT`, replacing handlers set up before."""
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
