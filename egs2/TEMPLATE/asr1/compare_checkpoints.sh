#!/usr/bin/env bash
# Fine-tune one config from each of several pre-training checkpoints, decode and score each, then
# tabulate and plot the error rates against pre-training updates (RESULTS_checkpoints.{md,png}).
# Run it in an asr1 recipe dir, beside run.sh: every option it does not know goes to run.sh.
# Resumable: each fine-tuning is run.sh's, named by its inputs (the config's content, the options,
# the checkpoint's content): a finished one is skipped, an interrupted one resumes, one with changed
# inputs runs again beside the old. A checkpoint fine-tuned before by run.sh --pretrained (make demo's)
# is the same experiment and is not trained again.

set -euo pipefail

# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
SECONDS=0

checkpoints=""          # checkpoint files, globs or Hugging Face dirs, space separated (quote the list)
asr_config=""           # fine-tuning YAML with frontend: wav2vec2 (its path/preset is set per checkpoint)
asr_args=""             # extra options for espnet_ext.bin.asr_train, the same for every checkpoint
nj_ckpt=1               # checkpoints fine-tuned at the same time (background jobs)
skip_data=false         # true: do not run stages 1-5 (check that they were done)
results=RESULTS_checkpoints  # the table and plot: ${results}.md and ${results}.png
metric=""               # cer, wer or per: picks the best row, plotted (default: per, else cer, else wer)
decode_tag=""           # decode dir to read scores from (default: each experiment's newest)
random_init=false       # true: a row for the config's own preset at random initialisation (0 updates)
run_sh=./run.sh         # the recipe's run.sh: corpus options, stages
expdir=exp              # passed on to run.sh
feats_normalize=config  # passed on (config: the config's normalize); global_mvn: statistics per checkpoint

help_message=$(cat <<EOF
Usage: $0 --checkpoints "<files, globs or dirs>" --asr_config <yaml> [options] [run.sh options]

For each checkpoint (in order of pre-training updates; foreign ones last): ${run_sh} stages
11-13 (fine-tune, average, decode, score) with --pretrained <checkpoint>, in the experiment
run.sh names (${expdir}/asr_<config>_<checkpoint>, and a fingerprint when those inputs changed);
stages 1-5 (data) and 10 (shapes) run once before. With --random_init true, also the config's own
preset from random initialisation (the 0-update row). Then ${results}.md (a row per checkpoint, a
column per test set and metric, the best row and those not significantly worse marked) and
${results}.png (error rate against updates; foreign checkpoints as reference lines).
Logs: ${expdir}/compare_<config>/log/; ${expdir}/compare_<config>/exps/ links each row to its experiment.
A finished fine-tuning is skipped by run.sh (same inputs), so a second run only scores again.

Options (defaults in brackets):
  --checkpoints "<list>"   e.g. "exp/ssl_x/checkpoints/*updates.pth /models/wav2vec_small.pt"
                           (this project's own, fairseq .pt, Hugging Face dirs)
  --asr_config <yaml>      e.g. conf/tuning/train_asr_w2v2_base_ctc.yaml (path: or preset: in it is replaced)
  --asr_args "${asr_args}"  --nj_ckpt ${nj_ckpt}  --skip_data ${skip_data}  --results ${results}
  --metric "${metric}"  --decode_tag "${decode_tag}"  --random_init ${random_init}  --run_sh ${run_sh}
  --expdir ${expdir}
  --feats_normalize ${feats_normalize}
  any other option of ${run_sh} (e.g. --ngpu 1 --inference_nj 8 --average last:10), except
  --stage, --stop_stage, --skip_stages, --asr_tag, --asr_stats_dir, --pretrained and --asr_exp_file,
  which this script sets.
EOF
)

# Our options are parsed; every other one is run.sh's (passed on, in passed_options).
own_options="checkpoints asr_config asr_args nj_ckpt skip_data results metric decode_tag random_init run_sh expdir feats_normalize"
refused_options="stage stop_stage skip_stages asr_tag asr_stats_dir pretrained asr_exp_file"  # set here for each run.sh call
# shellcheck source=SCRIPTDIR/../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"
[ $# -eq 0 ] || { echo "$0: unexpected argument '$1' (options are --name value; see --help)" >&2; exit 1; }
# shellcheck source=SCRIPTDIR/../../../local/stage_lib.sh
. "${ESPNET_EXT_ROOT}/local/stage_lib.sh"  # die, is_done, config_normalize

[ -n "${checkpoints}" ] || die "--checkpoints is required (see --help)"
[ -n "${asr_config}" ] || die "--asr_config is required (see --help)"
[ -f "${asr_config}" ] || die "--asr_config ${asr_config}: no such file"
[ -x "${run_sh}" ] || die "--run_sh ${run_sh}: not an executable file (run this script in the recipe dir)"
[[ "${nj_ckpt}" =~ ^[1-9][0-9]*$ ]] || die "--nj_ckpt must be a positive integer, got '${nj_ckpt}'"
case "${random_init}" in true|false) ;; *) die "--random_init must be true or false, got '${random_init}'" ;; esac
passed_options+=(--expdir "${expdir}" --feats_normalize "${feats_normalize}")
per_ckpt_stats=${feats_normalize}  # global_mvn: feature statistics depend on the checkpoint (stage 10 each)
if [ "${per_ckpt_stats}" = config ]; then
    per_ckpt_stats=$(config_normalize "${asr_config}")
    per_ckpt_stats=${per_ckpt_stats%% *}
fi

config_name=$(basename "${asr_config}" .yaml)
cmpdir=${expdir}/compare_${config_name}
manifest=${cmpdir}/checkpoints.tsv
exps=${cmpdir}/exps  # asr_<manifest tag> -> the experiment run.sh named (the table reads these)
mkdir -p "${cmpdir}/log" "${exps}"

source_args() {  # source_args PATH: run.sh's options, one a line, for fine-tuning from PATH (-: the config's preset)
    [ "$1" = - ] || printf '%s
' --pretrained "$1"
    printf '%s
' --asr_args "${asr_args}"
}

run_logged() {  # run_logged LOG RUN.SH-OPTIONS...: run.sh with its output in LOG; its tail on failure
    local logfile=$1
    shift
    if "${run_sh}" "${passed_options[@]}" "$@" > "${logfile}" 2>&1; then return 0; fi
    log "ERROR: ${run_sh} $* failed; the end of ${logfile}:"
    tail -n 15 "${logfile}" >&2
    return 1
}

# ---------------------------------------------------------------------------------------
if [ "${skip_data}" = true ]; then
    compgen -G "data/token_list/*/.done" > /dev/null \
        || die "--skip_data true, but stages 1-5 are not done (no data/token_list/*/.done):" \
               "run ${run_sh} --stage 1 --stop_stage 5"
    log "Data: stages 1-5 done before (--skip_data true)"
else
    log "Data: ${run_sh} --stage 1 --stop_stage 5 (log: ${cmpdir}/log/data.log)"
    run_logged "${cmpdir}/log/data.log" --stage 1 --stop_stage 5 || die "data preparation failed"
fi

log "Checkpoints: ${checkpoints}"
read -r -d '' -a _patterns <<< "${checkpoints}" || true  # words on any lines; python expands the globs
python3 -m espnet_ext.bin.compare_checkpoints describe --tag_prefix "${config_name}" --out "${manifest}" \
    "${_patterns[@]}" || die "bad --checkpoints (see above)"
if [ "${random_init}" = true ]; then
    python3 -c 'import sys, yaml
c = yaml.safe_load(open(sys.argv[1], encoding="utf-8")) or {}
sys.exit(0 if (c.get("frontend_conf") or {}).get("preset") else 1)' "${asr_config}" \
        || die "--random_init true needs frontend_conf.preset in ${asr_config} (the architecture to initialise at random)"
    printf 'random_init\t%s_random_init\t0\trandom\tpreset\t-\n' "${config_name}" >> "${manifest}"
fi
mapfile -t entries < <(tail -n +2 "${manifest}")  # name tag updates origin format path
n=${#entries[@]}
log "${n} fine-tuning(s), ${nj_ckpt} at a time (${run_sh} skips the finished ones)"

finetune() {  # finetune I ENTRY: stages 11-13 (10-13 with per-checkpoint statistics) for one row
    local i=$1 name tag path exp logfile start=${SECONDS} sources=()
    IFS=$'\t' read -r name tag _ _ _ path <<< "$2"
    logfile=${cmpdir}/log/${tag}.log
    mapfile -t sources < <(source_args "${path}")
    local opts=(--stage 11 --stop_stage 13)
    [ "${per_ckpt_stats}" = global_mvn ] && opts=(--stage 10 --stop_stage 13)
    log "[${i}/${n}] fine-tune from ${path} (log: ${logfile})"
    rm -f "${exps}/asr_${tag}"
    if run_logged "${logfile}" "${opts[@]}" --asr_config "${asr_config}" "${sources[@]}" \
            --asr_exp_file "${exps}/${tag}.path"; then
        exp=$(cat "${exps}/${tag}.path")
        ln -sfn "$(cd "${exp}" && pwd)" "${exps}/asr_${tag}"
        touch "${exp}/.done_compare"
        if grep -q "already done: ${exp} " "${logfile}"; then log "[${i}/${n}] ${name}: fine-tuned before in ${exp}"
        else log "[${i}/${n}] ${name} finished in $((SECONDS - start)) s: ${exp}/RESULTS.md"; fi
    else
        log "[${i}/${n}] ERROR: ${name} failed (${path}): see ${logfile}"
        return 1
    fi
}

stop_jobs() {  # stop_jobs: TERM to the process group of every running background job
    local p
    for p in $(jobs -p); do kill -TERM -- "-${p}" 2>/dev/null || true; done
}

if [ "${per_ckpt_stats}" != global_mvn ]; then  # shapes only: shared by all checkpoints
    IFS=$'\t' read -r _ _ _ _ _ path <<< "${entries[0]}"
    mapfile -t sources < <(source_args "${path}")
    log "Stage 10: shapes, shared by all checkpoints (log: ${cmpdir}/log/stats.log)"
    run_logged "${cmpdir}/log/stats.log" --stage 10 --stop_stage 10 --asr_config "${asr_config}" "${sources[@]}" \
        || die "collecting shapes failed"
fi
if [ "${nj_ckpt}" -gt 1 ]; then
    set -m  # every job in its own process group: an interrupt stops them whole
    trap 'log "interrupted: stopping the running fine-tunings"; stop_jobs; exit 130' INT TERM
fi
i=0
for entry in "${entries[@]}"; do
    i=$((i + 1))
    if [ "${nj_ckpt}" -eq 1 ]; then
        finetune "${i}" "${entry}" || true  # failures are listed at the end
        continue
    fi
    while [ "$(jobs -rp | wc -l)" -ge "${nj_ckpt}" ]; do wait -n || true; done
    finetune "${i}" "${entry}" &
done
wait || true
trap - INT TERM

log "Table and plot: ${results}.md, ${results}.png"
_opts=()
[ -n "${metric}" ] && _opts+=(--metric "${metric}")
[ -n "${decode_tag}" ] && _opts+=(--decode_tag "${decode_tag}")
table_ok=true
python3 -m espnet_ext.bin.compare_checkpoints table "${manifest}" --expdir "${exps}" \
    --md "${results}.md" --png "${results}.png" --asr_config "${asr_config}" "${_opts[@]}" || table_ok=false
${table_ok} && sed -n '/^|/p' "${results}.md" >&2

failed=()
for entry in "${entries[@]}"; do
    IFS=$'\t' read -r name tag _ _ _ path <<< "${entry}"
    [ -e "${exps}/asr_${tag}" ] || failed+=("${name}")
done
[ "${#failed[@]}" -eq 0 ] \
    || die "${#failed[@]} of ${n} checkpoint(s) not finished: ${failed[*]} (logs in ${cmpdir}/log)"
${table_ok} || die "writing ${results}.md failed (see above)"
log "Successfully finished. [elapsed=${SECONDS}s]"
