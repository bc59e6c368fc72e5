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
skip_data_prep=false    # true: skip stages 1-5 (ESPnet's option)
skip_train=false        # true: skip stages 6-11, the LM and ASR training (ESPnet's option)
skip_eval=false         # true: skip stages 12-13, decoding and scoring (ESPnet's option)
skip_packing=false      # true: skip stage 14 (ESPnet's default is true; the recipes here pack)
skip_upload=true        # ESPnet's upload stages: not available offline (false is logged and ignored)
skip_upload_hf=true     # likewise for the Hugging Face upload
# shellcheck disable=SC2034  # read by no stage: ESPnet's Hugging Face repository for the upload
hf_repo=""              # (accepted and ignored, as above)
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

feats_type=raw          # ESPnet's option; raw audio only (the model's frontend makes the features)

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

# Language model (stages 6-9; shallow fusion in stage 12)
use_lm=false            # train an LM (stages 6-8) and decode with it (stage 12). ESPnet's default is
                        # true; false here keeps every recipe's CTC decoding (greedy) as it is
lm_config=""            # LM training YAML (conf/train_lm.yaml: lm: transformer or seq_rnn)
lm_args=""              # extra options for espnet_ext.bin.lm_train (e.g. "--max_epoch 10")
lm_tag=""               # LM experiment name (default: the config's name and the token type; a name
                        # already used by other inputs gets _<fingerprint>, as the ASR experiments)
lm_exp=""               # the LM experiment's directory, used as it is (e.g. an LM trained elsewhere)
lm_stats_dir=""         # default: ${expdir}/lm_stats_<token type>
lm_train_text=""        # Kaldi-style text files (<id> <sentence>), space separated (default: the ASR
                        # training set's transcripts, ${data_feats}/<train set>/text); extra text may be added
lm_dev_text=""          # LM validation text (default: ${data_feats}/<valid set>/text)
lm_test_text=""         # stage 8's perplexity (default: the first test set's text)
lm_fold_length=150      # fold_length of the LM's text batches
use_word_lm=false       # ESPnet's option; only false (a word LM: --token_type word)
use_ngram=false         # estimate an n-gram of the LM text (stage 9) and decode with it (stage 12)
ngram_num=3             # the n-gram's order
ngram_exp=""            # default: ${expdir}/ngram (named by its inputs like the experiments)
inference_lm=""         # the LM model file decoded with (default: the average ESPnet writes for
                        # the LM config's best_model_criterion: valid.loss.ave.pth)
inference_ngram=""      # the n-gram file decoded with (default: <ngram_num>gram.arpa)

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
decode_dir_file=""      # write the decoding's directory (stages 12-13, as named by its inputs) into this file

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
  6  LM text (--lm_train_text files, empty sentences left out: ${dumpdir}/raw/lm_train.txt) and, with
     --use_lm true, its shapes (--lm_stats_dir)
  7  LM training with --use_lm true (python -m espnet_ext.bin.lm_train --config --lm_config:
     ESPnet's LMTask, lm: transformer or seq_rnn on the ASR token list)
  8  LM perplexity of --lm_test_text (ESPnet's lm_calc_perplexity): <lm_exp>/perplexity_test/ppl
  9  n-gram with --use_ngram true: the LM text as ASR tokens (<ngram_exp>/train.tokens), then
     python -m espnet_ext.bin.ngram_train --order --ngram_num: <ngram_exp>/<N>gram.arpa
  10 collect shape and feature statistics
  11 train (python -m espnet_ext.bin.asr_train)
  12 decode test sets, side by side (--inference_nj jobs in all), averaging the last N epochs first;
     with --use_lm/--use_ngram true, shallow fusion (ESPnet's asr_inference --lm_train_config
     --lm_file --ngram_file; a beam-search config such as conf/decode_ctc_lm.yaml: a greedy
     decoding config with an LM is an error)
  13 score what was decoded (CER/WER/PER/TER, sclite-compatible result.txt; utterances of data/<set>
     left out before decoding listed in score_*/left_out.txt) and write RESULTS.md; then
     ${expdir}/RESULTS_experiments.md, every experiment's error rates with the settings that differ
     and which differences are significant (python -m espnet_ext.bin.show_results ${expdir})
  14 pack the model into a zip for espnet_model_zoo / Speech2Text (with --use_lm true, the LM too)

Experiment names: exp/asr_<tag> (the config's name, plus the pre-trained checkpoint's) holds the
inputs it was first trained with (exp/asr_<tag>/inputs.json). Trained again with other inputs (an
edited config, other --asr_args, data, tokens, checkpoint), the experiment goes to
exp/asr_<tag>_<fingerprint> beside it, and the log says what changed. Decodings likewise:
exp/asr_<tag>/decode_<inference config><inference args>_<model>[_<fingerprint>]; with an LM
decode_<inference config><other args>_<lm dir>_<LM model>_lmw<lm_weight>[_ngram<N>w<ngram_weight>]_pen<penalty>_<model>
(the weights as decoded: --inference_args over the config over ESPnet's defaults), keyed by the LM
and n-gram files too. LMs: exp/lm_<tag> (the LM config's name and the token type), keyed by the
config, --lm_args, the LM text and the tokens; n-grams: exp/ngram, keyed by the text and tokens.

ESPnet's --skip_data_prep, --skip_train, --skip_eval and --skip_packing skip stages 1-5, 6-11,
12-13 and 14; its upload stages do not exist here (--skip_upload false is logged, nothing is
uploaded). An option of ESPnet's asr.sh that this driver does not have is an error naming it.

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
  --skip_data_prep ${skip_data_prep} --skip_train ${skip_train} --skip_eval ${skip_eval} --skip_packing ${skip_packing}
  --skip_upload ${skip_upload} --skip_upload_hf ${skip_upload_hf} --hf_repo --feats_type ${feats_type}
  --asr_config --asr_args --asr_tag --pretrained --asr_exp_file --feats_normalize ${feats_normalize}
  --average ${average} --inference_config --inference_args --inference_asr_model
  --use_lm ${use_lm} (ESPnet's default is true: false keeps every recipe's LM-less CTC decoding as it is)
  --lm_config --lm_args --lm_tag --lm_exp --lm_stats_dir --lm_fold_length ${lm_fold_length}
  --lm_train_text --lm_dev_text --lm_test_text --inference_lm (default from the LM config: valid.loss.ave.pth)
  --use_ngram ${use_ngram} --ngram_num ${ngram_num} --ngram_exp --inference_ngram (default <ngram_num>gram.arpa)
  --score_metrics --use_sclite ${use_sclite} --score_opts --packed_model --decode_dir_file
EOF
)

unknown_option_hint() {  # parse_options.sh: what an option of ESPnet's asr.sh that this driver lacks is here
    local espnet="an option of ESPnet's asr.sh that this driver does not have"
    case $1 in
        asr_exp) echo "${espnet}: the experiment is named by its inputs; --asr_tag names it (${expdir}/asr_<tag>)" ;;
        pretrained_model|ignore_init_mismatch)
            echo "${espnet}: --asr_args \"--init_param <file> --ignore_init_mismatch true\" is ESPnet's initialisation; --pretrained loads a wav2vec 2.0 checkpoint into the frontend" ;;
        python) echo "${espnet}: the venv's python3 runs every step (path.sh)" ;;
        eval_valid_set) echo "${espnet}: list the valid set in --test_sets" ;;
        batch_size) echo "${espnet}: batch_size is a key of the greedy decoding config (conf/decode_ctc_greedy.yaml)" ;;
        download_model) echo "${espnet}: nothing is downloaded here; a packed model loads with espnet_model_zoo's unpack_local_file" ;;
        use_k2|k2_ctc_decoding|k2_config|use_nbest_rescoring|num_paths|nll_batch_size|use_streaming|use_maskctc)
            echo "${espnet}: decoding is CTC greedy or ESPnet's beam search (--inference_config)" ;;
        lang|g2p|bpe_train_text|bpe_nlsyms|bpe_char_cover|hyp_cleaner|word_vocab_size|num_splits_asr|num_splits_lm|\
        asr_speech_fold_length|asr_text_fold_length|local_score_opts|asr_task|debug|use_lightning|num_ref|num_inf|sot_asr|\
        use_prompt|use_lang_prompt|use_nlp_prompt|post_process_local_data_opts|auxiliary_data_tags|\
        multi_columns_input_wav_scp|multi_columns_output_wav_scp|hugging_face_model_name_or_path)
            echo "${espnet}" ;;
    esac
}
driver_args=("$@")  # for the generated exp/<tag>/run.sh (train_model)
# shellcheck source=SCRIPTDIR/../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"
# shellcheck disable=SC1091
. ./cmd.sh

# shellcheck source=SCRIPTDIR/../../../local/stage_lib.sh
. "${ESPNET_EXT_ROOT}/local/stage_lib.sh"
check_training_processes
stamp_cache=${expdir}/.stamp_cache.json  # hashes of the step inputs (step_done, keyed_dir)

for _opt in skip_data_prep skip_train skip_eval skip_packing skip_upload skip_upload_hf use_lm use_ngram use_word_lm; do
    case "${!_opt}" in true|false) ;; *) die "--${_opt} must be true or false, got '${!_opt}'" ;; esac
done
# ESPnet's stage groups, as stages skipped
${skip_data_prep} && skip_stages+=" 1 2 3 4 5"
${skip_train} && skip_stages+=" 6 7 8 9 10 11"
${skip_eval} && skip_stages+=" 12 13"
${skip_packing} && skip_stages+=" 14"
if ! ${skip_upload} || ! ${skip_upload_hf}; then
    log "--skip_upload/--skip_upload_hf false: uploading (ESPnet's stages 15-16) is not possible offline; nothing is uploaded (the packed model: stage 14)"
fi
[ "${feats_type}" = raw ] || die "--feats_type ${feats_type}: only raw (the model's frontend computes the features)"
${use_word_lm} && die "--use_word_lm true: no word LM on other tokens here (nor in ESPnet's asr.sh); --token_type word makes the LM a word LM"
[[ "${ngram_num}" =~ ^[1-9][0-9]*$ ]] || die "--ngram_num must be a positive integer, got '${ngram_num}'"
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
inference_tag_given=${inference_tag}  # with an LM or n-gram, the default name carries them (fusion_tag)
if [ -z "${inference_tag}" ]; then
    # ESPnet's: the decoding config's name and the inference options (--beam_size 10 -> _beam_size10)
    inference_tag=$(basename "${inference_config:-default}" .yaml); inference_tag=${inference_tag#decode_}
    inference_tag+=$(echo "${inference_args}" | sed -e 's/--/_/g' -e 's/[ |=/]//g')
fi
asr_exp=""; decode_dir=""; decode_tag=""  # named by their inputs when a stage needs them (resolve_*)

# Language model and n-gram (stages 6-9, 12): the text, names and inputs
[ -n "${lm_train_text}" ] || lm_train_text=${data_feats}/${train_set_used}/text
[ -n "${lm_dev_text}" ] || lm_dev_text=${data_feats}/${valid_set}/text
[ -n "${lm_test_text}" ] || lm_test_text=${data_feats}/${test_sets%% *}/text
[ -n "${inference_ngram}" ] || inference_ngram=${ngram_num}gram.arpa
lm_train_txt=${data_feats}/lm_train.txt  # the --lm_train_text files in one (stage 6; ESPnet's name)
lm_units=${token_type}; [ "${token_type}" = bpe ] && lm_units=bpe${nbpe}
[ -n "${lm_stats_dir}" ] || lm_stats_dir=${expdir}/lm_stats_${lm_units}
if ${use_lm}; then
    [ -n "${lm_config}" ] || [ -n "${lm_exp}" ] \
        || die "--use_lm true needs --lm_config (e.g. conf/train_lm.yaml) or --lm_exp (a trained LM's directory)"
    [ -z "${lm_config}" ] || [ -f "${lm_config}" ] || die "--lm_config ${lm_config}: no such file"
    [ -n "${lm_tag}" ] || lm_tag=$(basename "$(readlink -f "${lm_config:-lm}")" .yaml)_${token_type}
    if [ -z "${inference_lm}" ]; then
        if [ -n "${lm_config}" ]; then inference_lm=$(python3 -m espnet_ext.bin.average --best_name "${lm_config}") \
            || die "cannot read best_model_criterion from ${lm_config}"
        else inference_lm=valid.loss.ave.pth; fi
    fi
fi
# the LM text as the ASR tokens read it: the inputs of the LM's shapes and training, and of the n-gram
lm_text_inputs=(--option "token_type=${token_type}" --option "cleaner=${cleaner}" --file "token_list=${token_list}"
                --file "train_text=${lm_train_txt}")
[ "${token_type}" = bpe ] && lm_text_inputs+=(--file "bpemodel=${bpemodel}")
[ "${nlsyms_txt}" != none ] && lm_text_inputs+=(--file "nlsyms=${nlsyms_txt}")
lm_inputs=("${lm_text_inputs[@]}" --file "dev_text=${lm_dev_text}" --config "config=${lm_config}"
           --option "lm_args=${lm_args}")  # an LM experiment's (with --lm_config)
if { ${use_lm} || ${use_ngram}; } && run_stage 12 && [ -n "${inference_config}" ]; then
    # the greedy decoder (espnet_ext.bin.asr_inference) scores no LM: an error, not an LM-less decoding
    _decoding=$(python3 -c 'import sys, yaml; print((yaml.safe_load(open(sys.argv[1])) or {}).get("decoding", ""))' \
        "${inference_config}") || die "cannot read ${inference_config}"
    [ "${_decoding}" != ctc_greedy ] || die "--inference_config ${inference_config} decodes greedily (decoding: ctc_greedy), which takes no LM or n-gram: give a beam-search config (conf/decode_ctc_lm.yaml) or --use_lm false --use_ngram false"
fi
lm_exp_given=${lm_exp}; ngram_exp_given=${ngram_exp}  # used as they are; else named by their inputs (resolve_*)

resolve_lm() {  # lm_exp: --lm_exp as given, else ${expdir}/lm_<tag> named by its inputs (stages 7-8, 12-13)
    [ -z "${lm_exp}" ] || return 0
    [ -f "${lm_train_txt}" ] || die "${lm_train_txt} not found: run stage 6 first (--stage 6 --use_lm true)"
    keyed_dir lm_exp "${expdir}/lm_${lm_tag}" "${lm_inputs[@]}"
}

resolve_ngram() {  # ngram_exp: --ngram_exp as given, else ${expdir}/ngram named by its inputs (stages 9, 12-13)
    [ -z "${ngram_exp}" ] || return 0
    [ -f "${lm_train_txt}" ] || die "${lm_train_txt} not found: run stage 6 first (--stage 6 --use_ngram true)"
    keyed_dir ngram_exp "${expdir}/ngram" "${lm_text_inputs[@]}"
}

fusion_tag() {  # fusion_tag LM_PART NGRAM_PART: a decoding's name with an LM or n-gram: the config's name,
    # the other --inference_args, then LM_PART_lmw<lm_weight>, NGRAM_PART w<ngram_weight>, _pen<penalty>:
    # the weights as asr_inference takes them (--inference_args over the config over ESPnet's defaults)
    # shellcheck disable=SC2086
    python3 - "${inference_config}" "$1" "$2" ${inference_args} <<'EOF'
import re
import sys

import yaml

config, lm, ngram, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
values = {"lm_weight": 1.0, "ngram_weight": 0.9, "penalty": 0.0}  # espnet2.bin.asr_inference's defaults
if config:
    with open(config, encoding="utf-8") as f:
        values.update({k: v for k, v in (yaml.safe_load(f) or {}).items() if k in values})
rest, i = [], 0
while i < len(args):
    name, eq, value = args[i].partition("=")
    key = name[2:].replace("-", "_")
    if name.startswith("--") and key in values:
        if not eq:
            i += 1
            value = args[i] if i < len(args) else ""
        values[key] = value
    else:
        rest.append(args[i])
    i += 1
for key, value in values.items():
    try:
        values[key] = repr(float(value))
    except (TypeError, ValueError):
        sys.exit(f"{key}: expected a number (--inference_args or {config or 'the decoding config'}), got {value!r}")
tag = re.sub(r"\.yaml$", "", config.rsplit("/", 1)[-1]) if config else "default"
tag = tag.removeprefix("decode_") + re.sub(r"[ |=/]", "", " ".join(rest).replace("--", "_"))
if lm:
    tag += f"{lm}_lmw{values['lm_weight']}"
if ngram:
    tag += f"{ngram}w{values['ngram_weight']}"
print(f"{tag}_pen{values['penalty']}")
EOF
}
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

resolve_decode_dir() {  # decode_tag (a dir of ${asr_exp}) for the model, decoding options, LM and n-gram
    [ -z "${decode_tag}" ] || return 0
    [ -f "${asr_exp}/${inference_asr_model}" ] \
        || die "${asr_exp}/${inference_asr_model}: no such model (train this experiment first: stage 11)"
    local inputs=(--file "model=${asr_exp}/${inference_asr_model}" --file "train_config=${asr_exp}/config.yaml"
                  --option "inference_args=${inference_args}") tag=${inference_tag} lm_part="" ngram_part="" name
    [ -n "${inference_config}" ] && inputs+=(--config "inference_config=${inference_config}")
    fusion_opts=()  # asr_inference's options for shallow fusion (stage 12)
    if ${use_lm}; then
        resolve_lm
        [ -f "${lm_exp}/${inference_lm}" ] \
            || die "${lm_exp}/${inference_lm}: no such LM (train it first: stage 7; --inference_lm names another file)"
        fusion_opts+=(--lm_train_config "${lm_exp}/config.yaml" --lm_file "${lm_exp}/${inference_lm}")
        inputs+=(--file "lm_model=${lm_exp}/${inference_lm}" --file "lm_train_config=${lm_exp}/config.yaml")
        name=${inference_lm//\//_}; lm_part=_$(basename "${lm_exp}")_${name%.pth}
    fi
    if ${use_ngram}; then
        resolve_ngram
        [ -f "${ngram_exp}/${inference_ngram}" ] \
            || die "${ngram_exp}/${inference_ngram}: no such n-gram (estimate it first: stage 9; --inference_ngram names another file)"
        fusion_opts+=(--ngram_file "${ngram_exp}/${inference_ngram}")
        inputs+=(--file "ngram=${ngram_exp}/${inference_ngram}")
        name=${inference_ngram//\//_}; name=${name%.*}
        if [[ "${name}" =~ ^([0-9]+)gram$ ]]; then ngram_part=_ngram${BASH_REMATCH[1]}; else ngram_part=_ngram_${name}; fi
    fi
    if { ${use_lm} || ${use_ngram}; } && [ -z "${inference_tag_given}" ]; then
        tag=$(fusion_tag "${lm_part}" "${ngram_part}") || die "cannot name the decoding (see the message above)"
    fi
    keyed_dir decode_dir "${asr_exp}/decode_${tag}_${inference_asr_model%.pth}" "${inputs[@]}"
    decode_tag=$(basename "${decode_dir}")
    [ -z "${decode_dir_file}" ] || echo "${decode_dir}" > "${decode_dir_file}"
}

tokenizer_opts=(--token_type "${token_type}" --token_list "${token_list}" --bpemodel "${bpemodel}"
                --non_linguistic_symbols "${nlsyms_txt}" --cleaner "${cleaner}" --g2p none)
# ESPnet's LMTask tokenizes bpe, char or word: phone transcripts (phones separated by spaces) as words
lm_tokenizer_opts=("${tokenizer_opts[@]}"); [ "${token_type}" = phn ] && lm_tokenizer_opts[1]=word

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

make_lm_text() {  # stage 6's LM text: the --lm_train_text files' sentences in ${lm_train_txt}, empty ones left out
    local f inputs=() n=0
    for f in ${lm_train_text}; do
        [ -f "${f}" ] || die "--lm_train_text: ${f}: no such file (Kaldi-style text: <id> <sentence>)"
        n=$((n + 1)); inputs+=(--file "text${n}=${f}")
    done
    [ "${n}" -gt 0 ] || die "--lm_train_text: no file given"
    step_done "${lm_train_txt}.done" "${inputs[@]}" && return 0
    # shellcheck disable=SC2086
    awk 'NF > 1 { if (seen[$1]++) { printf "%s: utterance id %s given before\n", FILENAME, $1 > "/dev/stderr"; exit 1 }
                  print }' ${lm_train_text} > "${lm_train_txt}.tmp" \
        || die "--lm_train_text: the files' utterance ids must be unique (see the message above)"
    mv -f "${lm_train_txt}.tmp" "${lm_train_txt}"
    mark_done "${lm_train_txt}.done"
    log "  ${lm_train_txt}: $(wc -l < "${lm_train_txt}") sentences of ${lm_train_text}"
}

if run_stage 6 && { ${use_lm} || ${use_ngram}; }; then
    log "Stage 6: LM text ${lm_train_txt} (${lm_train_text})$(${use_lm} && echo "; shapes with ${lm_dev_text} in ${lm_stats_dir}")"
    make_lm_text
    if ${use_lm}; then
        [ -f "${lm_dev_text}" ] || die "--lm_dev_text ${lm_dev_text}: no such file"
        [ -n "${lm_config}" ] || die "stage 6: --lm_config is required (the LM's statistics and training)"
        if ! step_done "${lm_stats_dir}/.done" "${lm_text_inputs[@]}" --file "dev_text=${lm_dev_text}" \
            --option "lm_args=${lm_args}"; then
        # shellcheck disable=SC2086
        stats_jobs espnet_ext.bin.lm_train "${lm_stats_dir}" "${nj}" "${lm_train_txt}" "${lm_dev_text}" \
            "${lm_config}" "${lm_tokenizer_opts[@]}" \
            --train_data_path_and_name_and_type "${lm_train_txt},text,text" \
            --valid_data_path_and_name_and_type "${lm_dev_text},text,text" ${lm_args}
        for name in train valid; do
            awk -v N="$(wc -l < "${token_list}")" '{ print $0 "," N }' \
                "${lm_stats_dir}/${name}/text_shape" > "${lm_stats_dir}/${name}/text_shape.${token_type}"
        done
        mark_done "${lm_stats_dir}/.done"
        fi
    fi
fi

if run_stage 7 && ${use_lm}; then
    resolve_lm
    log "Stage 7: train the LM ${lm_exp} (${lm_config}; log: ${lm_exp}/train.log)"
    if [ -f "${lm_exp}/.done_train" ]; then
        log "  already done: ${lm_exp} ($([ -n "${lm_exp_given}" ] && echo "--lm_exp, used as it is" || echo "same inputs: ${lm_exp}/inputs.json"))"
    else
        [ -n "${lm_config}" ] || die "stage 7: --lm_config is required to train an LM in ${lm_exp}"
        if [ -n "${lm_exp_given}" ]; then  # the record of its inputs, for launch_training (the name stays)
            mkdir -p "${lm_exp}"
            python3 -m espnet_ext.bin.stamp dir "${lm_exp}" --save "${lm_exp}/inputs.json" --cache "${stamp_cache}" \
                "${lm_inputs[@]}" > /dev/null || die "cannot record the inputs of ${lm_exp}"
        else
            record_inputs lm_exp
        fi
        for _f in "${lm_stats_dir}"/{train,valid}/"text_shape.${token_type}"; do
            [ -f "${_f}" ] || die "${_f} not found: run stage 6 first (--stage 6)"
        done
        # shellcheck disable=SC2086
        launch_training "LM training" 7 "${lm_exp}" "${lm_config}" espnet_ext.bin.lm_train "${lm_tokenizer_opts[@]}" \
            --train_data_path_and_name_and_type "${lm_train_txt},text,text" \
            --train_shape_file "${lm_stats_dir}/train/text_shape.${token_type}" \
            --valid_data_path_and_name_and_type "${lm_dev_text},text,text" \
            --valid_shape_file "${lm_stats_dir}/valid/text_shape.${token_type}" \
            --fold_length "${lm_fold_length}" ${lm_args}
    fi
fi

if run_stage 8 && ${use_lm}; then
    resolve_lm
    _dir=${lm_exp}/perplexity_test
    log "Stage 8: perplexity of ${lm_exp}/${inference_lm} on ${lm_test_text} (${_dir})"
    [ -f "${lm_exp}/${inference_lm}" ] \
        || die "${lm_exp}/${inference_lm}: no such LM (train it first: stage 7; --inference_lm names another file)"
    [ -f "${lm_test_text}" ] || die "--lm_test_text ${lm_test_text}: no such file"
    if ! step_done "${_dir}/.done" --file "model=${lm_exp}/${inference_lm}" \
        --file "train_config=${lm_exp}/config.yaml" --file "text=${lm_test_text}"; then
        ${cuda_cmd} --gpu "$(( ngpu > 0 ? 1 : 0 ))" "${_dir}/lm_calc_perplexity.log" \
            python3 -m espnet2.bin.lm_calc_perplexity --ngpu "$(( ngpu > 0 ? 1 : 0 ))" \
                --data_path_and_name_and_type "${lm_test_text},text,text" \
                --train_config "${lm_exp}/config.yaml" --model_file "${lm_exp}/${inference_lm}" \
                --output_dir "${_dir}" \
            || die "the perplexity failed: see ${_dir}/lm_calc_perplexity.log"
        mark_done "${_dir}/.done"
    fi
    log "  PPL: ${lm_test_text}: $(cat "${_dir}/ppl")"
fi

if run_stage 9 && ${use_ngram}; then
    make_lm_text
    resolve_ngram
    log "Stage 9: ${ngram_num}-gram of ${lm_train_txt} as ${token_type} tokens: ${ngram_exp}/${ngram_num}gram.arpa"
    [ -n "${ngram_exp_given}" ] || record_inputs ngram_exp
    if ! step_done "${ngram_exp}/train.tokens.done" "${lm_text_inputs[@]}"; then
        # a sentence per line, its tokens (the ASR token list's: <space> between char words) separated by spaces
        python3 -m espnet_ext.bin.tokenize_text --input "${lm_train_txt}" --output "${ngram_exp}/train.tokens.tmp" \
            --field 2- --token_type "${token_type}" --bpemodel "${bpemodel}" \
            --non_linguistic_symbols "${nlsyms_txt}" --cleaner "${cleaner}" --g2p none
        mv -f "${ngram_exp}/train.tokens.tmp" "${ngram_exp}/train.tokens"
        mark_done "${ngram_exp}/train.tokens.done"
    fi
    if ! step_done "${ngram_exp}/${ngram_num}gram.arpa.done" --file "tokens=${ngram_exp}/train.tokens" \
        --file "token_list=${token_list}" --option "order=${ngram_num}"; then
        python3 -m espnet_ext.bin.ngram_train --order "${ngram_num}" --out "${ngram_exp}/${ngram_num}gram.arpa" \
            --vocab "${token_list}" "${ngram_exp}/train.tokens" \
            || die "the n-gram estimation failed (python -m espnet_ext.bin.ngram_train)"
        mark_done "${ngram_exp}/${ngram_num}gram.arpa.done"
    fi
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
    [ "${#fusion_opts[@]}" -eq 0 ] || log "  shallow fusion: ${fusion_opts[*]} (${decode_dir})"
    decode_set() {  # decode_set SET NJ: SET decoded by NJ jobs into ${asr_exp}/${decode_tag}/SET
        local _dir=${asr_exp}/${decode_tag}/$1 inference_nj=$2
        # shellcheck disable=SC2086
        split_inference decoding espnet_ext.bin.asr_inference "${data_feats}/$1" "${_dir}" 1best_recog \
            "text token token_int score" --asr_train_config "${asr_exp}/config.yaml" \
            --asr_model_file "${asr_exp}/${inference_asr_model}" "${fusion_opts[@]+"${fusion_opts[@]}"}" \
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
    if ${use_lm}; then  # ESPnet's: the LM goes into the zip too (Speech2Text's lm_train_config, lm_file)
        resolve_lm
        [ -f "${lm_exp}/${inference_lm}" ] || die "${lm_exp}/${inference_lm}: no such LM (train it first: stage 7)"
        log "  with the LM ${lm_exp}/${inference_lm}"
        _opts+=(--lm_train_config "${lm_exp}/config.yaml" --lm_file "${lm_exp}/${inference_lm}")
        [ -f "${lm_exp}/perplexity_test/ppl" ] && _opts+=(--option "${lm_exp}/perplexity_test/ppl")
    fi
    pack_model asr "${asr_exp}/config.yaml" "${asr_exp}/${inference_asr_model}" "${packed_model}" \
        "${_opts[@]+"${_opts[@]}"}"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
