#!/usr/bin/env bash
# Stage 1 of the TIMIT recipe: data/{train,dev,test}<suffix> from the corpus in ${TIMIT} (db.sh):
# SI and SX sentences (SA excluded), train = the TRAIN speakers, dev = the 50-speaker development
# set, test = the 24-speaker core test set; wav.scp lists the corpus's SPHERE files, read by
# libsndfile (no sph2pipe; stage 3 encodes them once). Utterances left out are listed in data/<set>/excluded.txt.
set -euo pipefail
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
# shellcheck disable=SC1091
. ./db.sh
SECONDS=0

trans_type=phn                       # phn (phones from .PHN) or word (words from .WRD)
phone_set=39                         # phn: fold the 61 TIMIT phones to the 60-, 48- or 39-phone set
phone_map=conf/phones.60-48-39.map   # the folding (Lee & Hon, 1989), one TIMIT phone per line
help_message="Usage: $0 [--trans_type phn|word] [--phone_set 60|48|39] [--phone_map FILE]
Writes data/{train,dev,test}<suffix> from \${TIMIT} (db.sh: ${TIMIT:-unset}); the suffix is empty
for 39 phones, _phn<N> for other phone sets and _word for words."
# shellcheck source=SCRIPTDIR/../../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"

if [ -z "${TIMIT:-}" ]; then
    log "ERROR: set TIMIT in db.sh to your copy of TIMIT (the directory holding TRAIN/ and TEST/)"; exit 2
fi
if [ ! -d "${TIMIT}" ]; then
    log "ERROR: ${TIMIT} not found: TIMIT in db.sh must point to your copy of TIMIT (LDC93S1)"; exit 2
fi
case "${trans_type}:${phone_set}" in
    phn:39) suffix="" ;;
    phn:60|phn:48) suffix=_phn${phone_set} ;;
    word:*) suffix=_word ;;
    *) log "ERROR: expected --trans_type phn|word and --phone_set 60|48|39, got ${trans_type} ${phone_set}"; exit 2 ;;
esac

log "Data directories data/{train,dev,test}${suffix} (${trans_type}$([ "${trans_type}" = phn ] && echo ", ${phone_set} phones"))"
python3 -m espnet_ext.bin.corpus timit "${TIMIT}" data --phone_map "${phone_map}" \
    --trans_type "${trans_type}" --phone_set "${phone_set}" \
    --suffix "${suffix}"
for dset in train dev test; do
    log "  data/${dset}${suffix}: $(wc -l < "data/${dset}${suffix}/text") utterances, $(wc -l < "data/${dset}${suffix}/excluded.txt") excluded"
done
log "Successfully finished. [elapsed=${SECONDS}s]"
