#!/usr/bin/env bash
# The open-vocabulary study in one command: what wav2vec 2.0 pre-training on the synthetic
# corpus's unlabeled hours buys when CTC fine-tuning has 10 minutes or 1 hour of labeled speech.
#   1. data: ssl1 stages 1-10 (stage 1 generates the corpus, or reuses it), asr1 stages 1-10 per subset
#   2. pre-training (ssl1/run.sh, a checkpoint every K updates) and, beside it, CTC fine-tuning from
#      random initialisation on each labeled subset (asr1/run.sh, stages 11-13)
#   3. fine-tuning from the checkpoints at every --curve_every updates and the last one on the first
#      subset (10 min), and from the last one on the others (1 h), each seed's as soon as its
#      pre-training has ended; each decoded (greedy) and scored on test_seen, test_unseen, test_other
#   4. RESULTS_study.md and RESULTS_study.png here (espnet_ext.bin.study_report): CER per test set for
#      {random init, pre-trained} x subset (mean ± sd over seeds, the ratio), CER against updates
# Trainings run ${jobs} at a time, one torch thread each. Every step is resumable: finished
# experiments are skipped (their .done markers), interrupted ones resume from their checkpoints.
#
#   ./study.sh                      # the defaults: ~5 h unlabeled, seed 0 (measured time: RESULTS_study.md)
#   ./study.sh --seeds "0 1"        # more seeds (fine-tuning and pre-training seed together)
#   ./study.sh --ngpu 1 --jobs 1 --ssl_args "--max_epoch 20"   # scale up on a GPU
set -euo pipefail
cd "$(dirname "$0")"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# shellcheck disable=SC1091
. asr1/path.sh
# shellcheck source=SCRIPTDIR/../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
SECONDS=0

seeds="0"               # seeds of the pre-training and of every fine-tuning (one study each)
jobs=2                  # trainings at a time
subsets="train_10min train_1h"   # labeled subsets; the first gets the checkpoint curve
curve_every=1000        # the curve fine-tunes the checkpoints at multiples of this many updates (and the last)
test_sets="test_seen test_unseen test_other"
ngpu=0                  # GPUs per training (0: CPU)
local_data_opts=""      # corpus sizes (asr1/local/data.sh --help), e.g. "--n_unlabeled 2000"
ssl_args=""             # extra pre-training options (ssl1 config: conf/tuning/train_ssl_w2v2_mini.yaml)
asr_args=""             # extra fine-tuning options (asr1 config: conf/train_asr.yaml)
inference_asr_model=last5.ave.pth  # the model decoded: the last 5 epochs' average (run.sh's --average
                        # last:5), or valid.loss.ave_5best.pth (the 5 epochs of lowest valid loss)
out=RESULTS_study       # ${out}.md and ${out}.png
help_message=$(cat <<EOF
Usage: $0 [--seeds "${seeds}"] [--jobs ${jobs}] [--subsets "${subsets}"] [--curve_every ${curve_every}]
          [--test_sets "${test_sets}"]
          [--ngpu ${ngpu}] [--local_data_opts "..."] [--ssl_args "..."] [--asr_args "..."]
          [--inference_asr_model ${inference_asr_model}] [--out ${out}]
Logs: ssl1/exp/*.log and asr1/exp/*.log, one per training (its name is logged when it starts).
EOF
)
# shellcheck source=SCRIPTDIR/../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"
# shellcheck source=SCRIPTDIR/../../local/stage_lib.sh
. "${ESPNET_EXT_ROOT}/local/stage_lib.sh"  # die, last_checkpoint
read -r -a subset_list <<< "${subsets}"
[ "${#subset_list[@]}" -ge 1 ] || die "--subsets is empty"
[[ "${jobs}" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive integer, got '${jobs}'"
[[ "${curve_every}" =~ ^[1-9][0-9]*$ ]] || die "--curve_every must be a positive integer, got '${curve_every}'"
inference_nj=1; [ "${jobs}" -gt 1 ] || inference_nj=2   # decoding jobs per training (cores are shared)
manifest=study_manifest.tsv   # arm subset seed updates exp: what the report reads
mkdir -p ssl1/exp asr1/exp

# --------------------------------------------------------------------------- a pool of background jobs
failed=0
pool_wait() {  # pool_wait N: wait until fewer than N jobs run (N=1: all done); count failures
    while [ "$(jobs -rp | wc -l)" -ge "$1" ]; do wait -n || failed=$((failed + 1)); done
}
submit() {  # submit LOG DIR COMMAND...: run COMMAND in DIR in the background, output in LOG
    local logfile=$1 dir=$2
    shift 2
    pool_wait "${jobs}"
    log "  start: (cd ${dir} && $*)  log: ${logfile}"
    ( cd "${dir}" && "$@" ) > "${logfile}" 2>&1 || { log "ERROR: failed: see ${logfile}"; exit 1; } &
}
finish() {  # finish WHAT: wait for every job; stop when one failed
    pool_wait 1
    [ "${failed}" = 0 ] || die "${failed} job(s) of ${1} failed (the ERROR lines above name their logs)"
    log "${1} done [elapsed=${SECONDS}s]"
}

fine_tune() {  # fine_tune ARM SUBSET SEED UPDATES [asr1/run.sh OPTIONS...]: one training, decoded and scored
    local arm=$1 subset=$2 seed=$3 updates=$4 tag
    shift 4
    tag=study_${arm}_${subset}_seed${seed}
    [ "${arm}" = random ] || tag=study_${updates}updates_${subset}_seed${seed}
    # the experiment's directory, as asr.sh names it by its inputs, is read when the runs end
    printf '%s\t%s\t%s\t%s\t%s\n' "${arm}" "${subset}" "${seed}" "${updates}" "asr1/exp/asr_${tag}.exp" >> "${manifest}.runs"
    # shellcheck disable=SC2086
    submit "asr1/exp/asr_${tag}.log" asr1 ./run.sh --stage 11 --stop_stage 13 --train_set "${subset}" \
        --test_sets "${test_sets}" --asr_tag "${tag}" --ngpu "${ngpu}" --inference_nj "${inference_nj}" \
        --asr_exp_file "exp/asr_${tag}.exp" \
        --asr_args "--seed ${seed} ${asr_args}" --inference_asr_model "${inference_asr_model}" "$@"
}

# --------------------------------------------------------------------------- 1. data
log "1. data: ssl1 stages 1-10 (log: ssl1/exp/study_data.log), asr1 stages 1-10 per subset"
(cd ssl1 && ./run.sh --stop_stage 10 --local_data_opts "${local_data_opts}") > ssl1/exp/study_data.log 2>&1 \
    || die "ssl1 data preparation failed: see ssl1/exp/study_data.log"
grep -h -e "Generated" -e "reused" ssl1/exp/study_data.log | sed 's/^/    /' >&2 || true
# the token list from the largest subset first (the others are its subsets)
for ((i = ${#subset_list[@]} - 1; i >= 0; i--)); do
    subset=${subset_list[i]}
    (cd asr1 && ./run.sh --stop_stage 10 --train_set "${subset}" --test_sets "${test_sets}" \
        --local_data_opts "${local_data_opts}") \
        > "asr1/exp/study_data_${subset}.log" 2>&1 || die "asr1 data preparation failed: see asr1/exp/study_data_${subset}.log"
done
log "1. data done [elapsed=${SECONDS}s]"

# --------------------------------------------------------------------------- 2. pre-training, random init
: > "${manifest}.runs"
log "2. pre-training (seeds ${seeds}) and fine-tuning from random initialisation"
declare -A ssl_pid
for seed in ${seeds}; do
    # shellcheck disable=SC2086
    submit "ssl1/exp/ssl_study_seed${seed}.log" ssl1 ./run.sh --stage 11 --ssl_tag "study_seed${seed}" \
        --ngpu "${ngpu}" --ssl_args "--seed ${seed} ${ssl_args}" --ssl_exp_file "exp/study_seed${seed}.exp"
    ssl_pid[${seed}]=$!
done
for seed in ${seeds}; do
    for subset in "${subset_list[@]}"; do fine_tune random "${subset}" "${seed}" 0; done
done

# --------------------------------------------------------------------------- 3. from the checkpoints
# A seed's checkpoint runs join the pool as soon as its pre-training has ended (while the random-init
# runs may still be going), so no core waits for the slowest job of step 2.
for seed in ${seeds}; do
    while kill -0 "${ssl_pid[${seed}]}" 2>/dev/null; do sleep 5; done
    ssl_exp=ssl1/$(cat "ssl1/exp/study_seed${seed}.exp" 2>/dev/null)  # named by its inputs (ssl.sh)
    [ -f "${ssl_exp}/.done_train" ] \
        || { pool_wait 1; die "pre-training of seed ${seed} failed: see ssl1/exp/ssl_study_seed${seed}.log"; }
    log "3. seed ${seed}: pre-training done [elapsed=${SECONDS}s]; fine-tuning from its checkpoints"
    # the report's checks (codebook collapse, L_m at chance)
    grep -h "^|L_m\|^- last epoch:\|^- log:" "${ssl_exp}/report.md" 2>/dev/null | sed "s/^/    seed ${seed}: /" >&2 || true
    last=$(last_checkpoint "${ssl_exp}")
    mapfile -t ckpts < <(find "${PWD}/${ssl_exp}/checkpoints" -name '*updates.pth' | sort -V)
    for ckpt in "${ckpts[@]}"; do
        n=$(basename "${ckpt}" updates.pth)
        [ $((n % curve_every)) = 0 ] || [ "${ckpt}" = "${last}" ] || continue
        fine_tune pretrained "${subset_list[0]}" "${seed}" "${n}" --pretrained "${ckpt}"
    done
    for subset in "${subset_list[@]:1}"; do
        fine_tune pretrained "${subset}" "${seed}" "$(basename "${last}" updates.pth)" --pretrained "${last}"
    done
done
finish "2-3. pre-training and fine-tuning"
{
    printf 'arm\tsubset\tseed\tupdates\texp\n'
    while IFS=$'\t' read -r arm subset seed updates exp_file; do
        printf '%s\t%s\t%s\t%s\tasr1/%s\n' "${arm}" "${subset}" "${seed}" "${updates}" "$(cat "${exp_file}")"
    done < "${manifest}.runs"
} > "${manifest}"

# --------------------------------------------------------------------------- 4. report
# shellcheck disable=SC2086
python3 -m espnet_ext.bin.study_report --manifest "${manifest}" --test_sets ${test_sets} --out "${out}" \
    --decode_glob "decode_*_${inference_asr_model%.pth}" \
    --note "study.sh --seeds '${seeds}' --jobs ${jobs} --local_data_opts '${local_data_opts}' --ssl_args '${ssl_args}' --asr_args '${asr_args}' --inference_asr_model ${inference_asr_model}: ${SECONDS} s wall in this invocation (finished steps are skipped), $(nproc --all) cores"
log "Successfully finished: ${out}.md, ${out}.png [elapsed=${SECONDS}s]"
