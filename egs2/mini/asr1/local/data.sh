#!/usr/bin/env bash
# Stage 1 of the mini recipe: data/{train,dev,test} from the embedded mini corpus.
set -euo pipefail
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
# shellcheck disable=SC1091
. ./db.sh
SECONDS=0

lang=en         # en, zh or ja: which part of the mini corpus
help_message="Usage: $0 [--lang en|zh|ja]
Writes data/{train,dev,test} from \${MINI} (db.sh: ${MINI})."
# shellcheck source=SCRIPTDIR/../../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"

if [ -z "${MINI:-}" ]; then
    log "ERROR: set MINI in db.sh to the mini corpus directory"; exit 2
fi
if [ ! -f "${MINI}/${lang}/text" ]; then
    log "ERROR: ${MINI}/${lang}/text not found: MINI in db.sh must point to the mini corpus (egs2/mini/corpus)"; exit 2
fi

python3 -m espnet_ext.bin.corpus mini "${MINI}" data --lang "${lang}"
n=$(cat data/{train,dev,test}/text | wc -l)
expected=$(wc -l < "${MINI}/${lang}/text")
if [ "${n}" -ne "${expected}" ]; then
    log "ERROR: ${n} utterances in data/{train,dev,test}, expected ${expected}"; exit 1
fi
log "Successfully finished. [elapsed=${SECONDS}s]"
