#!/usr/bin/env bash
# The shared ASR stage driver. Every <corpus>/asr1/run.sh sets corpus options and calls it.
# Stages follow ESPnet's asr.sh numbering; see --help. Safe to re-run: a finished step leaves a
# marker that records its inputs (config content, options, data, checkpoints) and is skipped only
# while they are the same; training resumes from its last checkpoint. Experiments and decodings
# that differ in their inputs never share a directory (see "Experiment names" in --help).

set -euo pipefail

# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
SECONDS=0

# General
stage=1                 # first stage to run
stop_stage=10000        # last stage to run
skip_stages=""          # e.g. "2 14"
nj=4                    # parallel jobs for data preparation and stats
inference_nj=4          # parallel decoding jobs
gpu_inference=false     # decode on GPU
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
fs=16000                # sampling rate after stage 3, Hz
audio_format=flac       # flac or wav, for the dumped audio
expected_fs=""          # comma-separated rates the corpus should have (others excluded); "" any
speed_perturb_factors=""  # e.g. "0.9 1.0 1.1"; stage 2 (optional)
min_wav_duration=0.1    # seconds; shorter training utterances are removed in stage 4
max_wav_duration=20     # seconds; longer training utterances are removed in stage 4

# Tokens
token_type=char         # char, bpe, word or phn
nbpe=30                 # BPE vocabulary size (token_type=bpe)
bpemode=unigram         # unigram or bpe
bpe_input_sentence_size=100000000
oov="<unk>"
blank="<blank>"
sos_eos="<sos/eos>"
nlsyms_txt=none         # file of non-linguistic symbols, one per line
cleaner=none

# Training
asr_config=""           # training YAML (conf/tuning/*.yaml)
asr_args=""             # extra options for espnet_ext.bin.asr_train
asr_tag=""              # experiment name (default: derived from the config, and --pretrained's checkpoint;
                        # a name already used by other inputs gets _<fingerprint>, see --help)
pretrained=""           # a wav2vec2 checkpoint for the frontend (e.g. an ssl1 checkpoints/<N>updates.pth,
                        # a fairseq .pt, a Hugging Face dir), or an ssl1 exp dir (its last checkpoint);
                        # "" keeps the config's frontend
asr_exp_file=""         # write the experiment's directory (as named by its inputs) into this file
asr_stats_dir=""
feats_normalize=config  # config (the training config's normalize), or global_mvn, utterance_mvn, none (wins over the config's)
average="last:10"       # last:N (the last N epochs) or best (ESPnet's best-N by criterion)

# Decoding and scoring
inference_config=""     # decoding YAML (conf/decode_*.yaml)
inference_args=""
inference_tag=""
inference_asr_model=""  # default: last<N>.ave.pth for average=last:N; for best, the average ESPnet
                        # writes for the config's best_model_criterion (valid.acc.ave.pth when it
                        # lists valid acc, else e.g. valid.loss.ave.pth for a CTC-only config)
score_metrics=""        # default by token type: char -> "cer wer", bpe -> "cer wer ter" (ter: token error
                        # rate on the BPE pieces, as ESPnet's), word -> wer, phn -> per
use_sclite=auto         # auto (when installed), yes or no
score_opts=""           # more options for espnet_ext.bin.score (e.g. "--fold_map conf/phones.60-48-39.map")

# Packing
packed_model=""         # default: exp/<asr_tag>/packed_model.zip

help_message=$(cat <<EOF
Usage: $0 --train_set <set> --valid_set <set> --test_sets "<sets>" --asr_config <yaml> [options]

Stages (ESPnet numbering):
  1  data: local/data.sh -> data/<set>/{wav.scp,text,utt2spk,spk2utt}
  2  speed perturbation of the training set (--speed_perturb_factors)
  3  format: resample to --fs, dump audio to ${dumpdir}/raw
  4  filter training sets: duration, empty text, CTC-infeasible (listed in removed.txt)
  5  token list (--token_type char|bpe|word|phn)
  10 collect shape and feature statistics
  11 train (python -m espnet_ext.bin.asr_train)
  12 decode test sets, side by side (--inference_nj jobs in all), averaging the last N epochs first
  13 score what was decoded (CER/WER/PER/TER, sclite-compatible result.txt; utterances of data/<set>
     left out before decoding listed in score_*/left_out.txt) and write RESULTS.md; then
     ${expdir}/RESULTS_experiments.md, every experiment's error rates with the settings that differ
     and which differences are significant (python -m espnet_ext.bin.show_results ${expdir})
  14 pack the model into a zip for espnet_model_zoo / Speech2Text

Experiment names: exp/asr_<tag> (the config's name, plus the pre-trained checkpoint's) holds the
inputs it was first trained with (exp/asr_<tag>/inputs.json). Trained again with other inputs (an
edited config, other --asr_args, data, tokens, checkpoint), the experiment goes to
exp/asr_<tag>_<fingerprint> beside it, and the log says what changed. Decodings likewise:
exp/asr_<tag>/decode_<inference config><inference args>_<model>[_<fingerprint>].

Training on several processes (one DDP training): --ngpu N uses N GPUs of each node (a process per
GPU, NCCL); with --ngpu 0, --num_procs N runs N CPU processes (gloo); --num_nodes M spreads it over
M nodes through slurm (ESPNET_EXT_CMD_BACKEND=slurm: srun, one task per node). batch_bins is the
batch over all processes: their number changes how a batch is shared, not the updates.

Options (defaults in brackets):
  --stage ${stage} --stop_stage ${stop_stage} --skip_stages "${skip_stages}"
  --nj ${nj} --inference_nj ${inference_nj} --ngpu ${ngpu} --num_nodes ${num_nodes} --num_procs ${num_procs}
  --train_set --valid_set --test_sets --fs ${fs} --expected_fs "${expected_fs}"
  --speed_perturb_factors "${speed_perturb_factors}"
  --min_wav_duration ${min_wav_duration} --max_wav_duration ${max_wav_duration} (seconds)
  --token_type ${token_type} --nbpe ${nbpe} --bpemode ${bpemode} --nlsyms_txt ${nlsyms_txt}
  --asr_config --asr_args --asr_tag --pretrained --asr_exp_file --feats_normalize ${feats_normalize}
  --average ${average} --inference_config --inference_args --inference_asr_model
  --score_metrics --use_sclite ${use_sclite} --score_opts --packed_model
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
[ -n "${asr_config}" ] || die "--asr_config is required"
[ -f "${asr_config}" ] || die "--asr_config ${asr_config}: no such file"

case "${average}" in
    last:[0-9]*) n_average=${average#last:} ;;
    best) n_average=0 ;;
    *) die "--average must be last:N or best, got '${average}'" ;;
esac
if [ -z "${inference_asr_model}" ]; then
    if [ "${n_average}" -gt 0 ]; then inference_asr_model=last${n_average}.ave.pth
    else inference_asr_model=$(python3 -m espnet_ext.bin.average --best_name "${asr_config}") \
        || die "cannot read best_model_criterion from ${asr_config}"; fi
fi
if [ -z "${score_metrics}" ]; then
    case "${token_type}" in
        char) score_metrics="cer wer" ;;
        bpe) score_metrics="cer wer ter" ;;
        word) score_metrics="wer" ;;
        phn) score_metrics="per" ;;
        *) die "--token_type must be char, bpe, word or phn, got '${token_type}'" ;;
    esac
fi
if [[ " ${score_metrics} " == *" ter "* ]] && [ "${token_type}" != bpe ]; then
    die "--score_metrics ter: the token error rate is on the BPE pieces; expected --token_type bpe, got '${token_type}'"
fi

# Names derived from the options
if [ -n "${speed_perturb_factors}" ]; then train_set_used=${train_set}_sp; else train_set_used=${train_set}; fi
token_listdir=data/token_list
if [ "${token_type}" = bpe ]; then
    bpedir=${token_listdir}/bpe_${bpemode}${nbpe}
    bpemodel=${bpedir}/bpe.model
    token_list=${bpedir}/tokens.txt
else
    bpemodel=none
    token_list=${token_listdir}/${token_type}/tokens.txt
fi
user_asr_args=${asr_args}  # an input of the experiment (the checkpoint's path below is not: its content is)
if [ -n "${pretrained}" ]; then
    # fine-tuning: the frontend's weights (and architecture) from the checkpoint, not the config's preset
    pretrained=$(last_checkpoint "${pretrained}")
    asr_args="--frontend_conf preset=null --frontend_conf path=${pretrained} ${asr_args}"
    [ -n "${asr_tag}" ] || asr_tag=$(pretrained_tag "${asr_config}" "${pretrained}")
    log "fine-tuning from ${pretrained} (${expdir}/asr_${asr_tag})"
fi
# the config named by the file a link such as conf/train_asr.yaml points to, as pretrained_tag does
[ -n "${asr_tag}" ] || asr_tag=$(basename "$(readlink -f "${asr_config}")" .yaml)_${token_type}
# --feats_normalize config takes the config's normalize; another value wins over it in stage 10
# (statistics), 11 (training: always passed as --normalize) and 14 (packing).
_normalize=$(config_normalize "${asr_config}")
read -r config_normalize config_normalize_conf <<< "${_normalize}"
case "${feats_normalize}" in
    config) feats_normalize=${config_normalize} ;;
    global_mvn|utterance_mvn|none) ;;
    *) die "--feats_normalize must be config, global_mvn, utterance_mvn or none, got '${feats_normalize}'" ;;
esac
if [ "${feats_normalize}" != "${config_normalize}" ]; then
    [ "${feats_normalize}" = none ] || [ -z "${config_normalize_conf}" ] \
        || die "--feats_normalize ${feats_normalize} disagrees with ${asr_config} (normalize: ${config_normalize}, with its normalize_conf): set normalize and normalize_conf in the config instead"
    log "--feats_normalize ${feats_normalize} overrides ${asr_config}'s normalize: ${config_normalize}"
fi
data_feats=${dumpdir}/raw
if [ -z "${inference_tag}" ]; then
    # ESPnet's: the decoding config's name and the inference options (--beam_size 10 -> _beam_size10)
    inference_tag=$(basename "${inference_config:-default}" .yaml); inference_tag=${inference_tag#decode_}
    inference_tag+=$(echo "${inference_args}" | sed -e 's/--/_/g' -e 's/[ |=/]//g')
fi
decode_base=decode_${inference_tag}_${inference_asr_model%.pth}
asr_exp=""; decode_dir=""; decode_tag=""  # named by their inputs when a stage needs them (resolve_*)
stats_keyed=false  # asr_stats_dir named by its inputs (global_mvn statistics)

nlsyms_opt=(); [ "${nlsyms_txt}" != none ] && nlsyms_opt=(--nlsyms "${nlsyms_txt}")

# The inputs of the steps from stage 10 on (espnet_ext.bin.stamp), read when those stages run:
# the data and tokens (shapes), plus for an experiment its config's content, options and checkpoint.
data_inputs=(--option "fs=${fs}" --option "token_type=${token_type}" --option "cleaner=${cleaner}"
             --file "token_list=${token_list}")
[ "${token_type}" = bpe ] && data_inputs+=(--file "bpemodel=${bpemodel}")
[ "${nlsyms_txt}" != none ] && data_inputs+=(--file "nlsyms=${nlsyms_txt}")
for _pair in "train:${train_set_used}" "valid:${valid_set}"; do
    for _f in wav.scp text utt2num_samples; do data_inputs+=(--file "${_pair%%:*}_${_f}=${data_feats}/${_pair#*:}/${_f}"); done
done
model_inputs=(--config "config=${asr_config}" --option "asr_args=${user_asr_args}"
              --option "feats_normalize=${feats_normalize}")
# global_mvn statistics: of the frontend's output (its config keys, the options, the checkpoint)
frontend_inputs=(--config "frontend=${asr_config}@frontend,frontend_conf,input_size" --option "asr_args=${user_asr_args}")
if [ -n "${pretrained}" ]; then
    model_inputs+=(--file "pretrained=${pretrained}"); frontend_inputs+=(--file "pretrained=${pretrained}")
fi

resolve_experiment() {  # asr_stats_dir, asr_exp and packed_model for the current inputs (stages 10-14)
    [ -z "${asr_exp}" ] || return 0
    if [ -z "${asr_stats_dir}" ]; then
        # Shapes depend only on the data: one directory for every experiment. Feature statistics
        # (global_mvn) depend on the frontend and its checkpoint too: a directory per such input.
        asr_stats_dir=${expdir}/asr_stats_${train_set_used}_${token_type}_${fs}
        if [ "${feats_normalize}" = global_mvn ]; then
            keyed_dir asr_stats_dir "${asr_stats_dir}_global_mvn" "${data_inputs[@]}" "${frontend_inputs[@]}"
            stats_keyed=true
        fi
    fi
    keyed_dir asr_exp "${expdir}/asr_${asr_tag}" "${data_inputs[@]}" "${model_inputs[@]}"
    [ -n "${packed_model}" ] || packed_model=${asr_exp}/packed_model.zip
}

resolve_decode_dir() {  # decode_tag (a dir of ${asr_exp}) for the model and decoding options
    [ -z "${decode_tag}" ] || return 0
    [ -f "${asr_exp}/${inference_asr_model}" ] \
        || die "${asr_exp}/${inference_asr_model}: no such model (train this experiment first: stage 11)"
    local inputs=(--file "model=${asr_exp}/${inference_asr_model}" --file "train_config=${asr_exp}/config.yaml"
                  --option "inference_args=${inference_args}")
    [ -n "${inference_config}" ] && inputs+=(--config "inference_config=${inference_config}")
    keyed_dir decode_dir "${asr_exp}/${decode_base}" "${inputs[@]}"
    decode_tag=$(basename "${decode_dir}")
}

tokenizer_opts=(--token_type "${token_type}" --token_list "${token_list}" --bpemodel "${bpemodel}"
                --non_linguistic_symbols "${nlsyms_txt}" --cleaner "${cleaner}" --g2p none)

# ---------------------------------------------------------------------------------------
if run_stage 1; then
    log "Stage 1: prepare data directories (local/data.sh ${local_data_opts})"
    # Utterances missing from a file or malformed are dropped and listed (data/<set>/.backup/dropped.txt).
    prepare_data "${train_set} ${valid_set} ${test_sets}"
fi

if run_stage 2 && [ -n "${speed_perturb_factors}" ]; then
    log "Stage 2: speed perturbation of data/${train_set}: ${speed_perturb_factors}"
    # shellcheck disable=SC2086
    python3 -m espnet_ext.bin.speed_perturb "data/${train_set}" "data/${train_set_used}" \
        --factors ${speed_perturb_factors}
fi

if run_stage 3; then
    log "Stage 3: format audio: ${fs} Hz ${audio_format} in ${data_feats}"
    format_sets "${train_set_used} ${valid_set}" "${train_set_used}" "${valid_set}" "${test_sets}"
fi

if run_stage 4; then
    # BPE pieces need the BPE model of stage 5: a word-level check here removes only
    # utterances infeasible for any subword unit; stage 5 repeats it with the BPE model.
    _ctc_unit=${token_type}; [ "${token_type}" = bpe ] && _ctc_unit=word
    log "Stage 4: filter ${train_set_used} ${valid_set}: ${min_wav_duration}-${max_wav_duration} s, empty text, CTC (${_ctc_unit})"
    for dset in $(unique_words "${train_set_used} ${valid_set}"); do
        out=${data_feats}/${dset}; [ "${token_type}" = bpe ] && out=${data_feats}/org/${dset}.filtered
        filter_set "${data_feats}/org/${dset}" "${out}" --token_type "${_ctc_unit}" "${nlsyms_opt[@]}" \
            --asr_config "${asr_config}"
    done
fi

if run_stage 5; then
    log "Stage 5: token list (${token_type}) from ${data_feats}/${train_set_used}/text"
    _inputs=(--option "options=${token_type} ${cleaner} ${oov} ${blank} ${sos_eos}")
    [ "${nlsyms_txt}" != none ] && _inputs+=(--file "nlsyms=${nlsyms_txt}")
    if [ "${token_type}" = bpe ]; then  # the BPE model, then the CTC check with it (stage 4's options)
        _inputs+=(--option "bpe=${bpemode} ${nbpe} ${bpe_input_sentence_size}"
                  --config "asr_config=${asr_config}@${CTC_LENGTH_KEYS}"
                  --option "durations=${fs} ${min_wav_duration} ${max_wav_duration}")
        for dset in $(unique_words "${train_set_used} ${valid_set}"); do
            _inputs+=(--file "${dset}_text=${data_feats}/org/${dset}.filtered/text"
                      --file "${dset}_wav.scp=${data_feats}/org/${dset}.filtered/wav.scp")
        done
    else
        _inputs+=(--file "train_text=${data_feats}/${train_set_used}/text")
    fi
    if ! step_done "$(dirname "${token_list}")/.done" "${_inputs[@]}"; then
    mkdir -p "$(dirname "${token_list}")"
    if [ "${token_type}" = bpe ]; then
        cut -d' ' -f2- "${data_feats}/org/${train_set_used}.filtered/text" > "${bpedir}/train_text"
        python3 -m espnet_ext.bin.spm_train --input="${bpedir}/train_text" --vocab_size="${nbpe}" \
            --model_type="${bpemode}" --model_prefix="${bpedir}/bpe" --character_coverage=1.0 \
            --input_sentence_size="${bpe_input_sentence_size}" --minloglevel=1
        for dset in ${train_set_used} ${valid_set}; do
            log "  CTC feasibility with the BPE model: ${data_feats}/${dset}"
            python3 -m espnet_ext.bin.filter_data "${data_feats}/org/${dset}.filtered" "${data_feats}/${dset}" \
                --fs "${fs}" --min_dur "${min_wav_duration}" --max_dur "${max_wav_duration}" \
                --token_type bpe --bpemodel "${bpemodel}" --asr_config "${asr_config}"
        done
    fi
    cut -d' ' -f2- "${data_feats}/${train_set_used}/text" > "$(dirname "${token_list}")/train_text"
    python3 -m espnet_ext.bin.tokenize_text --input "$(dirname "${token_list}")/train_text" \
        --output "${token_list}" --token_type "${token_type}" --bpemodel "${bpemodel}" \
        --non_linguistic_symbols "${nlsyms_txt}" --cleaner "${cleaner}" --g2p none \
        --write_vocabulary true --add_symbol "${blank}:0" --add_symbol "${oov}:1" \
        --add_symbol "${sos_eos}:-1"
    mark_done "$(dirname "${token_list}")/.done"
    fi
    log "  $(wc -l < "${token_list}") tokens in ${token_list}"
fi

if run_stage 10 || run_stage 11 || run_stage 12 || run_stage 13 || run_stage 14 || [ -n "${asr_exp_file}" ]; then
    resolve_experiment
    [ -z "${asr_exp_file}" ] || echo "${asr_exp}" > "${asr_exp_file}"
fi

if run_stage 10; then
    log "Stage 10: collect statistics in ${asr_stats_dir}"
    _inputs=("${data_inputs[@]}")
    [ "${feats_normalize}" = global_mvn ] && _inputs+=("${frontend_inputs[@]}")
    ${stats_keyed} && record_inputs asr_stats_dir  # (not for a --asr_stats_dir given)
    if ! step_done "${asr_stats_dir}/.done" "${_inputs[@]}"; then
    # shellcheck disable=SC2086
    collect_stats espnet_ext.bin.asr_train "${asr_stats_dir}" "${nj}" "${data_feats}/${train_set_used}" \
        "${data_feats}/${valid_set}" "${asr_config}" "${tokenizer_opts[@]}" \
        --train_data_path_and_name_and_type "${data_feats}/${train_set_used}/text,text,text" \
        --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/text,text,text" \
        --collect_feats_stats "$([ "${feats_normalize}" = global_mvn ] && echo true || echo false)" \
        --normalize none ${asr_args}
    for name in train valid; do
        awk -v N="$(wc -l < "${token_list}")" '{ print $0 "," N }' \
            "${asr_stats_dir}/${name}/text_shape" > "${asr_stats_dir}/${name}/text_shape.${token_type}"
    done
    mark_done "${asr_stats_dir}/.done"
    fi
fi

if run_stage 11; then
    log "Stage 11: train ${asr_exp} (${asr_config}; log: ${asr_exp}/train.log)"
    if [ -f "${asr_exp}/.done_train" ]; then
        log "  already done: ${asr_exp} (same inputs: ${asr_exp}/inputs.json)"
    else
    record_inputs asr_exp
    _opts=(--normalize "${feats_normalize}")  # the option wins over the config (none: no normalization)
    if [ "${feats_normalize}" = global_mvn ]; then
        _stats=${asr_stats_dir}/train/feats_stats.npz
        [ -f "${_stats}" ] || die "${_stats} not found (normalize: global_mvn): run stage 10 for this experiment (--stage 10)"
        _opts+=(--normalize_conf "stats_file=${_stats}")
    fi
    for _f in "${asr_stats_dir}"/{train,valid}/{speech_shape,"text_shape.${token_type}"}; do
        [ -f "${_f}" ] || die "${_f} not found: run stage 10 first (--stage 10)"
    done
    [ "${n_average}" -gt 0 ] && _opts+=(--keep_last_epochs "${n_average}")
    # shellcheck disable=SC2086
    train_model training 11 "${asr_exp}" "${asr_config}" espnet_ext.bin.asr_train \
        "${data_feats}/${train_set_used}" "${data_feats}/${valid_set}" "${asr_stats_dir}" "${tokenizer_opts[@]}" \
        --train_data_path_and_name_and_type "${data_feats}/${train_set_used}/text,text,text" \
        --train_shape_file "${asr_stats_dir}/train/text_shape.${token_type}" \
        --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/text,text,text" \
        --valid_shape_file "${asr_stats_dir}/valid/text_shape.${token_type}" \
        --fold_length 150 "${_opts[@]}" ${asr_args}
    fi
fi

if run_stage 12; then
    log "Stage 12: decode ${test_sets} with ${asr_exp}/${inference_asr_model}"
    if [ "${n_average}" -gt 0 ] && [ "${inference_asr_model}" = "last${n_average}.ave.pth" ] \
        && [ ! "${asr_exp}/${inference_asr_model}" -nt "${asr_exp}/.done_train" ]; then
        python3 -m espnet_ext.bin.average "${asr_exp}" --last "${n_average}"
    fi
    resolve_decode_dir
    record_inputs decode_dir
    decode_set() {  # decode_set SET NJ: SET decoded by NJ jobs into ${asr_exp}/${decode_tag}/SET
        local _dir=${asr_exp}/${decode_tag}/$1 inference_nj=$2
        # shellcheck disable=SC2086
        split_inference decoding espnet_ext.bin.asr_inference "${data_feats}/$1" "${_dir}" 1best_recog \
            "text token token_int score" --asr_train_config "${asr_exp}/config.yaml" \
            --asr_model_file "${asr_exp}/${inference_asr_model}" \
            ${inference_config:+--config "${inference_config}"} ${inference_args}
        log "  ${_dir}/text: $(wc -l < "${_dir}/text") hypotheses"
        mark_done "${_dir}/.done"
    }
    # The sets are decoded side by side, ${inference_nj} jobs in all (an equal share each, or one
    # set per job when there are more sets than jobs): a small set's decoding is mostly Python's
    # start-up (~20 s of 21 for the mini corpus's 32 utterances), which then overlaps.
    _todo=()
    for dset in ${test_sets}; do
        step_done "${asr_exp}/${decode_tag}/${dset}/.done" --file "inputs=${decode_dir}/inputs.json" \
            --file "wav.scp=${data_feats}/${dset}/wav.scp" || _todo+=("${dset}")
    done
    _nj=$(( ${#_todo[@]} > 0 ? inference_nj / ${#_todo[@]} : 1 )); [ "${_nj}" -ge 1 ] || _nj=1
    _running=0; _failed=0
    for dset in "${_todo[@]+"${_todo[@]}"}"; do
        if [ "${_running}" -ge "${inference_nj}" ]; then wait -n || _failed=1; _running=$(( _running - 1 )); fi
        decode_set "${dset}" "${_nj}" &
        _running=$(( _running + 1 ))
    done
    while [ "${_running}" -gt 0 ]; do wait -n || _failed=1; _running=$(( _running - 1 )); done
    [ "${_failed}" = 0 ] || die "decoding failed: see the messages above"
fi

if run_stage 13; then
    resolve_decode_dir
    log "Stage 13: score ${test_sets} (${score_metrics}) in ${asr_exp}/${decode_tag}"
    _scored=false
    for dset in ${test_sets}; do
        _dir=${asr_exp}/${decode_tag}/${dset}
        for metric in ${score_metrics}; do
            _bpe=()  # ter: reference and hypothesis texts in the pieces of the BPE model (ESPnet's ter)
            case ${metric} in cer) unit=char ;; wer) unit=word ;; per) unit=phn ;;
                ter) unit=bpe; _bpe=(--bpemodel "${bpemodel}") ;;
                *) die "unknown metric ${metric} (cer, wer, per or ter)" ;; esac
            _inputs=(--option "options=${unit} ${use_sclite} ${score_opts}" --file "hyp=${_dir}/text"
                     --file "ref=${data_feats}/${dset}/text" --file "source_ref=data/${dset}/text")
            [ "${unit}" = bpe ] && _inputs+=(--file "bpemodel=${bpemodel}")
            for _f in "${data_feats}/org/${dset}/excluded.txt" "${data_feats}/${dset}/excluded.txt" \
                "${data_feats}/${dset}/removed.txt" ${nlsyms_opt[1]:+"${nlsyms_opt[1]}"}; do
                _inputs+=(--file "${_f//\//_}=${_f}")
            done
            step_done "${_dir}/score_${metric}/.done" "${_inputs[@]}" && continue
            # the reference is what was decoded; data/<set>'s other utterances are listed as left out
            # shellcheck disable=SC2086
            python3 -m espnet_ext.bin.score --ref "${data_feats}/${dset}/text" --hyp "${_dir}/text" \
                --unit "${unit}" --out_dir "${_dir}/score_${metric}" --sclite "${use_sclite}" \
                --source_ref "data/${dset}/text" \
                --left_out_reasons "${data_feats}/org/${dset}/excluded.txt" \
                --left_out_reasons "${data_feats}/${dset}/excluded.txt" \
                --left_out_reasons "${data_feats}/${dset}/removed.txt" \
                "${nlsyms_opt[@]}" "${_bpe[@]+"${_bpe[@]}"}" ${score_opts}
            mark_done "${_dir}/score_${metric}/.done"
            _scored=true
        done
    done
    # RESULTS.md: every scored decoding of the experiment (with the date it was written)
    if ${_scored} || [ ! -f "${asr_exp}/RESULTS.md" ]; then
        python3 -m espnet_ext.bin.score collect "${asr_exp}" --out "${asr_exp}/RESULTS.md"
    fi
    cat "${asr_exp}/RESULTS.md"
    # every experiment of the recipe, with the settings that differ and which differences are real
    if python3 -m espnet_ext.bin.show_results "${expdir}" --out "${expdir}/RESULTS_experiments.md" > /dev/null; then
        log "  all experiments compared: ${expdir}/RESULTS_experiments.md"
    else
        log "  WARNING: the table of all experiments failed (python -m espnet_ext.bin.show_results ${expdir})"
    fi
fi

if run_stage 14; then
    log "Stage 14: pack ${asr_exp}/${inference_asr_model} into ${packed_model}"
    _opts=()
    [ "${feats_normalize}" = global_mvn ] && _opts+=(--option "${asr_stats_dir}/train/feats_stats.npz")
    [ "${token_type}" = bpe ] && _opts+=(--option "${bpemodel}")
    [ -f "${asr_exp}/RESULTS.md" ] && _opts+=(--option "${asr_exp}/RESULTS.md")
    [ -f "${asr_exp}/images/acc.png" ] && _opts+=(--option "${asr_exp}/images/acc.png")
    pack_model asr "${asr_exp}/config.yaml" "${asr_exp}/${inference_asr_model}" "${packed_model}" \
        "${_opts[@]+"${_opts[@]}"}"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
