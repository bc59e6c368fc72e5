# Sourced by the stage drivers (egs2/TEMPLATE/*/): stage selection, errors, done markers.
# Needs ${stage}, ${stop_stage}, ${skip_stages} and log() (local/log.sh).

run_stage() {  # run_stage N: whether stage N is selected
    [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ] && [[ " ${skip_stages} " != *" $1 "* ]]
}

die() {  # die MESSAGE: log it as an error and stop
    log "ERROR: $*"
    exit 1
}

is_done() {  # is_done MARKER: log and succeed when MARKER exists (the step is then skipped)
    if [ -f "$1" ]; then
        log "  already done: $(dirname "$1") (remove $1 to redo)"
        return 0
    fi
    return 1
}

unique_words() {  # unique_words "a b a c" -> a b c (sorted), for lists of data sets
    echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -u
}
