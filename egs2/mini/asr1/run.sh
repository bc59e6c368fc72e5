#!/usr/bin/env bash
# Mini recipe: CTC fine-tuning of a wav2vec 2.0 backbone on the English part of the embedded
# synthesized corpus, in a few minutes on 2 CPU cores. Corpus options only; the stages are in
# asr.sh (see ./asr.sh --help).
#
#   ./run.sh                                   # the mini preset from random initialisation
#   ./run.sh --pretrained ../ssl1/exp/ssl_train_ssl_w2v2_mini   # from that pre-training's last
#                                              # checkpoint (or give a checkpoint file)
#   ./run.sh --use_lm true --inference_config conf/decode_ctc_lm.yaml   # with a character LM
#                                              # (conf/train_lm.yaml, stages 6-8) in the beam search
set -euo pipefail
# One torch thread unless OMP_NUM_THREADS says otherwise: trained weights (hence the figures)
# depend on the thread count, so the same figures on any core count (a second thread gains
# little on a model this small).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

./asr.sh \
    --nj 2 \
    --inference_nj 2 \
    --token_type char \
    --min_wav_duration 0.3 \
    --max_wav_duration 10 \
    --average last:5 \
    --train_set train \
    --valid_set dev \
    --test_sets "dev test" \
    --asr_config conf/train_asr.yaml \
    --lm_config conf/train_lm.yaml \
    --inference_config conf/decode_ctc_greedy.yaml \
    "$@"
