#!/usr/bin/env bash
# wav2vec 2.0 pre-training on Mandarin: the AISHELL-1 training audio (~150 h), plus any other
# directories of wav files you have; or, given AISHELL-2 (--aishell2 DIR, or AISHELL2 in db.sh),
# AISHELL-2 prepared as Mandarin-Wav2Vec2 (github.com/kehanlu/Mandarin-Wav2Vec2: a BASE pre-trained
# on AISHELL-2, fine-tuned on AISHELL-1) prepares it. BASE by default (conf/train_ssl.yaml); medium,
# small, large, downsampling in conf/tuning. Corpus options only; the stages are in ssl.sh
# (./ssl.sh --help). Stage 1 runs ../asr1/local/data.sh, so set AISHELL in ../asr1/db.sh (its dev
# and test sentences are what the AISHELL-2 set leaves out). Fine-tune the checkpoints with ../asr1
# (compare_checkpoints.sh).
set -euo pipefail

# shellcheck disable=SC1091
. ./db.sh
aishell2=${AISHELL2}    # the AISHELL-2 directory (holding iOS/data); "": AISHELL-1's training audio
local_data_opts=""      # more options for local/data.sh (--extra_audio_dirs, --with_aishell1_train, ...)
# These two are read here (they choose the data); the rest go to ssl.sh.
own_options="aishell2 local_data_opts"
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"
args=("${passed_options[@]+"${passed_options[@]}"}" "$@")

# With AISHELL-2, Mandarin-Wav2Vec2's pre-training set (ssl.sh stage 2): the files whose transcripts
# are AISHELL-1 dev/test sentences left out (listed in data/ssl_train_pt/excluded.txt), 6 consecutive
# files of a speaker joined into one (LibriSpeech-like lengths), a random 1 % held out for
# validation. Each can be changed on the command line (e.g. --concat 0; later options win).
study=()
if [ -n "${aishell2}" ]; then
    local_data_opts="--aishell2 ${aishell2} ${local_data_opts}"
    study=(--exclude_texts_of "data/dev data/test" --concat 6 --valid_percent 1)
fi
# Durations in seconds (AISHELL-1 utterances are ~2-15 s; the 1 s floor keeps nearly all).
./ssl.sh \
    --nj 16 \
    --ngpu 8 \
    --min_wav_duration 1 \
    --max_wav_duration 40 \
    --train_set ssl_train \
    --valid_set ssl_dev \
    --local_data_opts "--asr_train_set train --asr_valid_set dev ${local_data_opts}" \
    --ssl_config conf/train_ssl.yaml \
    "${study[@]+"${study[@]}"}" \
    "${args[@]+"${args[@]}"}"
