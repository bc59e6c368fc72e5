#!/usr/bin/env bash
# wav2vec 2.0 pre-training on Japanese: JSUT 1.1 (~10 h, every subset but the dev/eval1
# sentences) plus any directories of wav files ("MyOriginalWav2Vec2.0",
# github.com/toshiouchi/MyOriginalWav2Vec2.0, pre-trains on 50 h: JSUT + Common Voice Japanese,
# converted to wav). The downsampling context network by default, as in that work
# (conf/train_ssl.yaml -> tuning/train_ssl_w2v2_downsample.yaml); BASE, medium,
# small and large in conf/tuning. Corpus options only; the stages are in ssl.sh (./ssl.sh
# --help). Stage 1 runs ../asr1/local/data.sh, so set JSUT in ../asr1/db.sh.
set -euo pipefail

# More audio: --local_data_opts "--asr_train_set tr_no_dev --asr_valid_set dev --extra_audio_dirs DIR[,DIR]"
# Stage 3 resamples everything (JSUT is 48 kHz) to 16 kHz. Durations in seconds.
./ssl.sh \
    --nj 8 \
    --ngpu 1 \
    --min_wav_duration 1 \
    --max_wav_duration 40 \
    --train_set ssl_train \
    --valid_set ssl_dev \
    --local_data_opts "--asr_train_set tr_no_dev --asr_valid_set dev" \
    --ssl_config conf/train_ssl.yaml \
    "$@"
