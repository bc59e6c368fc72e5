#!/usr/bin/env bash
# Stage 1 of the synth recipes (asr1 and ssl1): generate the synthetic corpus into ${SYNTH} (db.sh)
# unless it is complete there, then write the Kaldi data dirs data/<set> for every set:
#   unlabeled (pre-training audio), train, train_1h, train_10min (labeled), dev,
#   test_seen, test_unseen, test_other (see tools/synth_corpus/generate.py).
set -euo pipefail
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
# shellcheck disable=SC1091
. ./db.sh
SECONDS=0

seed=0              # generator seed (a different seed: another corpus directory in db.sh)
gen_nj=2            # parallel synthesis jobs
n_unlabeled=""      # utterances per set ("": the generator's defaults, ~5 h unlabeled, ~1.3 h train)
n_train=""
n_dev=""
n_test=""           # each of test_seen, test_unseen, test_other
subset_seconds=""   # durations of train_10min,train_1h ("": 600,3600; smaller for tests)
help_message="Usage: $0 [--seed 0] [--gen_nj 2] [--n_unlabeled N] [--n_train N] [--n_dev N] [--n_test N]
       [--subset_seconds 600,3600]
Generates the corpus into \${SYNTH} (db.sh: ${SYNTH:-unset}) unless complete there, then writes data/<set>."
# shellcheck source=SCRIPTDIR/../../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"

if [ -z "${SYNTH:-}" ]; then
    log "ERROR: set SYNTH in db.sh to the directory of the synthetic corpus (it is generated there)"; exit 2
fi
for cmd in espeak-ng flite sox; do
    command -v "${cmd}" >/dev/null || { log "ERROR: ${cmd} not found: run 'make install' (Debian package)"; exit 2; }
done
[ -d /usr/share/games/fortunes ] || { log "ERROR: /usr/share/games/fortunes not found: install Debian's 'fortunes' (make install)"; exit 2; }

gen_opts=()
[ -z "${n_unlabeled}" ] || gen_opts+=(--n_unlabeled "${n_unlabeled}")
[ -z "${n_train}" ] || gen_opts+=(--n_train "${n_train}")
[ -z "${n_dev}" ] || gen_opts+=(--n_dev "${n_dev}")
[ -z "${n_test}" ] || gen_opts+=(--n_test_seen "${n_test}" --n_test_unseen "${n_test}" --n_test_other "${n_test}")
# shellcheck disable=SC2206
[ -z "${subset_seconds}" ] || gen_opts+=(--subset_seconds ${subset_seconds//,/ })
python3 "${ESPNET_EXT_ROOT}/tools/synth_corpus/generate.py" --out "${SYNTH}" --seed "${seed}" --nj "${gen_nj}" \
    "${gen_opts[@]+"${gen_opts[@]}"}"

manifest=${SYNTH}/manifest.tsv
sets="unlabeled train dev test_seen test_unseen test_other"
for set in ${sets}; do
    python3 -m espnet_ext.bin.datadir from_manifest "${manifest}" "data/${set}" --set "${set}"
    python3 -m espnet_ext.bin.datadir validate "data/${set}"
done
for sub in train_10min train_1h; do
    rm -rf "data/${sub}"
    python3 -m espnet_ext.bin.datadir subset data/train "data/${sub}" --utt-list "${SYNTH}/subsets/${sub}"
done

n=0
for set in ${sets}; do n=$((n + $(wc -l < "data/${set}/wav.scp"))); done
expected=$(($(wc -l < "${manifest}") - 1))
if [ "${n}" -ne "${expected}" ]; then
    log "ERROR: ${n} utterances in data/{${sets// /,}}, expected ${expected} (${manifest})"; exit 1
fi
for set in ${sets} train_10min train_1h; do
    log "data/${set}: $(wc -l < "data/${set}/wav.scp") utterances"
done
log "Successfully finished. [elapsed=${SECONDS}s]"
