#!/usr/bin/env bash
# Stage 1 of the AISHELL-1 recipe: use a complete copy in ${AISHELL}, or download it (unless
# --download false), then data/{train,dev,test}.
set -euo pipefail
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
# shellcheck disable=SC1091
. ./db.sh
SECONDS=0

download=true                                   # fetch and extract into ${AISHELL} unless a complete copy is there
base_url=https://www.openslr.org/resources/33   # or a mirror (us.openslr.org, openslr.elda.org), or file:///dir
remove_archive=false                            # delete the two .tgz files after extraction
help_message="Usage: $0 [--download true|false] [--base_url URL] [--remove_archive true|false]
Uses AISHELL-1 in \${AISHELL} (db.sh: ${AISHELL:-unset}) when data_aishell/ there is complete (every
speaker of its transcript extracted), else downloads data_aishell.tgz and resource_aishell.tgz there and
extracts them (and the per-speaker tarballs); a partial copy is an error naming what is missing. Then
writes data/{train,dev,test}.
Utterances left out are listed in data/<set>/excluded.txt with the reason."
# shellcheck source=SCRIPTDIR/../../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"

if [ -z "${AISHELL:-}" ]; then
    log "ERROR: set AISHELL in db.sh to the directory holding (or to receive) data_aishell/"; exit 2
fi
_prepare_opts=()
if [ "${download}" = true ]; then
    _opts=(); [ "${remove_archive}" = true ] && _opts+=(--remove_archive)
    python3 -m espnet_ext.bin.corpus aishell download "${AISHELL}" --base_url "${base_url}" "${_opts[@]}"
elif [ ! -d "${AISHELL}/data_aishell" ]; then
    log "ERROR: ${AISHELL}/data_aishell not found: point AISHELL in db.sh at the directory holding" \
        "data_aishell/ (from openslr.org/33), or run with --download true"; exit 2
else
    _prepare_opts+=(--require_complete)   # nothing is downloaded: a partial copy stops here
fi

python3 -m espnet_ext.bin.corpus aishell prepare "${AISHELL}" data "${_prepare_opts[@]}"
log "Successfully finished. [elapsed=${SECONDS}s]"
