#!/usr/bin/env bash
# The shared classification driver (one label per utterance, e.g. emotion). Every
# <corpus>/cls1/run.sh sets corpus options and calls it. Stages follow ESPnet's cls.sh
# numbering; see --help. Safe to re-run: a finished step leaves a marker that records its inputs
# and is skipped only while they are the same; training resumes from its last checkpoint.

set -euo pipefail

# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
SECONDS=0

# General
stage=1                 # first stage to run
stop_stage=10000        # last stage to run
skip_stages=""          # e.g. "7 8"
nj=4                    # parallel jobs for data preparation and stats
inference_nj=4          # parallel inference jobs
gpu_inference=false     # classify on GPU
ngpu=0                  # GPUs for training (0: CPU)
num_nodes=1             # nodes for training (slurm backend): one training over all of them
num_procs=1             # CPU training processes per node with --ngpu 0 (DDP over gloo)
dumpdir=dump
expdir=exp
local_data_opts=""      # options passed to local/data.sh

# Data
train_set=""
valid_set=""
test_sets=""
fs=16000                # sampling rate after stage 2, Hz
audio_format=flac       # flac or wav, for the dumped audio
expected_fs=""          # comma-separated rates the corpus should have (others excluded); "" any
min_wav_duration=0.1    # seconds; shorter training/validation utterances are removed in stage 3
max_wav_duration=20     # seconds; longer ones too
classes=""              # space-separated class labels in output order; "" = sorted training labels

# Training
cls_config=""           # training YAML (conf/tuning/*.yaml)
cls_args=""             # extra options for espnet_ext.bin.cls_train
cls_tag=""              # experiment name (default: the config's name)
cls_stats_dir=""

# Inference and scoring
inference_model=valid.acc.ave.pth  # model file in exp/cls_<tag>/ (ESPnet's average of the best epochs)
packed_model=""         # default: exp/cls_<tag>/packed_model.zip
inference_args=""       # extra options for espnet_ext.bin.cls_inference
inference_tag=""        # default: inference_<model name>

help_message=$(cat <<EOF
Usage: $0 --train_set <set> --valid_set <set> --test_sets "<sets>" --cls_config <yaml> [options]

Stages (ESPnet's cls.sh numbering):
  1  data: local/data.sh -> data/<set>/{wav.scp,text,utt2spk,spk2utt}; text = one class label
  2  format: resample to --fs, dump audio to ${dumpdir}/raw (unreadable audio listed in excluded.txt)
  3  filter the training and validation sets by duration and empty labels (listed in removed.txt)
  4  label list (data/token_list/labels.txt; --classes), and a check of every set's labels
  5  collect shapes and feature statistics
  6  train (python -m espnet_ext.bin.cls_train)
  7  classify the test sets with exp/cls_<tag>/--inference_model
  8  score: accuracy, macro-F1, confusion matrix (Markdown, PNG) -> exp/cls_<tag>/RESULTS.md
  9  pack the model into a zip that loads on another machine (python -m espnet_ext.bin.pack cls)

Training on several processes (one DDP training): --ngpu N uses N GPUs of each node (a process per
GPU, NCCL); with --ngpu 0, --num_procs N runs N CPU processes (gloo); --num_nodes M spreads it over
M nodes through slurm (ESPNET_EXT_CMD_BACKEND=slurm: srun, one task per node). batch_bins is the
batch over all processes: their number changes how a batch is shared, not the updates.

Options (defaults in brackets):
  --stage ${stage} --stop_stage ${stop_stage} --skip_stages "${skip_stages}"
  --nj ${nj} --inference_nj ${inference_nj} --ngpu ${ngpu} --num_nodes ${num_nodes} --num_procs ${num_procs}
  --train_set --valid_set --test_sets --fs ${fs} --expected_fs "${expected_fs}"
  --min_wav_duration ${min_wav_duration} --max_wav_duration ${max_wav_duration} (seconds)
  --classes "${classes}" --cls_config --cls_args --cls_tag --cls_stats_dir
  --inference_model ${inference_model} --inference_args --inference_tag --gpu_inference ${gpu_inference}
  --packed_model
EOF
)

driver_args=("$@")  # for the generated exp/<tag>/run.sh (train_model)
# shellcheck source=SCRIPTDIR/../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"
# shellcheck disable=SC1091
. ./cmd.sh
# shellcheck source=SCRIPTDIR/../../../local/stage_lib.sh
. "${ESPNET_EXT_ROOT}/local/stage_lib.sh"
check_training_processes
stamp_cache=${expdir}/.stamp_cache.json  # hashes of the step inputs (step_done, keyed_dir)

[ -n "${train_set}" ] || die "--train_set is required"
[ -n "${valid_set}" ] || die "--valid_set is required"
[ -n "${test_sets}" ] || die "--test_sets is required"
[ -n "${cls_config}" ] || die "--cls_config is required"
[ -f "${cls_config}" ] || die "--cls_config ${cls_config}: no such file"

# Names derived from the options
[ -n "${cls_tag}" ] || cls_tag=$(basename "$(readlink -f "${cls_config}")" .yaml)
[ -n "${cls_stats_dir}" ] || cls_stats_dir=${expdir}/cls_stats_${train_set}_${fs}
[ -n "${inference_tag}" ] || inference_tag=inference$(echo "${inference_args}" | sed -e 's/--/_/g' -e 's/[ |=/]//g')_${inference_model%.pth}
label_list=data/token_list/labels.txt
cls_exp=""; inference_dir=""  # named by their inputs when a stage needs them (resolve_*)
data_feats=${dumpdir}/raw
label_opts=(--token_list "${label_list}" --token_type word --frontend_conf "fs=${fs}")

# The inputs of the steps from stage 5 on (espnet_ext.bin.stamp): the data and labels (shapes), plus
# for an experiment its config's content and options. An experiment trained with other inputs than
# exp/cls_<tag>'s goes to exp/cls_<tag>_<fingerprint> (logged); inference dirs likewise.
data_inputs=(--option "fs=${fs}" --file "labels=${label_list}")
for _pair in "train:${train_set}" "valid:${valid_set}"; do
    for _f in wav.scp text utt2num_samples; do data_inputs+=(--file "${_pair%%:*}_${_f}=${data_feats}/${_pair#*:}/${_f}"); done
done
model_inputs=(--config "config=${cls_config}" --option "cls_args=${cls_args}")
resolve_experiment() {  # cls_exp for the current inputs (stages 6-8)
    [ -z "${cls_exp}" ] || return 0
    keyed_dir cls_exp "${expdir}/cls_${cls_tag}" "${data_inputs[@]}" "${model_inputs[@]}"
}
resolve_inference_dir() {  # inference_dir and inference_tag (a dir of ${cls_exp}) for the model and options
    [ -z "${inference_dir}" ] || return 0
    keyed_dir inference_dir "${cls_exp}/${inference_tag}" --file "model=${cls_exp}/${inference_model}" \
        --file "train_config=${cls_exp}/config.yaml" --option "inference_args=${inference_args}"
    inference_tag=$(basename "${inference_dir}")
}

# ---------------------------------------------------------------------------------------
if run_stage 1; then
    log "Stage 1: prepare data directories (local/data.sh ${local_data_opts})"
    # Utterances missing from a file or malformed are dropped and listed (data/<set>/.backup/dropped.txt).
    prepare_data "${train_set} ${valid_set} ${test_sets}"
fi

if run_stage 2; then
    log "Stage 2: format audio: ${fs} Hz ${audio_format} in ${data_feats}"
    format_sets "${train_set} ${valid_set}" "${train_set}" "${valid_set}" "${test_sets}"
fi

if run_stage 3; then
    # A label is one word; the config gives the model's frame count: every kept utterance
    # yields at least one frame to pool over.
    log "Stage 3: filter ${train_set} ${valid_set}: ${min_wav_duration}-${max_wav_duration} s, empty labels"
    for dset in $(unique_words "${train_set} ${valid_set}"); do
        filter_set "${data_feats}/org/${dset}" "${data_feats}/${dset}" --token_type word --asr_config "${cls_config}"
    done
fi

if run_stage 4; then
    log "Stage 4: label list ${label_list} from ${data_feats}/${train_set}/text${classes:+ (--classes ${classes})}"
    _checks=()
    for dset in $(unique_words "${valid_set} ${test_sets}"); do _checks+=(--check "${data_feats}/${dset}/text"); done
    python3 -m espnet_ext.bin.cls_labels --text "${data_feats}/${train_set}/text" --out "${label_list}" \
        --classes "${classes}" "${_checks[@]}" || die "stage 4: bad labels (see the message above)"
fi

if run_stage 5; then
    log "Stage 5: collect shapes and statistics in ${cls_stats_dir}"
    _inputs=("${data_inputs[@]}")
    _normalize=$(config_normalize "${cls_config}")  # feature statistics for global_mvn only
    [ "${_normalize%% *}" = global_mvn ] && _inputs+=("${model_inputs[@]}")
    if ! step_done "${cls_stats_dir}/.done" "${_inputs[@]}"; then
    # shellcheck disable=SC2086
    collect_stats espnet_ext.bin.cls_train "${cls_stats_dir}" "${nj}" "${data_feats}/${train_set}" \
        "${data_feats}/${valid_set}" "${cls_config}" "${label_opts[@]}" \
        --train_data_path_and_name_and_type "${data_feats}/${train_set}/text,label,text" \
        --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/text,label,text" \
        --collect_feats_stats "$([ "${_normalize%% *}" = global_mvn ] && echo true || echo false)" ${cls_args}
    mark_done "${cls_stats_dir}/.done"
    fi
fi

if run_stage 6 || run_stage 7 || run_stage 8 || run_stage 9; then
    resolve_experiment
fi

if run_stage 6; then
    log "Stage 6: train ${cls_exp} (${cls_config}; log: ${cls_exp}/train.log)"
    if [ -f "${cls_exp}/.done_train" ]; then
        log "  already done: ${cls_exp} (same inputs: ${cls_exp}/inputs.json)"
    else
    record_inputs cls_exp
    # shellcheck disable=SC2086
    train_model training 6 "${cls_exp}" "${cls_config}" espnet_ext.bin.cls_train \
        "${data_feats}/${train_set}" "${data_feats}/${valid_set}" "${cls_stats_dir}" "${label_opts[@]}" \
        --train_data_path_and_name_and_type "${data_feats}/${train_set}/text,label,text" \
        --train_shape_file "${cls_stats_dir}/train/label_shape" \
        --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/text,label,text" \
        --valid_shape_file "${cls_stats_dir}/valid/label_shape" \
        --fold_length 1 ${cls_args}
    fi
fi

if run_stage 7; then
    log "Stage 7: classify ${test_sets} with ${cls_exp}/${inference_model}"
    [ -f "${cls_exp}/${inference_model}" ] || die "${cls_exp}/${inference_model}: no such model (stage 6 writes it)"
    resolve_inference_dir
    record_inputs inference_dir
    for dset in ${test_sets}; do
        _dir=${cls_exp}/${inference_tag}/${dset}
        step_done "${_dir}/.done" --file "inputs=${inference_dir}/inputs.json" \
            --file "wav.scp=${data_feats}/${dset}/wav.scp" && continue
        # shellcheck disable=SC2086
        split_inference inference espnet_ext.bin.cls_inference "${data_feats}/${dset}" "${_dir}" prediction \
            "text score" --num_workers 0 --classification_train_config "${cls_exp}/config.yaml" \
            --classification_model_file "${cls_exp}/${inference_model}" \
            --output_all_probabilities true ${inference_args}
        log "  ${_dir}/text: $(wc -l < "${_dir}/text") predictions"
        mark_done "${_dir}/.done"
    done
fi

if run_stage 8; then
    resolve_inference_dir
    log "Stage 8: score ${test_sets} (accuracy, macro-F1, confusion matrix) in ${inference_dir}"
    _scored=false
    for dset in ${test_sets}; do
        _dir=${cls_exp}/${inference_tag}/${dset}
        step_done "${_dir}/scoring/.done" --file "hyp=${_dir}/text" --file "ref=data/${dset}/text" \
            --file "labels=${label_list}" && continue
        # References from data/<set>: an utterance excluded in stage 2 counts as not predicted.
        python3 -m espnet_ext.bin.cls_score --ref "data/${dset}/text" --hyp "${_dir}/text" \
            --labels "${label_list}" --out_dir "${_dir}/scoring" --name "${dset}"
        mark_done "${_dir}/scoring/.done"
        _scored=true
    done
    # RESULTS.md: every scored inference of the experiment (with the date it was written)
    if ${_scored} || [ ! -f "${cls_exp}/RESULTS.md" ]; then
        python3 -m espnet_ext.bin.cls_score collect "${cls_exp}" --out "${cls_exp}/RESULTS.md"
    fi
    cat "${cls_exp}/RESULTS.md"
fi

if run_stage 9; then
    [ -n "${packed_model}" ] || packed_model=${cls_exp}/packed_model.zip
    log "Stage 9: pack ${cls_exp}/${inference_model} into ${packed_model}"
    [ -f "${cls_exp}/${inference_model}" ] || die "${cls_exp}/${inference_model}: no such model (train this experiment first: stage 6)"
    _opts=()
    _normalize=$(config_normalize "${cls_config}")
    [ "${_normalize%% *}" = global_mvn ] && _opts+=(--option "${cls_stats_dir}/train/feats_stats.npz")
    [ -f "${cls_exp}/RESULTS.md" ] && _opts+=(--option "${cls_exp}/RESULTS.md")
    pack_model cls "${cls_exp}/config.yaml" "${cls_exp}/${inference_model}" "${packed_model}" \
        "${_opts[@]+"${_opts[@]}"}"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
