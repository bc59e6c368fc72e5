#!/usr/bin/env bash
# The shared pre-training driver. Every <corpus>/ssl1/run.sh sets corpus options and calls it.
# Stages as in asr.sh where they exist; see --help. Safe to re-run: a finished step leaves a
# marker that records its inputs and is skipped only while they are the same; training resumes
# from its last checkpoint. A pre-training with other inputs than exp/ssl_<tag>'s (config, options,
# data) goes to exp/ssl_<tag>_<fingerprint> beside it (logged).

set -euo pipefail

# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
SECONDS=0

stage=1                 # first stage to run
stop_stage=10000        # last stage to run
skip_stages=""
nj=4                    # parallel jobs for data preparation and stats
ngpu=0                  # GPUs for training (0: CPU)
num_nodes=1             # nodes for training (slurm backend)
dumpdir=dump
expdir=exp
local_data_opts=""      # options passed to local/data.sh

train_set=""            # audio to pre-train on (a data dir; text is not needed)
valid_set=""
fs=16000                # sampling rate after stage 3, Hz
audio_format=flac
expected_fs=""          # comma-separated rates the corpus should have; "" any
min_wav_duration=1.0    # seconds; shorter utterances are removed in stage 4
max_wav_duration=30     # seconds; longer ones too (batches are cropped to their shortest)

ssl_config=""           # pre-training YAML (conf/tuning/*.yaml, model: wav2vec2)
ssl_args=""             # extra options for espnet_ext.bin.ssl_train
ssl_tag=""              # experiment name (default: the config's name)
save_every_updates=""   # checkpoint every K optimizer updates (default: the config's value)
ssl_exp_file=""         # write the experiment's directory (as named by its inputs) into this file

help_message=$(cat <<EOF
Usage: $0 --train_set <set> --valid_set <set> --ssl_config <yaml> [options]

Stages:
  1  data: local/data.sh -> data/<set>/{wav.scp,utt2spk,spk2utt} (text optional)
  3  format: resample to --fs, dump audio to ${dumpdir}/raw
  4  filter by duration (--min_wav_duration, --max_wav_duration; listed in removed.txt)
  10 collect shapes
  11 pre-train (python -m espnet_ext.bin.ssl_train): exp/ssl_<tag>/checkpoints/<N>updates.pth
     every K updates, all kept, each loadable by the wav2vec2 frontend (frontend_conf: path)
  12 export the backbone alone: exp/ssl_<tag>/backbone.pth (weights + config, no heads)
  13 report: exp/ssl_<tag>/report.png (curves of L_m, L_d, perplexities, accuracy, similarities,
     learning rate) and report.md (start/end/best values, chance levels, collapse warnings)

Options (defaults in brackets):
  --stage ${stage} --stop_stage ${stop_stage} --nj ${nj} --ngpu ${ngpu} --num_nodes ${num_nodes}
  --train_set --valid_set --fs ${fs} --expected_fs "${expected_fs}"
  --min_wav_duration ${min_wav_duration} --max_wav_duration ${max_wav_duration} (seconds)
  --ssl_config --ssl_args --ssl_tag --save_every_updates --ssl_exp_file
EOF
)

driver_args=("$@")  # for the generated exp/<tag>/run.sh (train_model)
# shellcheck source=SCRIPTDIR/../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"
# shellcheck disable=SC1091
. ./cmd.sh
# shellcheck source=SCRIPTDIR/../../../local/stage_lib.sh
. "${ESPNET_EXT_ROOT}/local/stage_lib.sh"
stamp_cache=${expdir}/.stamp_cache.json  # hashes of the step inputs (step_done, keyed_dir)

[ -n "${train_set}" ] || die "--train_set is required"
[ -n "${valid_set}" ] || die "--valid_set is required"
[ -n "${ssl_config}" ] || die "--ssl_config is required"
[ -f "${ssl_config}" ] || die "--ssl_config ${ssl_config}: no such file"
[ -n "${ssl_tag}" ] || ssl_tag=$(basename "$(readlink -f "${ssl_config}")" .yaml)
ssl_exp=""  # named by its inputs when a stage needs it (resolve_experiment)
ssl_stats_dir=${expdir}/ssl_stats_${train_set}_${fs}  # shapes of train_set (and valid_set)
data_feats=${dumpdir}/raw
data_inputs=(--option "fs=${fs}")  # (espnet_ext.bin.stamp) the shapes', and with model_inputs the experiment's
for _pair in "train:${train_set}" "valid:${valid_set}"; do
    for _f in wav.scp utt2num_samples; do data_inputs+=(--file "${_pair%%:*}_${_f}=${data_feats}/${_pair#*:}/${_f}"); done
done
model_inputs=(--config "config=${ssl_config}" --option "ssl_args=${ssl_args}"
              --option "save_every_updates=${save_every_updates}")
resolve_experiment() {  # ssl_exp for the current inputs (stages 11-13)
    [ -z "${ssl_exp}" ] || return 0
    keyed_dir ssl_exp "${expdir}/ssl_${ssl_tag}" "${data_inputs[@]}" "${model_inputs[@]}"
}

if run_stage 1; then
    log "Stage 1: prepare data directories (local/data.sh ${local_data_opts})"
    prepare_data --no-text "${train_set} ${valid_set}"
fi

if run_stage 3; then
    log "Stage 3: format audio: ${fs} Hz ${audio_format} in ${data_feats}/org"
    format_sets "${train_set} ${valid_set}" "${train_set}" "${valid_set}"
fi

if run_stage 4; then
    log "Stage 4: filter by duration: ${min_wav_duration}-${max_wav_duration} s"
    for dset in $(unique_words "${train_set} ${valid_set}"); do
        filter_set "${data_feats}/org/${dset}" "${data_feats}/${dset}"
    done
fi

if run_stage 10; then
    log "Stage 10: collect shapes in ${ssl_stats_dir}"
    if ! step_done "${ssl_stats_dir}/.done" "${data_inputs[@]}"; then
    if [ -f "${data_feats}/${train_set}/utt2num_samples" ] && [ -f "${data_feats}/${valid_set}/utt2num_samples" ]; then
        # Pre-training has no feature statistics: its shape files are the samples per utterance
        # that stage 3 counted (what ESPnet's --collect_stats writes, without a pass over the audio).
        for pair in "train:${train_set}" "valid:${valid_set}"; do
            mkdir -p "${ssl_stats_dir}/${pair%%:*}"
            cp "${data_feats}/${pair#*:}/utt2num_samples" "${ssl_stats_dir}/${pair%%:*}/speech_shape"
        done
        log "  shapes from ${data_feats}/{${train_set},${valid_set}}/utt2num_samples"
    else
    # shellcheck disable=SC2086
    collect_stats espnet_ext.bin.ssl_train "${ssl_stats_dir}" "${nj}" "${data_feats}/${train_set}" \
        "${data_feats}/${valid_set}" "${ssl_config}" ${ssl_args}
    fi
    mark_done "${ssl_stats_dir}/.done"
    fi
fi

if run_stage 11 || run_stage 12 || run_stage 13 || [ -n "${ssl_exp_file}" ]; then
    resolve_experiment
    [ -z "${ssl_exp_file}" ] || echo "${ssl_exp}" > "${ssl_exp_file}"
fi

if run_stage 11; then
    log "Stage 11: pre-train ${ssl_exp} (${ssl_config}; log: ${ssl_exp}/train.log)"
    if [ -f "${ssl_exp}/.done_train" ]; then
        log "  already done: ${ssl_exp} (same inputs: ${ssl_exp}/inputs.json)"
    else
    record_inputs ssl_exp
    _opts=()
    [ -n "${save_every_updates}" ] && _opts+=(--save_every_updates "${save_every_updates}")
    # shellcheck disable=SC2086
    train_model pre-training 11 "${ssl_exp}" "${ssl_config}" espnet_ext.bin.ssl_train \
        "${data_feats}/${train_set}" "${data_feats}/${valid_set}" "${ssl_stats_dir}" "${_opts[@]}" ${ssl_args}
    fi
fi

if run_stage 12; then
    log "Stage 12: export the backbone of ${ssl_exp}/latest.pth to ${ssl_exp}/backbone.pth"
    python3 -m espnet_ext.bin.export_backbone --config "${ssl_exp}/config.yaml" \
        --model "${ssl_exp}/latest.pth" --out "${ssl_exp}/backbone.pth"
    log "  checkpoints: $(find "${ssl_exp}/checkpoints" -name '*updates.pth' 2>/dev/null | wc -l) in ${ssl_exp}/checkpoints"
fi

if run_stage 13; then
    log "Stage 13: report of ${ssl_exp}: ${ssl_exp}/report.png, ${ssl_exp}/report.md"
    python3 -m espnet_ext.bin.ssl_report "${ssl_exp}"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
