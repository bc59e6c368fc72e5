#!/usr/bin/env bash
# TIMIT (LDC93S1): CTC fine-tuning of wav2vec 2.0 for phone recognition (61 phones folded to 39,
# PER on the 50-speaker dev set and the 24-speaker core test set), or on words (--trans_type word:
# letters as tokens, CER and WER). Corpus options only; the stages are in asr.sh (./asr.sh --help).
# README.md: what to get, where to point db.sh, runtime, disk, reference numbers.
set -euo pipefail

trans_type=phn      # phn: phone recognition (PER); word: the .WRD words, char tokens (CER, WER)
phone_set=39        # phn only: train on the 60-, 48- or 39-phone set (published PERs use 39)
local_data_opts=""  # more options for local/data.sh
# These three are read here (they choose the data sets); the rest go to asr.sh.
own_options="trans_type phone_set local_data_opts"
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"
args=("${passed_options[@]+"${passed_options[@]}"}" "$@")
# data set suffix (as local/data.sh names them) and token type
# PER is scored on 39 phones whatever the training set (both sides folded with the map, as
# published TIMIT results are: Lee & Hon; Kaldi's and ESPnet's recipes do the same).
score_opts=()
case "${trans_type}:${phone_set}" in
    phn:39) token_type=phn; suffix=""; score_opts=(--score_opts "--fold_map conf/phones.60-48-39.map") ;;
    phn:60|phn:48) token_type=phn; suffix=_phn${phone_set}; score_opts=(--score_opts "--fold_map conf/phones.60-48-39.map") ;;
    word:*) token_type=char; suffix=_word ;;
    *) echo "$0: expected --trans_type phn|word and --phone_set 60|48|39, got ${trans_type} ${phone_set}" >&2; exit 1 ;;
esac

# Durations in seconds (TIMIT utterances are 0.9-7.8 s long).
./asr.sh \
    --nj 4 \
    --inference_nj 4 \
    --ngpu 1 \
    --token_type "${token_type}" \
    --expected_fs 16000 \
    --min_wav_duration 0.5 \
    --max_wav_duration 20 \
    --average last:10 \
    --train_set "train${suffix}" \
    --valid_set "dev${suffix}" \
    --test_sets "dev${suffix} test${suffix}" \
    --local_data_opts "--trans_type ${trans_type} --phone_set ${phone_set} ${local_data_opts}" \
    --asr_config conf/train_asr.yaml \
    --lm_config conf/train_lm.yaml \
    --inference_config conf/decode_ctc_greedy.yaml \
    "${score_opts[@]+"${score_opts[@]}"}" \
    "${args[@]+"${args[@]}"}"
