# The corpus is the asr1 recipe's (../asr1/db.sh; stage 1 runs ../asr1/local/data.sh): set it
# there, or export AISHELL. A relative path there is relative to asr1/, so both recipes share one copy.
# shellcheck disable=SC1091
. ../asr1/db.sh
case "${AISHELL}" in /*) ;; *) AISHELL=../asr1/${AISHELL} ;; esac
# AISHELL-2 (released on application at aishelltech.com, not downloaded here): the directory holding
# iOS/data (or the one holding AISHELL-2/), or empty. run.sh --aishell2 DIR overrides it; when set,
# stage 1 reads it and the pre-training set is prepared as Mandarin-Wav2Vec2's (run.sh).
AISHELL2=${AISHELL2:-}
