#!/usr/bin/env bash
# Synthetic open-vocabulary English: wav2vec 2.0 pre-training on the corpus's unlabeled
# hours (data/unlabeled; stage 1 generates the corpus, see ../asr1/db.sh). Corpus options only; the
# stages are in ssl.sh (./ssl.sh --help). Fine-tune its checkpoints with ../asr1.
set -euo pipefail

./ssl.sh \
    --nj 2 \
    --train_set unlabeled \
    --valid_set dev \
    --min_wav_duration 0.5 \
    --max_wav_duration 20 \
    --ssl_config conf/tuning/train_ssl_w2v2_mini.yaml \
    "$@"
