#!/usr/bin/env bash
# Stage 1 of the JSUT recipe: use a complete copy in ${JSUT}, or download it (unless --download
# false), then data/{tr_no_dev,dev,eval1}.
set -euo pipefail
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
# shellcheck disable=SC1091
. ./db.sh
SECONDS=0

download=true                                   # fetch and extract into ${JSUT} unless a complete copy is there
base_url=http://ss-takashi.sakura.ne.jp/corpus  # folder URL of jsut_ver1.1.zip (or file:///dir)
remove_archive=false                            # delete the zip after extraction
num_eval=250                                    # eval1: the first N sorted basic5000 ids (ESPnet: 250)
num_dev=250                                     # dev: the next N basic5000 ids (ESPnet: 250)
help_message="Usage: $0 [--download true|false] [--base_url URL] [--remove_archive true|false]
          [--num_eval N] [--num_dev N]
Uses JSUT 1.1 in \${JSUT} (db.sh: ${JSUT:-unset}) when jsut_ver1.1/ there is complete (every file its
transcripts list), else downloads jsut_ver1.1.zip there and extracts it; a partial copy is an error
naming what is missing. Then writes data/{tr_no_dev,dev,eval1}: eval1 and dev from the sorted
basic5000 ids, the rest of basic5000 and every other subset in tr_no_dev. Utterances left out are
listed in data/<set>/excluded.txt."
# shellcheck source=SCRIPTDIR/../../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"

if [ -z "${JSUT:-}" ]; then
    log "ERROR: set JSUT in db.sh to the directory holding (or to receive) jsut_ver1.1/"; exit 2
fi
_prepare_opts=()
if [ "${download}" = true ]; then
    _opts=(); [ "${remove_archive}" = true ] && _opts+=(--remove_archive)
    python3 -m espnet_ext.bin.corpus jsut download "${JSUT}" --base_url "${base_url}" "${_opts[@]}"
elif [ ! -d "${JSUT}/jsut_ver1.1" ]; then
    log "ERROR: ${JSUT}/jsut_ver1.1 not found: point JSUT in db.sh at the directory holding" \
        "jsut_ver1.1/ (the unzipped jsut_ver1.1.zip), or run with --download true"; exit 2
else
    _prepare_opts+=(--require_complete)   # nothing is downloaded: a partial copy stops here
fi

python3 -m espnet_ext.bin.corpus jsut prepare "${JSUT}" data --num_eval "${num_eval}" --num_dev "${num_dev}" \
    "${_prepare_opts[@]}"
log "Successfully finished. [elapsed=${SECONDS}s]"
