#!/usr/bin/env bash
# Stage 1 of the LibriSpeech recipe: use the parts that are complete in ${LIBRISPEECH}, download
# those that are missing (openslr.org resource 12; a partial part is an error) and write
# data/{dev_clean,dev_other,test_clean,test_other,train_clean_100}, data/dev
# (dev_clean + dev_other, the validation set) and, by option, data/train_960, a random subset
# data/train_clean_100_sub<N>, or Libri-light's limited-supervision split data/train_10h (1h,
# 10min) from a local copy of librispeech_finetuning/ in ${LIBRILIGHT} (db.sh; fairseq's
# base_10h fine-tunes on it). Utterances left out are listed in data/<set>/excluded.txt.
set -euo pipefail
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
# shellcheck disable=SC1091
. ./db.sh
SECONDS=0

train_set=train_clean_100   # train_clean_100 | train_960 | train_clean_100_sub<N> (N random utterances)
                            # | train_10h | train_1h | train_10min (Libri-light, from LIBRILIGHT in db.sh)
subset_seed=0               # seed of the random subset (fixed, so the same N gives the same utterances)
download=true               # fetch the parts missing from LIBRISPEECH/LibriSpeech/ (false: a missing part is an error)
data_url=https://www.openslr.org/resources/12  # folder URL of <part>.tar.gz (a mirror, or file://)
md5_check=true              # check each archive against openslr's md5 sums
remove_archive=false        # delete each archive once extracted (saves ~6.3 GB for train-clean-100)
help_message="Usage: $0 [options]
Writes data/<set>/ for LibriSpeech from \${LIBRISPEECH} (db.sh: ${LIBRISPEECH:-unset}) and
Libri-light's fine-tuning splits from \${LIBRILIGHT} (db.sh: ${LIBRILIGHT:-unset}).
Options (defaults in brackets):
  --train_set ${train_set}   train_clean_100, train_960, train_clean_100_sub<N>, or
                             train_10h, train_1h, train_10min (Libri-light's librispeech_finetuning)
  --subset_seed ${subset_seed} --download ${download} --data_url ${data_url}
  --md5_check ${md5_check} --remove_archive ${remove_archive}"
# shellcheck source=SCRIPTDIR/../../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"

if [ -z "${LIBRISPEECH:-}" ]; then
    log "ERROR: set LIBRISPEECH in db.sh to the directory holding (or receiving) LibriSpeech/"; exit 2
fi
if ! ${download} && [ ! -d "${LIBRISPEECH}" ]; then
    log "ERROR: ${LIBRISPEECH} not found: LIBRISPEECH in db.sh must point to the directory holding LibriSpeech/ (or use --download true)"
    exit 2
fi

parts="dev-clean dev-other test-clean test-other train-clean-100"
subset_size=0
librilight_split=""
case "${train_set}" in
    train_clean_100) ;;
    train_960) parts="${parts} train-clean-360 train-other-500" ;;
    train_clean_100_sub[0-9]*) subset_size=${train_set#train_clean_100_sub}
        [[ "${subset_size}" =~ ^[1-9][0-9]*$ ]] || { log "ERROR: --train_set ${train_set}: expected train_clean_100_sub<N>, N > 0"; exit 2; } ;;
    train_10h|train_1h|train_10min) librilight_split=${train_set#train_}
        parts="dev-clean dev-other test-clean test-other" ;;   # the training audio is Libri-light's copy
    *) log "ERROR: --train_set must be train_clean_100, train_960, train_clean_100_sub<N>, train_10h, train_1h or train_10min, got '${train_set}'"; exit 2 ;;
esac
if [ -n "${librilight_split}" ]; then
    if [ -z "${LIBRILIGHT:-}" ] || [ ! -d "${LIBRILIGHT}" ]; then
        log "ERROR: --train_set ${train_set} reads Libri-light's librispeech_finetuning/: set LIBRILIGHT in db.sh to the directory holding it (found '${LIBRILIGHT:-}'; extract https://dl.fbaipublicfiles.com/librilight/data/librispeech_finetuning.tgz there)"
        exit 2
    fi
fi

prepare_opts=()
if ${download}; then
    log "Parts ${parts}: complete ones in ${LIBRISPEECH} are used, missing ones downloaded from ${data_url}"
    opts=()
    ${md5_check} || opts+=(--no_md5)
    ${remove_archive} && opts+=(--remove_archive)
    # shellcheck disable=SC2086
    python3 -m espnet_ext.bin.corpus librispeech download "${LIBRISPEECH}" --parts ${parts} \
        --base_url "${data_url}" "${opts[@]+"${opts[@]}"}"
else
    prepare_opts+=(--require_complete)   # nothing is downloaded: a missing or partial part stops here
fi

log "Data directories for ${parts}"
# shellcheck disable=SC2086
python3 -m espnet_ext.bin.corpus librispeech prepare "${LIBRISPEECH}" data --parts ${parts} \
    "${prepare_opts[@]+"${prepare_opts[@]}"}"

combine() {  # combine DST SRC...: the union of data dirs, with the sources' excluded.txt lists
    local dst=$1; shift
    python3 -m espnet_ext.bin.datadir combine "${dst}" "$@"
    local src
    for src in "$@"; do cat "${src}/excluded.txt"; done | LC_ALL=C sort > "${dst}/excluded.txt"
}
combine data/dev data/dev_clean data/dev_other
if [ "${train_set}" = train_960 ]; then
    combine data/train_960 data/train_clean_100 data/train_clean_360 data/train_other_500
fi
if [ -n "${librilight_split}" ]; then
    log "Libri-light's ${librilight_split} split from ${LIBRILIGHT}"
    python3 -m espnet_ext.bin.corpus librilight prepare "${LIBRILIGHT}" data --split "${librilight_split}"
fi
if [ "${subset_size}" -gt 0 ]; then
    log "A random subset of ${subset_size} utterances of data/train_clean_100 (seed ${subset_seed})"
    python3 -m espnet_ext.bin.datadir subset data/train_clean_100 "data/${train_set}" \
        --random "${subset_size}" --seed "${subset_seed}"
fi

for dset in "${train_set}" dev dev_clean dev_other test_clean test_other; do
    n_excluded=0; [ -f "data/${dset}/excluded.txt" ] && n_excluded=$(wc -l < "data/${dset}/excluded.txt")
    log "  data/${dset}: $(wc -l < "data/${dset}/text") utterances, ${n_excluded} excluded"
done
log "Successfully finished. [elapsed=${SECONDS}s]"
