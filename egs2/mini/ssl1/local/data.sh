#!/usr/bin/env bash
# Stage 1 of the mini pre-training recipe: every language of the embedded mini corpus, plus
# generated English speech (espeak-ng, more voices and sentences) for pre-training.
# data/train = the train parts of en, zh and ja + the generated utterances (data/synth);
# data/dev = the mini corpus's dev parts (text kept, unused).
set -euo pipefail
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
# shellcheck disable=SC1091
. ./db.sh
SECONDS=0

langs="en zh ja"
# Unlabeled English speech generated with espeak-ng by tools/synth_corpus (fortune sentences of
# 3-20 words, 40 voices; generator seed 0, whatever the training seed): 1000 utterances = 0.98 h,
# ~20 s on 2 cores, written once to data/local/synth and reused. 0: the mini corpus only.
synth_utts=1000
help_message="Usage: $0 [--langs \"en zh ja\"] [--synth_utts 1000]
Writes data/{train,dev} from \${MINI} (db.sh: ${MINI}) and, with --synth_utts N > 0, N generated
utterances (data/local/synth)."
# shellcheck source=SCRIPTDIR/../../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"

for lang in ${langs}; do
    if [ ! -f "${MINI:-/nonexistent}/${lang}/text" ]; then
        log "ERROR: ${MINI:-(unset)}/${lang}/text not found: MINI in db.sh must point to the mini corpus (egs2/mini/corpus)"
        exit 2
    fi
    python3 -m espnet_ext.bin.corpus mini "${MINI}" "data/${lang}" --lang "${lang}"
done
train_dirs=""
for l in ${langs}; do train_dirs+=" data/${l}/train"; done
if [ "${synth_utts}" -gt 0 ]; then
    command -v espeak-ng >/dev/null || { log "ERROR: espeak-ng not found (--synth_utts ${synth_utts}): run 'make install', or pass --local_data_opts \"--synth_utts 0\""; exit 2; }
    [ -d /usr/share/games/fortunes ] || { log "ERROR: /usr/share/games/fortunes not found (--synth_utts ${synth_utts}): install Debian's 'fortunes' (make install)"; exit 2; }
    log "generating ${synth_utts} unlabeled utterances in data/local/synth (reused when already there)"
    # Only the unlabeled set: the generator's labeled and test sets are not used here.
    python3 "${ESPNET_EXT_ROOT}/tools/synth_corpus/generate.py" --out data/local/synth --seed 0 --nj 2 \
        --n_unlabeled "${synth_utts}" --n_train 0 --n_dev 0 --n_test_seen 0 --n_test_unseen 0 --n_test_other 0 \
        --subset_seconds 0 0
    python3 -m espnet_ext.bin.datadir from_manifest data/local/synth/manifest.tsv data/synth --set unlabeled --no-text
    train_dirs+=" data/synth"
fi
for part in train dev; do
    rm -rf "data/${part}"
    if [ "${part}" = train ]; then dirs=${train_dirs}; else dirs=""; for l in ${langs}; do dirs+=" data/${l}/dev"; done; fi
    # shellcheck disable=SC2086  # one data dir per language (and the generated one)
    python3 -m espnet_ext.bin.datadir combine "data/${part}" ${dirs}
done
log "data/train: $(wc -l < data/train/wav.scp) utterances, data/dev: $(wc -l < data/dev/wav.scp)"
log "Successfully finished. [elapsed=${SECONDS}s]"
