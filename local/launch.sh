#!/usr/bin/env bash
# Job launcher used by cmd.sh: see `python -m espnet_ext.bin.launch --help`.
# launch.sh [--backend local|slurm] [--gpu N] [--num_nodes N] [JOB=1:N] LOG COMMAND...
exec python3 -m espnet_ext.bin.launch "$@"
