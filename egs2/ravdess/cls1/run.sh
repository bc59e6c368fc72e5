#!/usr/bin/env bash
# Speech emotion classification on RAVDESS (8 emotions, speaker-independent split by actor:
# 1-20 train, 21-22 dev, 23-24 test). Corpus options only; the stages are in cls.sh
# (see ./cls.sh --help) and the corpus location in db.sh.
set -euo pipefail

./cls.sh \
    --nj 4 \
    --inference_nj 4 \
    --ngpu 1 \
    --train_set train \
    --valid_set dev \
    --test_sets "dev test" \
    --expected_fs 48000 \
    --min_wav_duration 0.5 \
    --max_wav_duration 10 \
    --classes "neutral calm happy sad angry fearful disgust surprised" \
    --cls_config conf/train_cls.yaml \
    "$@"
