# shellcheck shell=bash
# Sourced by every shell script of the project: one log() for all progress messages.
# Usage: log "message"  ->  2026-11-22T10:00:00 (asr.sh:123:main) message
log() {
    local fname=${BASH_SOURCE[1]##*/}
    echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*" >&2
}
