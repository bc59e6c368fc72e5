#!/usr/bin/env bash
# Does pre-training help? The demo's two arms, each trained with several seeds on this machine:
#   pre-trained  ssl1/run.sh (mini pre-training), then asr1/run.sh --pretrained <its exp dir>
#                (seed 0 is exactly what `make demo` runs, and is reused when done)
#   random       asr1/run.sh: the same fine-tuning from random initialisation
# A seed changes the initialisation and the batch order of both the pre-training and the
# fine-tuning. Prints the greedy CER per test set, mean ± sd over seeds and the ratio of the means,
# and writes it to RESULTS_pretraining_gain.md here. Finished runs are skipped (same inputs).
#
# The two fine-tunings of a seed run side by side (one torch thread each), after one data
# preparation (asr1 stages 1-5) shared by all runs.
#
#   ./pretraining_gain.sh [--seeds "0 1 2"]     # ~10 min per seed on 2 idle CPU cores
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck disable=SC1091
. asr1/path.sh
# shellcheck source=SCRIPTDIR/../../local/log.sh
. "${ESPNET_EXT_ROOT}/local/log.sh"
SECONDS=0

seeds="0 1 2"
help_message="Usage: $0 [--seeds \"${seeds}\"]"
# shellcheck source=SCRIPTDIR/../../local/parse_options.sh
. "${ESPNET_EXT_ROOT}/local/parse_options.sh"

log "asr1 stages 1-5 (data, tokens), shared by every fine-tuning (log: asr1/exp/data_prep.log)"
mkdir -p asr1/exp
(cd asr1 && ./run.sh --stop_stage 5) > asr1/exp/data_prep.log 2>&1 \
    || { log "ERROR: asr1 data preparation failed: see asr1/exp/data_prep.log"; exit 1; }

pretrained=()
random=()
for seed in ${seeds}; do
    # seed 0 is the configs' own: no --seed option, so its runs are make demo's (the same inputs)
    suffix=""; seed_args=""; [ "${seed}" = 0 ] || { suffix=_seed${seed}; seed_args="--seed ${seed}"; }
    ssl_tag=train_ssl_w2v2_mini${suffix}
    log "seed ${seed}: pre-training ssl1/exp/ssl_${ssl_tag} (log: ssl1/exp/gain_seed${seed}.log)"
    mkdir -p ssl1/exp
    (cd ssl1 && ./run.sh --ssl_tag "${ssl_tag}" --ssl_args "${seed_args}" --ssl_exp_file "exp/gain_seed${seed}") \
        > "ssl1/exp/gain_seed${seed}.log" 2>&1 \
        || { log "ERROR: pre-training failed: see ssl1/exp/gain_seed${seed}.log"; exit 1; }
    ssl_exp=ssl1/$(cat "ssl1/exp/gain_seed${seed}")  # named by its inputs (ssl.sh)
    # the pre-training report's checks (codebook collapse, L_m at chance), so a bad seed is seen
    { grep -h -e "^- last epoch:" -e "^- log:" "${ssl_exp}/report.md" 2>/dev/null || true; } | while read -r line; do
        log "WARNING: seed ${seed}: pre-training ${line#- }"; done
    jobs=()
    for arm in pretrained random; do
        if [ "${arm}" = pretrained ]; then opts=(--pretrained "../${ssl_exp}")  # asr.sh names it
        else opts=(--asr_tag "train_asr_random${suffix}"); [ "${seed}" = 0 ] && opts=(); fi
        log "seed ${seed}: fine-tuning, ${arm} (log: asr1/exp/gain_${arm}_seed${seed}.log)"
        (cd asr1 && ./run.sh "${opts[@]+"${opts[@]}"}" --asr_args "${seed_args}" --stage 10 --stop_stage 13 \
            --asr_exp_file "exp/gain_${arm}_seed${seed}") > "asr1/exp/gain_${arm}_seed${seed}.log" 2>&1 &
        jobs+=("$!:asr1/exp/gain_${arm}_seed${seed}")
    done
    for job in "${jobs[@]}"; do
        wait "${job%%:*}" || { log "ERROR: fine-tuning failed: see ${job#*:}.log"; exit 1; }
    done
    pretrained+=("asr1/$(cat "asr1/exp/gain_pretrained_seed${seed}")")
    random+=("asr1/$(cat "asr1/exp/gain_random_seed${seed}")")
done

python3 -m espnet_ext.bin.seed_table --arm random "${random[@]}" --arm pre-trained "${pretrained[@]}" \
    --test_sets dev test --metric cer --decode_glob 'decode_ctc_greedy_*' --out RESULTS_pretraining_gain.md
log "Successfully finished. [elapsed=${SECONDS}s]"
