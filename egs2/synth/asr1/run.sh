#!/usr/bin/env bash
# Synthetic open-vocabulary English: CTC fine-tuning of a wav2vec 2.0 backbone on 10 min
# or 1 h of labeled espeak-ng speech, tested on unseen sentences in seen voices (test_seen), in
# unseen voices (test_unseen) and from another synthesizer (test_other, flite). Stage 1 generates
# the corpus (tools/synth_corpus/generate.py; db.sh says where). Corpus options only; the stages
# are in asr.sh (./asr.sh --help).
#
#   ./run.sh                                   # train_10min, the mini preset from random initialisation
#   ./run.sh --train_set train_1h
#   ./run.sh --pretrained ../ssl1/exp/ssl_train_ssl_w2v2_mini   # from its last checkpoint (or a checkpoint file)
#   ./compare_checkpoints.sh --checkpoints "../ssl1/exp/ssl_train_ssl_w2v2_mini/checkpoints/*updates.pth"
set -euo pipefail

./asr.sh \
    --nj 2 \
    --inference_nj 2 \
    --token_type char \
    --min_wav_duration 0.3 \
    --max_wav_duration 20 \
    --average last:5 \
    --train_set train_10min \
    --valid_set dev \
    --test_sets "test_seen test_unseen test_other" \
    --asr_config conf/train_asr.yaml \
    --lm_config conf/train_lm.yaml \
    --inference_config conf/decode_ctc_greedy.yaml \
    "$@"
