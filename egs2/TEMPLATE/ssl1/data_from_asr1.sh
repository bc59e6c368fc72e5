#!/usr/bin/env bash
# Stage 1 of a corpus's pre-training recipe (egs2/<corpus>/ssl1/local/data.sh links here): the
# asr1 recipe's data preparation (../asr1/local/data.sh, same corpus, same db.sh settings),
# whose training audio becomes data/ssl_train and whose validation audio data/ssl_dev, plus any
# extra directory trees of audio files (other corpora, your own recordings) or prepared data dirs
# (AISHELL-2's, see egs2/aishell/ssl1/local/data.sh) added to data/ssl_train. Transcripts are not
# needed; they are kept when every source has them (ssl.sh --exclude_texts_of compares them). The
# asr1 test sets are never used.
set -euo pipefail
# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
SECONDS=0

asr_train_set=train     # the asr1 data dir (data/<set>) whose audio is pre-trained on
asr_valid_set=dev       # the asr1 data dir used for validation
with_asr_train=true     # false: data/ssl_train holds the extra audio only (the asr1 data is still prepared)
extra_audio_dirs=""     # comma-separated directory trees of wav/flac files, added to ssl_train
extra_speaker_level=0   # directory depth below each extra root that names the speaker (-1: per file)
extra_data_dirs=""      # comma-separated data dirs (wav.scp, utt2spk, text if any), added to ssl_train
help_message="Usage: $0 [--asr_train_set ${asr_train_set}] [--asr_valid_set ${asr_valid_set}] [--with_asr_train true]
          [--extra_audio_dirs DIR[,DIR...]] [--extra_speaker_level 0] [--extra_data_dirs DIR[,DIR...]]
          [options of ../asr1/local/data.sh]
Writes data/ssl_train (audio of data/\${asr_train_set} unless --with_asr_train false, + extra audio
and data dirs) and data/ssl_dev; any other option goes to ../asr1/local/data.sh (e.g. --train_set
train_960 for LibriSpeech)."
own_options="asr_train_set asr_valid_set with_asr_train extra_audio_dirs extra_speaker_level extra_data_dirs"
# shellcheck source=SCRIPTDIR/../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"
asr_data_opts=("${passed_options[@]+"${passed_options[@]}"}" "$@")

[ -x ../asr1/local/data.sh ] || { log "ERROR: ../asr1/local/data.sh not found: run from egs2/<corpus>/ssl1"; exit 2; }
../asr1/local/data.sh "${asr_data_opts[@]+"${asr_data_opts[@]}"}"
for dset in "${asr_train_set}" "${asr_valid_set}"; do
    [ -f "data/${dset}/wav.scp" ] || { log "ERROR: data/${dset}/wav.scp not written by ../asr1/local/data.sh"; exit 1; }
done

sources=()
[ "${with_asr_train}" = false ] || sources+=("data/${asr_train_set}")
if [ -n "${extra_audio_dirs}" ]; then
    i=0
    IFS=, read -r -a dirs <<< "${extra_audio_dirs}"
    for dir in "${dirs[@]}"; do
        i=$((i + 1))
        python3 -m espnet_ext.bin.audio_dirs "${dir}" --out "data/extra${i}" --prefix "extra${i}" \
            --speaker_level "${extra_speaker_level}"
        sources+=("data/extra${i}")
    done
fi
if [ -n "${extra_data_dirs}" ]; then
    IFS=, read -r -a dirs <<< "${extra_data_dirs}"
    for dir in "${dirs[@]}"; do
        [ -f "${dir}/wav.scp" ] || { log "ERROR: --extra_data_dirs: ${dir}/wav.scp not found (expected a data dir)"; exit 1; }
        sources+=("${dir}")
    done
fi
[ ${#sources[@]} -gt 0 ] || { log "ERROR: --with_asr_train false and no --extra_audio_dirs or --extra_data_dirs: no audio"; exit 1; }
rm -rf data/ssl_train data/ssl_dev
python3 -m espnet_ext.bin.datadir combine data/ssl_train "${sources[@]}"
python3 -m espnet_ext.bin.datadir combine data/ssl_dev "data/${asr_valid_set}"
log "data/ssl_train: $(wc -l < data/ssl_train/wav.scp) utterances (${sources[*]}); data/ssl_dev: $(wc -l < data/ssl_dev/wav.scp)"
log "Successfully finished. [elapsed=${SECONDS}s]"
