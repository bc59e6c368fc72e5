#!/usr/bin/env bash
# Mini recipe: a CTC model on the English part of the embedded synthesized corpus, in a few
# minutes on 2 CPU cores. Corpus options only; the stages are in asr.sh (see ./asr.sh --help).
set -euo pipefail

train_set=train
valid_set=dev
test_sets="dev test"

asr_config=conf/train_asr.yaml
inference_config=conf/decode_ctc_greedy.yaml

./asr.sh \
    --nj 2 \
    --inference_nj 2 \
    --token_type char \
    --min_wav_duration 0.3 \
    --max_wav_duration 10 \
    --average last:5 \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --asr_config "${asr_config}" \
    --inference_config "${inference_config}" \
    "$@"
