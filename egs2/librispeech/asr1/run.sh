#!/usr/bin/env bash
# LibriSpeech (openslr.org/12): CTC fine-tuning of wav2vec 2.0 on train-clean-100 (or all 960 h,
# or a random subset), WER and CER on dev/test clean/other. Corpus options only; the stages are
# in asr.sh (./asr.sh --help). README.md: what to download, runtime, disk, reference numbers.
set -euo pipefail

train_set=train_clean_100   # train_clean_100 | train_960 | train_clean_100_sub<N>: N utterances of
                            # train-clean-100 drawn at random with a fixed seed (10000: MyOriginalWav2Vec2.0's set-up)
                            # | train_10h | train_1h | train_10min: Libri-light's splits (LIBRILIGHT in db.sh)
local_data_opts=""          # more options for local/data.sh (--download, --data_url, ...)
# These two are read here (--train_set decides what local/data.sh downloads); the rest go to asr.sh.
own_options="train_set local_data_opts"
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"
args=("${passed_options[@]+"${passed_options[@]}"}" "$@")

# Tokens: char (letters, as fairseq's wav2vec 2.0 fine-tuning) or --token_type bpe (--nbpe pieces).
# Durations in seconds (LibriSpeech utterances are 1.3-35 s long).
./asr.sh \
    --nj 4 \
    --inference_nj 4 \
    --ngpu 1 \
    --token_type char \
    --nbpe 300 \
    --expected_fs 16000 \
    --min_wav_duration 0.5 \
    --max_wav_duration 35 \
    --average last:10 \
    --train_set "${train_set}" \
    --valid_set dev \
    --test_sets "dev_clean dev_other test_clean test_other" \
    --local_data_opts "--train_set ${train_set} ${local_data_opts}" \
    --asr_config conf/train_asr.yaml \
    --lm_config conf/train_lm.yaml \
    --inference_config conf/decode_ctc_greedy.yaml \
    "${args[@]+"${args[@]}"}"
