#!/usr/bin/env bash
# wav2vec 2.0 pre-training on LibriSpeech (960 h by default, or any subset the asr1 recipe
# prepares), BASE by default (conf/train_ssl.yaml -> tuning/train_ssl_w2v2_base.yaml; also
# medium, small, large and the downsampling context network). Corpus options only; the stages
# are in ssl.sh (./ssl.sh --help). Stage 1 runs ../asr1/local/data.sh (downloads included), so
# set LIBRISPEECH in ../asr1/db.sh. Fine-tune a checkpoint with ../asr1 (README.md there).
set -euo pipefail

# --local_data_opts: --asr_train_set train_clean_100 --train_set train_clean_100 for 100 h;
#   --extra_audio_dirs DIR[,DIR] adds directory trees of wav/flac files (e.g. Libri-Light).
# Durations in seconds: fairseq drops utterances under 2 s (min_sample_size 32000) and crops
# longer ones to 15.6 s windows in training (collate_fn_conf.max_sample_size in the config).
./ssl.sh \
    --nj 16 \
    --ngpu 8 \
    --min_wav_duration 2 \
    --max_wav_duration 40 \
    --train_set ssl_train \
    --valid_set ssl_dev \
    --local_data_opts "--asr_train_set train_960 --asr_valid_set dev --train_set train_960" \
    --ssl_config conf/train_ssl.yaml \
    "$@"
