#!/usr/bin/env bash
# Does pre-training help? The demo's two arms, each trained with several seeds on this machine:
#   pre-trained  ssl1/run.sh (mini pre-training), then asr1/run.sh --pretrained <its exp dir>
#                (seed 0 is exactly what `make demo` runs, and is reused when done)
#   random       asr1/run.sh: the same fine-tuning from random initialisation
# A seed changes the initialisation and the batch order of both the pre-training and the
# fine-tuning. Prints the greedy CER per test set, mean ± sd over seeds and the ratio of the means,
# and writes it to RESULTS_pretraining_gain.md here. Finished runs are skipped (their .done markers).
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
# shellcheck source=SCRIPTDIR/../../local/stage_lib.sh
. "${ESPNET_EXT_ROOT}/local/stage_lib.sh"

log "asr1 stages 1-5 (data, tokens), shared by every fine-tuning (log: asr1/exp/data_prep.log)"
mkdir -p asr1/exp
(cd asr1 && ./run.sh --stop_stage 5) > asr1/exp/data_prep.log 2>&1 \
    || { log "ERROR: asr1 data preparation failed: see asr1/exp/data_prep.log"; exit 1; }

pretrained=()
random=()
for seed in ${seeds}; do
    suffix=""; [ "${seed}" = 0 ] || suffix=_seed${seed}  # seed 0: the demo's own tags
    ssl_tag=train_ssl_w2v2_mini${suffix}
    log "seed ${seed}: pre-training ssl1/exp/ssl_${ssl_tag} (log: ssl1/exp/ssl_${ssl_tag}.log)"
    mkdir -p ssl1/exp
    (cd ssl1 && ./run.sh --ssl_tag "${ssl_tag}" --ssl_args "--seed ${seed}") > "ssl1/exp/ssl_${ssl_tag}.log" 2>&1 \
        || { log "ERROR: pre-training failed: see ssl1/exp/ssl_${ssl_tag}.log"; exit 1; }
    # the pre-training report's checks (codebook collapse, L_m at chance), so a bad seed is seen
    { grep -h -e "^- last epoch:" -e "^- log:" "ssl1/exp/ssl_${ssl_tag}/report.md" 2>/dev/null || true; } | while read -r line; do
        log "WARNING: seed ${seed}: pre-training ${line#- }"; done
    # the tag asr1/run.sh --pretrained chooses (asr.sh), passed explicitly so the exp dir is known
    pretrained_tag=$(pretrained_tag asr1/conf/train_asr.yaml "$(last_checkpoint "ssl1/exp/ssl_${ssl_tag}")")
    pretrained+=("asr1/exp/asr_${pretrained_tag}")
    random_tag=train_asr_char; [ "${seed}" = 0 ] || random_tag=train_asr_random${suffix}
    random+=("asr1/exp/asr_${random_tag}")
    jobs=()
    for arm in pretrained random; do
        if [ "${arm}" = pretrained ]; then
            opts=(--pretrained "../ssl1/exp/ssl_${ssl_tag}" --asr_tag "${pretrained_tag}"); exp=${pretrained[-1]}
        else opts=(--asr_tag "${random_tag}"); exp=${random[-1]}; fi
        log "seed ${seed}: fine-tuning ${exp} (log: ${exp}.log)"
        (cd asr1 && ./run.sh "${opts[@]}" --asr_args "--seed ${seed}" --stage 10 --stop_stage 13) > "${exp}.log" 2>&1 &
        jobs+=("$!:${exp}")
    done
    for job in "${jobs[@]}"; do
        wait "${job%%:*}" || { log "ERROR: fine-tuning failed: see ${job#*:}.log"; exit 1; }
    done
done

python3 -m espnet_ext.bin.seed_table --arm random "${random[@]}" --arm pre-trained "${pretrained[@]}" \
    --test_sets dev test --metric cer --decode_glob 'decode_ctc_greedy_*' --out RESULTS_pretraining_gain.md
log "Successfully finished. [elapsed=${SECONDS}s]"
