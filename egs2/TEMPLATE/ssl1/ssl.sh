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
num_nodes=1             # nodes for training (slurm backend): one training over all of them
num_procs=1             # CPU training processes per node with --ngpu 0 (DDP over gloo)
dumpdir=dump
expdir=exp
local_data_opts=""      # options passed to local/data.sh

train_set=""            # audio to pre-train on (a data dir; text is not needed but by --exclude_texts_of)
valid_set=""            # validation audio (not needed with --valid_percent)
# Stage 2, the pre-training set (espnet_ext.data.pretrain_set; Mandarin-Wav2Vec2's AISHELL-2 set-up is
# --exclude_texts_of "data/dev data/test" --concat 6 --valid_percent 1). Off when all are off.
exclude_texts_of=""     # data dirs whose transcripts (white space ignored) are left out of train_set
concat=0                # join N consecutive utterances of a speaker into one (0: off)
concat_seconds=0        # or join as many as fit in S seconds (0: off)
concat_audio=files      # files: the joined audio written once to ${dumpdir}/concat; pipes: sox commands in wav.scp
valid_percent=0         # hold out a random P % of the (joined) train_set as the validation set (0: off)
valid_seed=0            # seed of that draw
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
  2  pre-training set, when one of its options is on: data/<train_set>_pt from data/<train_set>:
     utterances whose transcript is one of --exclude_texts_of's left out (listed in its excluded.txt),
     --concat N (or --concat_seconds S) consecutive utterances of a speaker joined (members.txt), and
     with --valid_percent P a random P % held out as data/<train_set>_pt_valid, the validation set
     (else data/<valid_set>, joined alike as data/<valid_set>_pt); the stages after it read these
  3  format: resample to --fs, dump audio to ${dumpdir}/raw
  4  filter by duration (--min_wav_duration, --max_wav_duration; listed in removed.txt)
  10 collect shapes
  11 pre-train (python -m espnet_ext.bin.ssl_train): exp/ssl_<tag>/checkpoints/<N>updates.pth
     every K updates, all kept, each loadable by the wav2vec2 frontend (frontend_conf: path)
  12 export the backbone alone: exp/ssl_<tag>/backbone.pth (weights + config, no heads)
  13 report: exp/ssl_<tag>/report.png (curves of L_m, L_d, perplexities, accuracy, similarities,
     learning rate) and report.md (start/end/best values, chance levels, collapse warnings)

Training on several processes (one DDP training): --ngpu N uses N GPUs of each node (a process per
GPU, NCCL); with --ngpu 0, --num_procs N runs N CPU processes (gloo); --num_nodes M spreads it over
M nodes through slurm (ESPNET_EXT_CMD_BACKEND=slurm: srun, one task per node). batch_bins is the
batch over all processes: their number changes how a batch is shared, not the updates.

Options (defaults in brackets):
  --stage ${stage} --stop_stage ${stop_stage} --nj ${nj} --ngpu ${ngpu} --num_nodes ${num_nodes} --num_procs ${num_procs}
  --train_set --valid_set --fs ${fs} --expected_fs "${expected_fs}"
  --exclude_texts_of "DIR ..." --concat ${concat} --concat_seconds ${concat_seconds} --concat_audio ${concat_audio} (files|pipes)
  --valid_percent ${valid_percent} --valid_seed ${valid_seed}
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
check_training_processes
stamp_cache=${expdir}/.stamp_cache.json  # hashes of the step inputs (step_done, keyed_dir)

is_on() {  # is_on NUMBER: whether a stage-2 option's number is not 0
    awk -v x="$1" 'BEGIN { exit !(x + 0 != 0) }'
}
[ -n "${train_set}" ] || die "--train_set is required"
[ -n "${valid_set}" ] || is_on "${valid_percent}" || die "--valid_set is required (or --valid_percent)"
case ${concat_audio} in files|pipes) ;; *) die "--concat_audio ${concat_audio}: expected files or pipes" ;; esac
[[ ${concat} =~ ^[0-9]+$ ]] || die "--concat ${concat}: expected a whole number (0: off)"
for _opt in concat_seconds valid_percent valid_seed; do
    [[ ${!_opt} =~ ^[0-9]+(\.[0-9]*)?$ ]] || die "--${_opt} ${!_opt}: expected a number (0: off)"
done
! is_on "${concat}" || ! is_on "${concat_seconds}" || die "--concat and --concat_seconds: expected one of them"
# The sets stages 3-13 read: train_set and valid_set, or what stage 2 derives from them.
ssl_train_set=${train_set}
ssl_valid_set=${valid_set}
joining=false
{ is_on "${concat}" || is_on "${concat_seconds}"; } && joining=true
if [ -n "${exclude_texts_of}" ] || ${joining} || is_on "${valid_percent}"; then
    ssl_train_set=${train_set}_pt
    if is_on "${valid_percent}"; then
        ssl_valid_set=${train_set}_pt_valid
    elif ${joining}; then
        ssl_valid_set=${valid_set}_pt
    fi
fi
[ -n "${ssl_config}" ] || die "--ssl_config is required"
[ -f "${ssl_config}" ] || die "--ssl_config ${ssl_config}: no such file"
[ -n "${ssl_tag}" ] || ssl_tag=$(basename "$(readlink -f "${ssl_config}")" .yaml)
ssl_exp=""  # named by its inputs when a stage needs it (resolve_experiment)
ssl_stats_dir=${expdir}/ssl_stats_${ssl_train_set}_${fs}  # shapes of the training (and validation) set
data_feats=${dumpdir}/raw
data_inputs=(--option "fs=${fs}")  # (espnet_ext.bin.stamp) the shapes', and with model_inputs the experiment's
for _pair in "train:${ssl_train_set}" "valid:${ssl_valid_set}"; do
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

pretrain_set() {  # pretrain_set SRC DST [OPTIONS...]: stage 2 for one set (espnet_ext.bin.pretrain_set),
    # skipped when DST/.done records the same inputs (SRC's lists, the reference transcripts, the options)
    local src=$1 dst=$2 ref inputs=()
    shift 2
    inputs=(--file "wav.scp=data/${src}/wav.scp" --file "utt2spk=data/${src}/utt2spk" --file "text=data/${src}/text")
    for ref in ${exclude_texts_of}; do inputs+=(--file "text_of_${ref//\//_}=${ref}/text"); done
    step_done "data/${dst}/.done" "${inputs[@]}" --option "options=$*" && return 0
    python3 -m espnet_ext.bin.pretrain_set "data/${src}" "data/${dst}" "$@"
    mark_done "data/${dst}/.done"
}

if run_stage 2 && [ "${ssl_train_set}" != "${train_set}" ]; then
    log "Stage 2: pre-training set data/${ssl_train_set} from data/${train_set}; validation set data/${ssl_valid_set}"
    _join=()  # the joining options, but the audio directory
    if is_on "${concat}"; then _join=(--concat "${concat}"); elif is_on "${concat_seconds}"; then _join=(--concat_seconds "${concat_seconds}"); fi
    ${joining} && _join+=(--concat_audio "${concat_audio}")
    _opts=("${_join[@]+"${_join[@]}"}")
    ${joining} && _opts+=(--audio_dir "${dumpdir}/concat/${train_set}")
    # shellcheck disable=SC2206  # one data dir per word
    [ -z "${exclude_texts_of}" ] || _opts+=(--exclude_texts_of ${exclude_texts_of})
    is_on "${valid_percent}" && _opts+=(--valid_dir "data/${ssl_valid_set}" --valid_percent "${valid_percent}" --seed "${valid_seed}")
    pretrain_set "${train_set}" "${ssl_train_set}" "${_opts[@]}"
    if [ "${ssl_valid_set}" = "${valid_set}_pt" ]; then  # the validation set, joined as the training set is
        pretrain_set "${valid_set}" "${ssl_valid_set}" "${_join[@]}" --audio_dir "${dumpdir}/concat/${valid_set}"
    fi
    log "  data/${ssl_train_set}: $(wc -l < "data/${ssl_train_set}/wav.scp") utterances, $(wc -l < "data/${ssl_train_set}/excluded.txt")" \
        "left out (listed in data/${ssl_train_set}/excluded.txt); data/${ssl_valid_set}: $(wc -l < "data/${ssl_valid_set}/wav.scp")"
fi

if run_stage 3; then
    log "Stage 3: format audio: ${fs} Hz ${audio_format} in ${data_feats}/org"
    format_sets "${ssl_train_set} ${ssl_valid_set}" "${ssl_train_set}" "${ssl_valid_set}"
fi

if run_stage 4; then
    log "Stage 4: filter by duration: ${min_wav_duration}-${max_wav_duration} s"
    for dset in $(unique_words "${ssl_train_set} ${ssl_valid_set}"); do
        filter_set "${data_feats}/org/${dset}" "${data_feats}/${dset}"
    done
fi

if run_stage 10; then
    log "Stage 10: collect shapes in ${ssl_stats_dir}"
    if ! step_done "${ssl_stats_dir}/.done" "${data_inputs[@]}"; then
    if [ -f "${data_feats}/${ssl_train_set}/utt2num_samples" ] && [ -f "${data_feats}/${ssl_valid_set}/utt2num_samples" ]; then
        # Pre-training has no feature statistics: its shape files are the samples per utterance
        # that stage 3 counted (what ESPnet's --collect_stats writes, without a pass over the audio).
        for pair in "train:${ssl_train_set}" "valid:${ssl_valid_set}"; do
            mkdir -p "${ssl_stats_dir}/${pair%%:*}"
            cp "${data_feats}/${pair#*:}/utt2num_samples" "${ssl_stats_dir}/${pair%%:*}/speech_shape"
        done
        log "  shapes from ${data_feats}/{${ssl_train_set},${ssl_valid_set}}/utt2num_samples"
    else
    # shellcheck disable=SC2086
    collect_stats espnet_ext.bin.ssl_train "${ssl_stats_dir}" "${nj}" "${data_feats}/${ssl_train_set}" \
        "${data_feats}/${ssl_valid_set}" "${ssl_config}" ${ssl_args}
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
        "${data_feats}/${ssl_train_set}" "${data_feats}/${ssl_valid_set}" "${ssl_stats_dir}" "${_opts[@]}" ${ssl_args}
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
