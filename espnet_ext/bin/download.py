"""Download (resumably) and optionally extract one archive; the library is :mod:`espnet_ext.data.download`.

Usage::

    python -m espnet_ext.bin.download URL DEST_DIR [--md5 M] [--extract] [--done_marker NAME] [--remove_archive]

Exit status 1, with the error logged, on a failed download or extraction.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from espnet_ext.core.log import setup_logging
from espnet_ext.data import download

logger = logging.getLogger(__name__)


def get_parser() -> argparse.ArgumentParser:
    """The command-line parser, described by the library's docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.download",
        description=download.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("url", help="http(s):// or file:// URL of the file")
    parser.add_argument("dest_dir", type=Path, help="directory to download (and extract) into")
    parser.add_argument("--md5", default=None, help="expected md5 (hex) of the downloaded file")
    parser.add_argument("--extract", action="store_true", help="extract the archive into DEST_DIR")
    parser.add_argument(
        "--done_marker",
        default=None,
        help="file name under DEST_DIR written when everything has completed; when it exists the command does nothing",
    )
    parser.add_argument(
        "--remove_archive", action="store_true", help="delete the archive after a successful extraction"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = get_parser().parse_args(argv)
    setup_logging()
    try:
        download.fetch_and_extract(
            args.url,
            args.dest_dir,
            md5=args.md5,
            extract_archive=args.extract,
            done_marker=args.done_marker,
            remove_archive=args.remove_archive,
        )
    except (ValueError, OSError) as err:
        logger.error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
