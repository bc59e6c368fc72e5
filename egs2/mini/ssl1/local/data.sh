#!/usr/bin/env bash
# Stage 1 of the mini pre-training recipe: every language of the embedded mini corpus.
# data/train = the train parts of en, zh and ja; data/dev = their dev parts (text kept, unused).
set -euo pipefail
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
# shellcheck disable=SC1091
. ./db.sh
SECONDS=0

langs="en zh ja"
help_message="Usage: $0 [--langs \"en zh ja\"]
Writes data/{train,dev} from \${MINI} (db.sh: ${MINI})."
# shellcheck source=SCRIPTDIR/../../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"

for lang in ${langs}; do
    if [ ! -f "${MINI:-/nonexistent}/${lang}/text" ]; then
        log "ERROR: ${MINI:-(unset)}/${lang}/text not found: MINI in db.sh must point to the mini corpus (egs2/mini/corpus)"
        exit 2
    fi
    python3 -m espnet_ext.data.mini "${MINI}" "data/${lang}" --lang "${lang}"
done
for part in train dev; do
    rm -rf "data/${part}"
    # shellcheck disable=SC2046  # one data dir per language
    python3 -m espnet_ext.bin.datadir combine "data/${part}" $(for l in ${langs}; do echo "data/${l}/${part}"; done)
done
log "data/train: $(wc -l < data/train/wav.scp) utterances, data/dev: $(wc -l < data/dev/wav.scp)"
log "Successfully finished. [elapsed=${SECONDS}s]"
