# The corpus is the asr1 recipe's (../asr1/db.sh; stage 1 runs ../asr1/local/data.sh): set it
# there, or export LIBRISPEECH. A relative path there is relative to asr1/, so both recipes share one copy.
# shellcheck disable=SC1091
. ../asr1/db.sh
case "${LIBRISPEECH}" in /*) ;; *) LIBRISPEECH=../asr1/${LIBRISPEECH} ;; esac
