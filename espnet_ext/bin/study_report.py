"""The open-vocabulary study's table and plot (egs2/synth/study.sh; espnet_ext.report.study)::

    python -m espnet_ext.bin.study_report --manifest study_manifest.tsv \\
        --test_sets test_seen test_unseen test_other [--metric cer] [--decode_glob 'decode_*']
        [--out RESULTS_study] [--note "..."]

Writes ``<out>.md`` (printed too) and ``<out>.png``. Exit status 1 when the manifest is malformed
or a run's scores are missing (the message names the file).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from espnet_ext.report import study, write_if_changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.study_report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--manifest", type=Path, required=True, help="TSV: arm subset seed updates exp")
    parser.add_argument("--test_sets", nargs="+", required=True)
    parser.add_argument("--metric", default="cer", choices=("cer", "wer"))
    parser.add_argument("--out", default="RESULTS_study", help="output prefix: <out>.md and <out>.png")
    parser.add_argument(
        "--decode_glob", default=study.DECODE_GLOB, help="the decode dir to read in each experiment [decode_*]"
    )
    parser.add_argument("--note", help="a line under the title (e.g. the command and its wall time)")
    args = parser.parse_args(argv)
    try:
        runs = study.read_manifest(args.manifest)
        text = study.markdown(runs, args.test_sets, args.metric, args.note, args.decode_glob)
        png = study.plot_png(runs, args.test_sets, args.metric, args.decode_glob)
    except (ValueError, OSError) as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    write_if_changed(f"{args.out}.md", text + f"\n![{Path(args.out).name}]({Path(args.out).name}.png)\n")
    write_if_changed(f"{args.out}.png", png)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
