"""The effective schedule of a training config, optionally beside fairseq's recipe
(espnet_ext.report.plan)::

    python -m espnet_ext.bin.plan conf/tuning/train_asr_w2v2_base_100h_ctc.yaml \\
        [--ngpu N] [--num_nodes M] [--accum_grad A] [--batch_bins B] [--num_iters_per_epoch I] \\
        [--train_shape exp/asr_stats_raw_char/ | --train_hours H] \\
        [--reference base_100h|base_10h|pretrain_base|pretrain_large] [--json | --summary]

Prints audio per optimizer update, updates per epoch and in all, passes over the data, the LR
curve, frozen-backbone updates, the extractor's gradient scale, masking (expected masked
fraction), the final Gumbel temperature and gradient clipping. Reads the config only: no model
weights are built. Exit status 1 on a config the planner cannot read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from espnet_ext.report import plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.plan", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("config", type=Path, help="an asr1 or ssl1 training config (YAML)")
    parser.add_argument(
        "--ngpu",
        type=int,
        default=1,
        help="GPUs per node as run.sh --ngpu, or CPU processes as --num_procs (batch_bins is over all of them)",
    )
    parser.add_argument("--num_nodes", type=int, default=1, help="nodes as run.sh --num_nodes: --ngpu on each")
    parser.add_argument("--accum_grad", type=int, help="override the config's accum_grad")
    parser.add_argument("--batch_bins", type=int, help="override the config's batch_bins")
    parser.add_argument("--num_iters_per_epoch", type=int, help="override the config's num_iters_per_epoch")
    data = parser.add_mutually_exclusive_group()
    data.add_argument(
        "--train_shape",
        type=Path,
        metavar="STATS_DIR",
        help="stats dir with train/speech_shape (and train/text_shape.*): simulate the sampler",
    )
    data.add_argument("--train_hours", type=float, help="hours of training audio: estimate from batch_bins")
    parser.add_argument(
        "--utterance_seconds", type=float, help="utterance length for the masking rows (default: the median, or 10 s)"
    )
    parser.add_argument("--channels", type=int, help="encoder width for channel masks (asr1; default 768)")
    parser.add_argument("--reference", choices=sorted(plan.REFERENCES), help="fairseq's recipe beside ours")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--summary", action="store_true", help="print the main rows in one paragraph (what config headers quote)"
    )
    args = parser.parse_args(argv)
    if args.ngpu < 1:
        parser.error("--ngpu: expected >= 1")
    if args.num_nodes < 1:
        parser.error("--num_nodes: expected >= 1")
    opts = plan.Options(
        args.ngpu * args.num_nodes,  # the world size
        args.accum_grad,
        args.batch_bins,
        args.train_shape,
        args.train_hours,
        args.utterance_seconds,
        args.channels,
        args.num_iters_per_epoch,
    )
    try:
        rows, notes = plan.plan_config(args.config, opts, args.reference)
    except (ValueError, OSError, KeyError) as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    if args.summary:
        print(plan.summary(rows, args.reference))
    else:
        print(plan.to_json(rows, notes) if args.json else plan.format_table(rows, notes, args.reference), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
