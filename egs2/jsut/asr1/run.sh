#!/usr/bin/env bash
# JSUT 1.1 (Japanese, one speaker, 10 h, 48 kHz): CTC on a wav2vec 2.0 backbone, or a conformer
# from scratch. Corpus options only; the stages are in asr.sh (see ./asr.sh --help, README.md).
# Stage 3 resamples the 48 kHz audio to 16 kHz (--fs).
set -euo pipefail

train_set=tr_no_dev
valid_set=dev
test_sets="dev eval1"

asr_config=conf/train_asr.yaml                  # -> conf/tuning/train_asr_w2v2_base_ctc.yaml
inference_config=conf/decode_ctc_greedy.yaml

./asr.sh \
    --nj 8 \
    --inference_nj 8 \
    --ngpu 1 \
    --fs 16000 \
    --expected_fs 48000 \
    --token_type char \
    --min_wav_duration 0.3 \
    --max_wav_duration 20 \
    --average last:10 \
    --score_metrics cer \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    --asr_config "${asr_config}" \
    --lm_config conf/train_lm.yaml \
    --inference_config "${inference_config}" \
    "$@"
