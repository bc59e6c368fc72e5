# shellcheck shell=bash
# Sourced by the stage drivers (egs2/TEMPLATE/*/): stage selection, errors, done markers, and the
# stage bodies the drivers share (data check, format, filter, statistics, training, split inference) and
# the one reader of a training config's normalize. Needs ${stage}, ${stop_stage}, ${skip_stages} and log()
# (local/log.sh); the functions that launch jobs read the driver's variables their comments name.
# shellcheck disable=SC2154  # those variables are the drivers'

run_stage() {  # run_stage N: whether stage N is selected
    [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ] && [[ " ${skip_stages} " != *" $1 "* ]]
}

die() {  # die MESSAGE: log it as an error and stop
    log "ERROR: $*"
    exit 1
}

# A step is skipped only when its marker records the inputs it would run with now
# (espnet_ext.bin.stamp: configs by content, files by SHA-256, options); a step whose inputs
# changed runs again, and the log says what changed. Drivers set ${stamp_cache} (a file of cached
# hashes, e.g. exp/.stamp_cache.json) before calling these.
stamp_tmp=$(mktemp -d "${TMPDIR:-/tmp}/stamps.XXXXXX")
# The training config's keys that a CTC frame count reads (espnet_ext.data.frames): the filter and
# BPE steps are keyed by these only, not re-run for an edited max_epoch or learning rate.
CTC_LENGTH_KEYS=frontend,frontend_conf,preencoder,encoder,encoder_conf,postencoder,postencoder_conf
trap 'rm -rf "${stamp_tmp}"' EXIT

step_done() {  # step_done MARKER INPUTS...: succeed (logging "already done") when MARKER records
    # INPUTS (--config/--file/--option NAME=..., see espnet_ext.bin.stamp); otherwise log why the
    # step runs, leave the current record in MARKER.next (mark_done) and fail
    local marker=$1 reason rc=0
    shift
    mkdir -p "$(dirname "${marker}")"
    reason=$(python3 -m espnet_ext.bin.stamp check "${marker}" --cache "${stamp_cache}" "$@") || rc=$?
    case ${rc} in
        0) log "  already done: $(dirname "${marker}") (same inputs; remove ${marker} to redo)"; return 0 ;;
        1) [ "${reason}" = "not done yet" ] || log "  $(dirname "${marker}"): inputs changed (${reason}): running again"
           return 1 ;;
        *) die "cannot check the inputs of $(dirname "${marker}")" ;;
    esac
}

mark_done() {  # mark_done MARKER: the step ended: MARKER records the inputs step_done found (by rename)
    mv -f "$1.next" "$1"
}

keyed_dir() {  # keyed_dir VAR BASE INPUTS...: set VAR to the directory of a result with INPUTS: BASE,
    # or BASE_<fingerprint> when BASE holds a result made with other inputs (logged). The record of
    # INPUTS is kept for record_inputs VAR.
    local var=$1 base=$2 out
    shift 2
    out=$(python3 -m espnet_ext.bin.stamp dir "${base}" --save "${stamp_tmp}/${var}.json" \
        --cache "${stamp_cache}" "$@") || die "cannot check the inputs of ${base}"
    [ "$(wc -l <<< "${out}")" -le 1 ] || log "  ${out#*$'\n'}"
    printf -v "${var}" '%s' "${out%%$'\n'*}"
}

record_inputs() {  # record_inputs VAR: write the record keyed_dir VAR made into ${VAR}/inputs.json
    local dir=${!1}
    mkdir -p "${dir}"
    cmp -s "${stamp_tmp}/$1.json" "${dir}/inputs.json" && return 0
    cp "${stamp_tmp}/$1.json" "${dir}/inputs.json.next"
    mv -f "${dir}/inputs.json.next" "${dir}/inputs.json"
}

unique_words() {  # unique_words "a b a c" -> a b c (sorted), for lists of data sets
    echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -u
}

check_data_dirs() {  # check_data_dirs [--no-text] DIR...: fix (drops listed in DIR/.backup/dropped.txt), validate
    local opt=()
    if [ "$1" = --no-text ]; then opt=(--no-text); shift; fi
    local dir
    for dir in "$@"; do
        python3 -m espnet_ext.bin.datadir fix "${dir}"
        python3 -m espnet_ext.bin.datadir validate "${opt[@]}" "${dir}"
    done
}

prepare_data() {  # prepare_data [--no-text] "SET...": stage 1: local/data.sh ${local_data_opts}, then
    # check_data_dirs [--no-text] on data/<set> of each distinct SET
    local opt=() dirs=() dset
    if [ "$1" = --no-text ]; then opt=(--no-text); shift; fi
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts}
    for dset in $(unique_words "$*"); do dirs+=("data/${dset}"); done
    check_data_dirs "${opt[@]+"${opt[@]}"}" "${dirs[@]}"
}

split_keys() {  # split_keys N PREFIX FILE: deal the lines of FILE into PREFIX.1.scp .. PREFIX.N.scp
    awk -v n="$1" -v p="$2" '{ print > (p "." ((NR-1)%n+1) ".scp") }' "$3"
}

config_normalize() {  # config_normalize CONFIG: "<normalize> [conf]": the training config's normalize
    # (ESPnet's default utterance_mvn when absent; null or none in any case -> none), then "conf" when
    # it sets normalize_conf. The only reader of these fields: asr.sh, cls.sh, compare_checkpoints.sh.
    python3 -c 'import sys, yaml
c = yaml.safe_load(open(sys.argv[1], encoding="utf-8")) or {}
value = str(c.get("normalize", "utterance_mvn") or "none")
print("none" if value.lower() in ("none", "null") else value, "conf" if c.get("normalize_conf") else "")' "$1"
}

last_checkpoint() {  # last_checkpoint PATH: PATH as an absolute name; an ssl1 exp dir (one with
    # checkpoints/) gives its last checkpoints/<N>updates.pth (by N); a Hugging Face model
    # directory (config.json) is taken as it is. Stops with a message naming PATH when there is none.
    local path=$1
    if [ -d "${path}" ] && [ ! -f "${path}/config.json" ]; then
        path=$(find "${path}/checkpoints" -name '*updates.pth' 2>/dev/null | sort -V | tail -n 1)
        [ -n "${path}" ] || die "--pretrained $1: no checkpoints/<N>updates.pth in it (nor a Hugging Face model's config.json)"
    fi
    [ -e "${path}" ] || die "--pretrained $1: no such file or directory"
    echo "$(cd "$(dirname "${path}")" && pwd)/$(basename "${path}")"
}

pretrained_tag() {  # pretrained_tag CONFIG CHECKPOINT: the experiment name of fine-tuning CONFIG from
    # CHECKPOINT: <config>_<ssl tag>_<N>updates for an ssl1 checkpoint (.../ssl_<ssl tag>/checkpoints/<N>updates.pth),
    # else <config>_<file or directory name>; the config named by the file a link such as
    # conf/train_asr.yaml points to (train_asr_w2v2_mini_ctc_train_ssl_w2v2_mini_1112updates)
    local config name
    config=$(basename "$(readlink -f "$1")" .yaml)
    if [[ "$2" == */checkpoints/*updates.pth ]]; then
        name=$(basename "$(dirname "$(dirname "$2")")")
        name=${name#ssl_}_$(basename "$2" .pth)
    else
        name=$(basename "$2"); name=${name%.*}
    fi
    echo "${config}_${name}"
}

collect_stats() {  # collect_stats MODULE STATS_DIR NJ TRAIN_DIR VALID_DIR CONFIG [OPTIONS...]
    # Shapes (and feature statistics) of TRAIN_DIR/VALID_DIR (their wav.scp, then OPTIONS' data) with
    # stats_jobs.
    local module=$1 stats_dir=$2 nj=$3 train_dir=$4 valid_dir=$5 config=$6
    shift 6
    stats_jobs "${module}" "${stats_dir}" "${nj}" "${train_dir}/wav.scp" "${valid_dir}/wav.scp" "${config}" \
        --train_data_path_and_name_and_type "${train_dir}/wav.scp,speech,sound" \
        --valid_data_path_and_name_and_type "${valid_dir}/wav.scp,speech,sound" "$@"
}

stats_jobs() {  # stats_jobs MODULE STATS_DIR NJ TRAIN_KEYS VALID_KEYS CONFIG [OPTIONS...]
    # `python -m MODULE --collect_stats true --config CONFIG OPTIONS` (OPTIONS name the data) over the
    # keys (first column) of TRAIN_KEYS and VALID_KEYS dealt into NJ jobs (${train_cmd}; no more
    # than VALID_KEYS has lines), aggregated into STATS_DIR/{train,valid}.
    local module=$1 stats_dir=$2 nj=$3 train_keys=$4 valid_keys=$5 config=$6
    shift 6
    local logdir=${stats_dir}/logdir n
    local valid_n
    valid_n=$(wc -l < "${valid_keys}")
    [ "${nj}" -le "${valid_n}" ] || nj=${valid_n}
    mkdir -p "${logdir}"
    split_keys "${nj}" "${logdir}/train" "${train_keys}"
    split_keys "${nj}" "${logdir}/valid" "${valid_keys}"
    # shellcheck disable=SC2086
    ${train_cmd} JOB=1:"${nj}" "${logdir}/stats.JOB.log" \
        python3 -m "${module}" --collect_stats true --use_preprocessor true \
            --train_shape_file "${logdir}/train.JOB.scp" --valid_shape_file "${logdir}/valid.JOB.scp" \
            --output_dir "${logdir}/stats.JOB" --config "${config}" "$@" \
        || die "collecting statistics failed: see ${logdir}/stats.*.log"
    local inputs=()
    for n in $(seq "${nj}"); do inputs+=(--input_dir "${logdir}/stats.${n}"); done
    python3 -m espnet2.bin.aggregate_stats_dirs "${inputs[@]}" --output_dir "${stats_dir}"
}

write_resume_script() {  # write_resume_script EXP_DIR DRIVER STAGE ARGS...: EXP_DIR/run.sh repeats STAGE.
    # Replaced by rename, never rewritten in place: bash may be running the old file (it reads a
    # script as it goes), and keeps reading the old one.
    local exp=$1 driver=$2 stage_n=$3
    shift 3
    {
        echo '#!/usr/bin/env bash'
        echo "# Generated by ${driver##*/}: resumes training with the same options (from checkpoint.pth)."
        echo '# The experiment is named by its inputs: with a changed config or option the driver trains'
        echo '# a new experiment beside this one (its log says which), and this one stays as it is.'
        printf 'cd %q\n' "${PWD}"
        # the thread count the recipe's run.sh set: the trained weights depend on it
        [ -z "${OMP_NUM_THREADS:-}" ] || printf 'export OMP_NUM_THREADS=%q\n' "${OMP_NUM_THREADS}"
        printf '%q ' "${driver}" "$@"
        printf -- '--stage %s --stop_stage %s "$@"\n' "${stage_n}" "${stage_n}"
    } > "${exp}/run.sh.next"
    chmod +x "${exp}/run.sh.next"
    mv -f "${exp}/run.sh.next" "${exp}/run.sh"
}

train_model() {  # train_model WHAT STAGE EXP CONFIG MODULE TRAIN_DIR VALID_DIR STATS_DIR [OPTIONS...]
    # launch_training of a speech model: reads the audio of TRAIN_DIR and VALID_DIR (wav.scp) with the
    # shapes of STATS_DIR/{train,valid}/speech_shape; OPTIONS follow (more data and shape files in the
    # same order, the user's options last).
    local what=$1 stage_n=$2 exp=$3 config=$4 module=$5 train_dir=$6 valid_dir=$7 stats_dir=$8
    shift 8
    launch_training "${what}" "${stage_n}" "${exp}" "${config}" "${module}" \
        --train_data_path_and_name_and_type "${train_dir}/wav.scp,speech,sound" \
        --train_shape_file "${stats_dir}/train/speech_shape" \
        --valid_data_path_and_name_and_type "${valid_dir}/wav.scp,speech,sound" \
        --valid_shape_file "${stats_dir}/valid/speech_shape" \
        --fold_length 80000 "$@"
}

check_training_processes() {  # the driver's --ngpu, --num_procs and --num_nodes (stops with a message
    # unless they are whole numbers, --num_procs and --num_nodes >= 1, --num_procs > 1 only on CPU
    # (--ngpu 0), --num_nodes > 1 not on cmd.sh's local backend). Training runs ${ngpu} processes
    # (one per GPU; NCCL) or ${num_procs} (CPU; gloo) on each of ${num_nodes} nodes, all in one DDP
    # process group (espnet_ext.espnet.distributed; batch_bins is the batch over all of them).
    local name
    for name in ngpu num_procs num_nodes; do
        [[ ${!name} =~ ^[0-9]+$ ]] || die "--${name} ${!name}: expected a whole number"
    done
    [ "${num_procs}" -ge 1 ] || die "--num_procs ${num_procs}: expected 1 or more CPU processes"
    [ "${num_nodes}" -ge 1 ] || die "--num_nodes ${num_nodes}: expected 1 or more nodes"
    [ "${num_procs}" -eq 1 ] || [ "${ngpu}" -eq 0 ] \
        || die "--num_procs ${num_procs} is for training on CPU (--ngpu 0); with GPUs, --ngpu ${ngpu} starts one process per GPU"
    [ "${num_nodes}" -eq 1 ] || [ "${cmd_backend:-}" != local ] \
        || die "--num_nodes ${num_nodes}: expected the slurm backend (ESPNET_EXT_CMD_BACKEND=slurm, see cmd.sh); the local backend runs one node"
}

launch_training() {  # launch_training WHAT STAGE EXP CONFIG MODULE [OPTIONS...]
    # The training stage: `python -m MODULE --config CONFIG OPTIONS` (OPTIONS name the data, then the
    # user's options) through ${cuda_cmd} (${ngpu} GPUs, or ${num_procs} CPU processes, on each of
    # ${num_nodes} nodes: one distributed training, see check_training_processes), log in
    # EXP/train.log, resuming from EXP's last checkpoint. EXP/run.sh repeats STAGE with the driver's
    # arguments (${driver_args[@]}). EXP/inputs.json must hold the record of the training's inputs
    # (keyed_dir, record_inputs); EXP/.done_train, a copy of it, marks the end (the caller skips a
    # finished training). A failure stops with "WHAT failed".
    local what=$1 stage_n=$2 exp=$3 config=$4 module=$5 rc=0 init=""
    shift 5
    [ -f "${exp}/inputs.json" ] || die "${exp}/inputs.json: no record of the training's inputs"
    write_resume_script "${exp}" "$0" "${stage_n}" "${driver_args[@]+"${driver_args[@]}"}"
    local dist=(--ngpu "${ngpu}" --num_procs "${num_procs:-1}" --multiprocessing_distributed true)
    if [ "${num_nodes}" -gt 1 ]; then
        # srun starts one task per node; ESPnet reads each one's node rank and the node count from
        # slurm's environment (--dist_launcher slurm), and all meet at a new file in the experiment
        # directory, which every node sees (ESPnet's launch.py does the same)
        init="$(cd "${exp}" && pwd)/.dist_init_$(date +%s)_$$_${RANDOM}"
        dist+=(--dist_launcher slurm --dist_init_method "file://${init}")
    fi
    # shellcheck disable=SC2086
    ${cuda_cmd} --gpu "${ngpu}" --num_nodes "${num_nodes}" "${exp}/train.log" \
        python3 -m "${module}" --use_preprocessor true --resume true "${dist[@]}" \
            --output_dir "${exp}" --config "${config}" "$@" || rc=$?
    [ -z "${init}" ] || rm -f "${init}"
    [ "${rc}" -eq 0 ] || die "${what} failed: see ${exp}/train.log"
    cp "${exp}/inputs.json" "${exp}/.done_train.next"
    mark_done "${exp}/.done_train"
}

split_inference() {  # split_inference WHAT MODULE DATA_DIR OUT_DIR RESULT_DIR "FILES" [OPTIONS...]
    # The inference stage for one set: DATA_DIR/wav.scp dealt into up to ${inference_nj} jobs of
    # `python -m MODULE --output_dir OUT_DIR/logdir/output.JOB OPTIONS` through ${decode_cmd} (one
    # GPU each when ${gpu_inference}), logs in OUT_DIR/logdir/<module>.JOB.log. Each of FILES that
    # the first job wrote (output.1/RESULT_DIR/<file>) is merged over the jobs, sorted by key, into
    # OUT_DIR/<file>. A failure stops with "WHAT failed".
    local what=$1 module=$2 data_dir=$3 out_dir=$4 result_dir=$5 files=$6
    shift 6
    local logdir=${out_dir}/logdir name=${module##*.} ngpu_job=0 n nj i f
    ${gpu_inference} && ngpu_job=1
    mkdir -p "${logdir}"
    n=$(wc -l < "${data_dir}/wav.scp")
    nj=$(( inference_nj < n ? inference_nj : n ))
    split_keys "${nj}" "${logdir}/keys" "${data_dir}/wav.scp"
    # shellcheck disable=SC2086
    ${decode_cmd} --gpu "${ngpu_job}" JOB=1:"${nj}" "${logdir}/${name}.JOB.log" \
        python3 -m "${module}" --ngpu "${ngpu_job}" \
            --data_path_and_name_and_type "${data_dir}/wav.scp,speech,sound" \
            --key_file "${logdir}/keys.JOB.scp" --output_dir "${logdir}/output.JOB" "$@" \
        || die "${what} failed: see ${logdir}/${name}.*.log"
    for f in ${files}; do
        [ -f "${logdir}/output.1/${result_dir}/${f}" ] || continue
        for i in $(seq "${nj}"); do cat "${logdir}/output.${i}/${result_dir}/${f}"; done \
            | LC_ALL=C sort -k1,1 > "${out_dir}/${f}"
    done
}

filter_set() {  # filter_set IN_DIR OUT_DIR [OPTIONS...]: the filter stage for one set: IN_DIR's utterances
    # of ${min_wav_duration}-${max_wav_duration} s (at ${fs} Hz) that OPTIONS keep (espnet_ext.bin.filter_data:
    # text, CTC feasibility), to OUT_DIR; the removed ones listed in OUT_DIR/removed.txt. Skipped when
    # OUT_DIR/.done records the same inputs (IN_DIR's lists, the options, the keys of --asr_config
    # that the CTC frame count reads).
    local in_dir=$1 out_dir=$2 inputs=() prev="" arg
    shift 2
    for arg in "$@"; do
        [ "${prev}" = --asr_config ] && inputs+=(--config "asr_config=${arg}@${CTC_LENGTH_KEYS}")
        prev=${arg}
    done
    step_done "${out_dir}/.done" "${inputs[@]+"${inputs[@]}"}" --file "wav.scp=${in_dir}/wav.scp" \
        --file "text=${in_dir}/text" --file "utt2num_samples=${in_dir}/utt2num_samples" \
        --option "options=--fs ${fs} --min_dur ${min_wav_duration} --max_dur ${max_wav_duration} $*" && return 0
    python3 -m espnet_ext.bin.filter_data "${in_dir}" "${out_dir}" \
        --fs "${fs}" --min_dur "${min_wav_duration}" --max_dur "${max_wav_duration}" "$@"
    mark_done "${out_dir}/.done"
}

pack_model() {  # pack_model TASK TRAIN_CONFIG MODEL_FILE ZIP [--NAME FILE]...: the packing stage:
    # `python -m espnet_ext.bin.pack TASK` (asr or cls) of the model and the files of ESPnet's pack
    # options (--option, --lm_train_config, --lm_file) into ZIP; skipped when ZIP.done records the
    # same model, config and files
    local task=$1 config=$2 model=$3 zip=$4 prefix i
    shift 4
    case ${task} in asr) prefix=asr ;; cls) prefix=classification ;; *) die "pack_model: unknown task '${task}'" ;; esac
    local inputs=(--file "model=${model}" --file "train_config=${config}")
    for ((i = 2; i <= $#; i += 2)); do inputs+=(--file "option${i}=${!i}"); done
    step_done "${zip}.done" "${inputs[@]}" && return 0
    python3 -m espnet_ext.bin.pack "${task}" "--${prefix}_train_config" "${config}" \
        "--${prefix}_model_file" "${model}" "$@" --outpath "${zip}"
    mark_done "${zip}.done"
    log "  $(du -h "${zip}" | cut -f1) ${zip}"
}

format_sets() {  # format_sets "TRAIN_LIKE_SETS" SET...: the "format" stage of each data/<set>
    # (resample to ${fs}, dump ${audio_format} audio; --expected_fs ${expected_fs} when set).
    # Sets named in TRAIN_LIKE_SETS go to ${data_feats}/org/<set> (a filter stage follows),
    # the others to ${data_feats}/<set>. A set whose output's .done records the same inputs (data/<set>'s
    # lists, the options) is skipped.
    local train_like=" $1 " dset out
    shift
    for dset in $(unique_words "$*"); do
        if [[ "${train_like}" == *" ${dset} "* ]]; then out=${data_feats}/org/${dset}; else out=${data_feats}/${dset}; fi
        step_done "${out}/.done" --file "wav.scp=data/${dset}/wav.scp" --file "segments=data/${dset}/segments" \
            --file "text=data/${dset}/text" --file "utt2spk=data/${dset}/utt2spk" \
            --option "options=--fs ${fs} --audio_format ${audio_format} --expected_fs ${expected_fs}" && continue
        python3 -m espnet_ext.bin.format_wav_scp "data/${dset}" "${out}" --fs "${fs}" --nj "${nj}" \
            --audio_format "${audio_format}" ${expected_fs:+--expected_fs "${expected_fs}"}
        mark_done "${out}/.done"
    done
}
