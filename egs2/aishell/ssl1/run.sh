#!/usr/bin/env bash
# wav2vec 2.0 pre-training on Mandarin: the AISHELL-1 training audio (~150 h), plus AISHELL-2
# (~1000 h) or any other directories of wav files you have, as in Mandarin-Wav2Vec2
# (github.com/kehanlu/Mandarin-Wav2Vec2: a BASE pre-trained on AISHELL-2, fine-tuned on AISHELL-1). BASE by
# default (conf/train_ssl.yaml); medium, small, large, downsampling in conf/tuning. Corpus options
# only; the stages are in ssl.sh (./ssl.sh --help). Stage 1 runs ../asr1/local/data.sh, so set
# AISHELL in ../asr1/db.sh. Fine-tune the checkpoints with ../asr1 (compare_checkpoints.sh).
set -euo pipefail

# AISHELL-2: --local_data_opts "--extra_audio_dirs /data/AISHELL-2/iOS/data/wav" (speaker dirs
# below it). Leave AISHELL-1 dev/test sentences out of extra audio yourself if they occur there
# (Mandarin-Wav2Vec2 removes the AISHELL-2 files whose transcripts are in AISHELL-1 dev/test).
# Durations in seconds (AISHELL-1 utterances are ~2-15 s; the 1 s floor keeps nearly all).
./ssl.sh \
    --nj 16 \
    --ngpu 8 \
    --min_wav_duration 1 \
    --max_wav_duration 40 \
    --train_set ssl_train \
    --valid_set ssl_dev \
    --local_data_opts "--asr_train_set train --asr_valid_set dev" \
    --ssl_config conf/train_ssl.yaml \
    "$@"
