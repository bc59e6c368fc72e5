#!/usr/bin/env bash
# Mini pre-training recipe: the mini wav2vec 2.0 preset (0.95 M parameters) on all the audio of the
# embedded mini corpus (en, zh, ja; ~8 minutes) and ~1 h of English speech that stage 1 generates
# with espeak-ng (local/data.sh --synth_utts), ~5 minutes on 2 CPU cores. Corpus options only; the
# stages are in ssl.sh (see ./ssl.sh --help).
set -euo pipefail
# Two torch threads unless OMP_NUM_THREADS says otherwise: ~1.25x faster than one on 2 cores.
# The thread count and the CPU's kernels change the trained weights a little (first epoch's train
# loss 3.580 with two threads, 3.592 with one), hence the CER: ../README.md.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

./ssl.sh \
    --nj 2 \
    --train_set train \
    --valid_set dev \
    --min_wav_duration 0.5 \
    --max_wav_duration 10 \
    --ssl_config conf/tuning/train_ssl_w2v2_mini.yaml \
    "$@"
