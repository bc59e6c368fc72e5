#!/usr/bin/env bash
# Stage 1 of the AISHELL pre-training recipe: egs2/TEMPLATE/ssl1/data_from_asr1.sh (AISHELL-1 by
# ../asr1/local/data.sh: data/{train,dev,test}; data/ssl_train and data/ssl_dev) and, with
# --aishell2 DIR, AISHELL-2 as released (iOS/data, and its dev/test sets when there) read into
# data/aishell2/ (python -m espnet_ext.bin.corpus aishell2 prepare), whose training set is then the
# pre-training audio in data/ssl_train (with AISHELL-1's training audio only on request, as
# Mandarin-Wav2Vec2 pre-trains on AISHELL-2 alone). Transcripts are kept: ssl.sh --exclude_texts_of
# compares them with AISHELL-1's dev and test sentences.
set -euo pipefail
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"

aishell2=""               # the AISHELL-2 directory (holding iOS/data), or the one holding it; "": not used
aishell2_dev_test_dir=""  # its AISHELL-DEV-TEST-SET when elsewhere than inside it (prepared, not pre-trained on)
with_aishell1_train=false # with --aishell2: pre-train on AISHELL-1's training audio too
extra_data_dirs=""        # more data dirs for data/ssl_train (data_from_asr1.sh's option)
help_message="Usage: $0 [--aishell2 DIR] [--aishell2_dev_test_dir DIR] [--with_aishell1_train false]
          [options of egs2/TEMPLATE/ssl1/data_from_asr1.sh and ../asr1/local/data.sh]
Without --aishell2: data_from_asr1.sh (data/ssl_train = AISHELL-1's training audio + extra audio).
With --aishell2 DIR: data/aishell2/{train,dev_ios,...} from AISHELL-2, and data/ssl_train = its
training set (+ AISHELL-1's with --with_aishell1_train true; + extra audio); data/ssl_dev is
AISHELL-1's dev either way. Left-out utterances: data/aishell2/<set>/excluded.txt."
own_options="aishell2 aishell2_dev_test_dir with_aishell1_train extra_data_dirs"
# shellcheck source=SCRIPTDIR/../../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"
opts=("${passed_options[@]+"${passed_options[@]}"}" "$@")

if [ -n "${aishell2}" ]; then
    log "AISHELL-2 in ${aishell2}: data/aishell2"
    _dev_test=()
    [ -z "${aishell2_dev_test_dir}" ] || _dev_test=(--dev_test_dir "${aishell2_dev_test_dir}")
    rm -rf data/aishell2
    python3 -m espnet_ext.bin.corpus aishell2 prepare "${aishell2}" data/aishell2 "${_dev_test[@]+"${_dev_test[@]}"}"
    extra_data_dirs=data/aishell2/train${extra_data_dirs:+,${extra_data_dirs}}
    opts+=(--with_asr_train "${with_aishell1_train}")
fi
[ -z "${extra_data_dirs}" ] || opts+=(--extra_data_dirs "${extra_data_dirs}")
exec "${ESPNET_EXT_ROOT}/egs2/TEMPLATE/ssl1/data_from_asr1.sh" "${opts[@]+"${opts[@]}"}"
