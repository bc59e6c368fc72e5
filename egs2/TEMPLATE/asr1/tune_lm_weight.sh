#!/usr/bin/env bash
# Tune shallow fusion on a dev set: decode it with each point of a small grid of LM weights and
# length bonuses (asr_inference's --lm_weight and --penalty), pick the lowest error rate, then
# decode and score the test sets with that point. Run it in an asr1 recipe dir, beside run.sh:
# every option it does not know goes to run.sh (e.g. --use_ngram true, --lm_args, --asr_tag).
# Each decoding is run.sh's (stages 12-13), named by its weights and keyed by its inputs: a
# finished one is reused, so a second run with the same or a wider grid decodes only the new points.

set -euo pipefail

# shellcheck disable=SC1091
. ./path.sh
# shellcheck source=SCRIPTDIR/../../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
SECONDS=0

lm_weights="0.0 0.3 0.5 0.7 1.0"  # the grid's LM weights
penalties="0.0 0.5"     # the grid's length bonuses per token
dev_set=dev             # the set tuned on (decoded as run.sh's --test_sets "${dev_set}")
metric=""               # cer, wer or per (default: the first scored: cer, else wer, else per)
inference_config=conf/decode_ctc_lm.yaml  # a beam-search config; the grid's weights override its own
inference_args=""       # more decoding options, the same for every point (e.g. "--beam_size 20")
use_lm=true             # passed on: the LM (stages 6-8) of run.sh's --lm_config
run_sh=./run.sh         # the recipe's run.sh: corpus options, stages
expdir=exp              # passed on to run.sh

help_message=$(cat <<EOF
Usage: $0 [--lm_weights "${lm_weights}"] [--penalties "${penalties}"] [options] [run.sh options]

Stages 6-9 of ${run_sh} (the LM, and the n-gram with --use_ngram true; skipped when done), then
for each LM weight and penalty stages 12-13 on --dev_set ${dev_set} with --inference_config and
--inference_args "<yours> --lm_weight W --penalty P"; then the table (a row per point, its
${dev_set} error rate, the best in bold) and stages 12-13 of every test set with the best point
(ties: the smaller weight, then the smaller penalty). The table is printed and written beside the
decodings (<asr exp>/tune_lm_weight.${dev_set}.md); logs: ${expdir}/tune_lm_weight/log/.

Options (defaults in brackets):
  --lm_weights "${lm_weights}"  --penalties "${penalties}"  --dev_set ${dev_set}  --metric "${metric}"
  --inference_config ${inference_config}  --inference_args "${inference_args}"  --use_lm ${use_lm}
  --run_sh ${run_sh}  --expdir ${expdir}
  any other option of ${run_sh} (e.g. --use_ngram true --inference_nj 8 --test_sets "test"), except
  --stage, --stop_stage, --skip_stages, --inference_tag and --decode_dir_file, which this script sets.
EOF
)

own_options="lm_weights penalties dev_set metric inference_config inference_args use_lm run_sh expdir"
refused_options="stage stop_stage skip_stages inference_tag decode_dir_file"
# shellcheck source=SCRIPTDIR/../../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"
[ $# -eq 0 ] || { echo "$0: unexpected argument '$1' (options are --name value; see --help)" >&2; exit 1; }
# shellcheck source=SCRIPTDIR/../../../local/stage_lib.sh
. "${ESPNET_EXT_ROOT}/local/stage_lib.sh"  # die

[ -x "${run_sh}" ] || die "--run_sh ${run_sh}: not an executable file (run this script in the recipe dir)"
[ -f "${inference_config}" ] || die "--inference_config ${inference_config}: no such file"
[ -n "${lm_weights}" ] && [ -n "${penalties}" ] || die "--lm_weights and --penalties need a value each"
for _x in ${lm_weights} ${penalties}; do
    [[ "${_x}" =~ ^-?[0-9]+(\.[0-9]+)?$ ]] || die "--lm_weights/--penalties: '${_x}' is not a number"
done
case "${metric}" in ""|cer|wer|per) ;; *) die "--metric must be cer, wer or per, got '${metric}'" ;; esac
logdir=${expdir}/tune_lm_weight/log
mkdir -p "${logdir}"
passed_options+=(--expdir "${expdir}" --use_lm "${use_lm}")

run() {  # run LOG ARGS...: ${run_sh} with the passed-on options and ARGS, output in LOG; stops on failure
    local logfile=$1
    shift
    if ! "${run_sh}" "${passed_options[@]}" "$@" > "${logfile}" 2>&1; then
        tail -n 20 "${logfile}" >&2
        die "${run_sh} failed: see ${logfile}"
    fi
}

log "LM and n-gram (stages 6-9; log: ${logdir}/lm.log)"
run "${logdir}/lm.log" --stage 6 --stop_stage 9

points=()
for w in ${lm_weights}; do
    for p in ${penalties}; do
        _log=${logdir}/${dev_set}_lmw${w}_pen${p}.log
        run "${_log}" --stage 12 --stop_stage 13 --test_sets "${dev_set}" --inference_config "${inference_config}" \
            --inference_args "${inference_args:+${inference_args} }--lm_weight ${w} --penalty ${p}" --decode_dir_file "${logdir}/decode_dir"
        _dir=$(cat "${logdir}/decode_dir")
        log "  lm_weight ${w}, penalty ${p}: ${_dir}"
        points+=("${w}:${p}:${_dir}")
    done
done

table=$(dirname "${_dir}")/tune_lm_weight.${dev_set}.md
python3 -m espnet_ext.bin.lm_grid --dev_set "${dev_set}" ${metric:+--metric "${metric}"} --out "${table}" \
    --best "${logdir}/best" "${points[@]}" || die "cannot read the grid's scores (see the message above)"
read -r best_w best_p < "${logdir}/best"
log "best on ${dev_set}: lm_weight ${best_w}, penalty ${best_p} (table: ${table}); decoding the test sets with it"
run "${logdir}/test_lmw${best_w}_pen${best_p}.log" --stage 12 --stop_stage 13 --inference_config "${inference_config}" \
    --inference_args "${inference_args:+${inference_args} }--lm_weight ${best_w} --penalty ${best_p}" --decode_dir_file "${logdir}/decode_dir"
log "  $(cat "${logdir}/decode_dir") (its scores: $(dirname "$(cat "${logdir}/decode_dir")")/RESULTS.md)"
log "Successfully finished. [elapsed=${SECONDS}s]"
