#!/usr/bin/env bash
# Mini pre-training recipe: the mini wav2vec 2.0 preset (0.95 M parameters) on all the audio of the embedded mini
# corpus (en, zh, ja; ~10 minutes), a few minutes on 2 CPU cores. Corpus options only; the
# stages are in ssl.sh (see ./ssl.sh --help).
set -euo pipefail
# One torch thread unless OMP_NUM_THREADS says otherwise: trained weights (hence the figures)
# depend on the thread count, so the same figures on any core count (a second thread gains
# little on a model this small).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

./ssl.sh \
    --nj 2 \
    --train_set train \
    --valid_set dev \
    --min_wav_duration 0.5 \
    --max_wav_duration 10 \
    --ssl_config conf/tuning/train_ssl_w2v2_mini.yaml \
    "$@"
