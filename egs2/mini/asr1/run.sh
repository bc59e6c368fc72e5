#!/usr/bin/env bash
# Mini recipe: CTC fine-tuning of a wav2vec 2.0 backbone on the English part of the embedded
# synthesized corpus, in a few minutes on 2 CPU cores. Corpus options only; the stages are in
# asr.sh (see ./asr.sh --help).
#
#   ./run.sh                                   # the mini preset from random initialisation
#   ./run.sh --pretrained ../ssl1/exp/ssl_train_ssl_w2v2_mini   # from that pre-training's last
#                                              # checkpoint (or give a checkpoint file)
set -euo pipefail
# One torch thread unless OMP_NUM_THREADS says otherwise: trained weights (hence the figures)
# depend on the thread count, so the same figures on any core count (a second thread gains
# little on a model this small).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

train_set=train
valid_set=dev
test_sets="dev test"

asr_config=conf/train_asr.yaml
inference_config=conf/decode_ctc_greedy.yaml
pretrained=""   # a checkpoint for the wav2vec2 frontend, or an ssl1 exp dir (its last checkpoint)
asr_args=""     # extra training options (with --pretrained, added after the frontend's path)

# These three are read here; every other option goes to asr.sh.
own_options="pretrained asr_config asr_args"
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"
args=("${passed_options[@]+"${passed_options[@]}"}" "$@")
if [ -n "${pretrained}" ]; then
    if [ -d "${pretrained}" ]; then
        dir=${pretrained}
        pretrained=$(find "${dir}/checkpoints" -name '*updates.pth' 2>/dev/null | sort -V | tail -n 1)
        [ -n "${pretrained}" ] || { echo "$0: no checkpoints/<N>updates.pth in ${dir}" >&2; exit 1; }
    fi
    [ -f "${pretrained}" ] || { echo "$0: --pretrained ${pretrained}: no such file" >&2; exit 1; }
    pretrained=$(cd "$(dirname "${pretrained}")" && pwd)/$(basename "${pretrained}")
    echo "$0: fine-tuning from ${pretrained}"
    name=$(basename "$(dirname "$(dirname "${pretrained}")")")_$(basename "${pretrained}" .pth)
    # the tag names the config a link such as conf/train_asr.yaml points to
    args=(--asr_tag "$(basename "$(readlink -f "${asr_config}")" .yaml)_${name#ssl_}" "${args[@]+"${args[@]}"}")
    asr_args="--frontend_conf preset=null --frontend_conf path=${pretrained} ${asr_args}"
fi
[ -n "${asr_args}" ] && args+=(--asr_args "${asr_args}")

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
    "${args[@]+"${args[@]}"}"
