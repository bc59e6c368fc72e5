#!/usr/bin/env bash
# Stage 1 of the RAVDESS recipe: data/{train,dev,test} (text = the emotion label) from the
# audio-only speech files, split by actor; every file left out is listed in data/skipped.txt.
set -euo pipefail
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
# shellcheck disable=SC1091
. ./db.sh
SECONDS=0

train_actors=1-20       # actors of each set: a speaker-independent split
dev_actors=21-22
test_actors=23-24
strict=false            # true: a file name that breaks the RAVDESS scheme is an error, not a skip
download=false          # true: download and unzip Audio_Speech_Actors_01-24.zip into ${RAVDESS} first
expected_files=1440     # files expected in data/{train,dev,test} (the full corpus); 0: no check
help_message="Usage: $0 [--train_actors 1-20] [--dev_actors 21-22] [--test_actors 23-24] [--strict false]
          [--download false] [--expected_files 1440]
Writes data/{train,dev,test} and data/skipped.txt from \${RAVDESS} (db.sh: ${RAVDESS:-unset}),
the directory holding Actor_01 ... Actor_24 of the unzipped Audio_Speech_Actors_01-24.zip."
# shellcheck source=SCRIPTDIR/../../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"

if [ -z "${RAVDESS:-}" ]; then
    log "ERROR: set RAVDESS in db.sh (or the environment) to the directory holding Actor_01 ... Actor_24"
    exit 2
fi
if ${download}; then
    log "Downloading RAVDESS speech (~215 MB) into ${RAVDESS}"
    python3 -m espnet_ext.bin.corpus ravdess download "${RAVDESS}"
fi
if [ ! -d "${RAVDESS}" ]; then
    log "ERROR: RAVDESS=${RAVDESS} (db.sh) does not exist: unzip Audio_Speech_Actors_01-24.zip there, or run with --download true"
    exit 2
fi

_opts=(--train_actors "${train_actors}" --dev_actors "${dev_actors}" --test_actors "${test_actors}")
${strict} && _opts+=(--strict)
python3 -m espnet_ext.bin.corpus ravdess prepare "${RAVDESS}" data "${_opts[@]}"
n=$(cat data/{train,dev,test}/wav.scp | wc -l)
if [ "${expected_files}" -gt 0 ] && [ "${n}" -ne "${expected_files}" ]; then
    log "ERROR: ${n} files in data/{train,dev,test}, expected ${expected_files}: see data/skipped.txt for the files left out (--expected_files 0 skips this check)"
    exit 1
fi
log "data/{train,dev,test}: ${n} files; $(wc -l < data/skipped.txt) skipped (data/skipped.txt)"
log "Successfully finished. [elapsed=${SECONDS}s]"
