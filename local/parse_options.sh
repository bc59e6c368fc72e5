# shellcheck shell=bash
# The one option parser of the project's shell scripts. Sourced after a script has set its
# default option values: turns "--name value" and "--name=value" arguments into assignments of
# existing variables "name" (dashes in the option name become underscores). Unknown options are
# an error naming the option; "--help" prints the script's ${help_message}. Positional arguments
# are left in "$@". A value may be empty (--asr_args ""). Booleans are written true/false.
#
# A script that hands options on to another one (a recipe's run.sh to its stage driver) names
# its own before sourcing: own_options="name ...". Only those are assigned; every other option
# is appended, as "--name" "value", to the array passed_options, in the order given, to be passed
# on; so is "--help" when the script has no help_message of its own.
# refused_options="name ...": options the script sets itself for the one it calls; giving one
# is an error.
# A script may define unknown_option_hint NAME: what it prints (e.g. where an option of another
# tool went) is added to the error for an unknown option.
__positional=()
__own=${own_options+set}
[ -z "${__own}" ] || passed_options=()
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            if [ -n "${__own}" ] && [ -z "${help_message+set}" ]; then
                passed_options+=("$1"); shift; continue
            fi
            echo -e "${help_message:-no help text}" >&2
            exit 0 ;;
        --*=*)
            __name=${1%%=*}; __value=${1#*=}; shift ;;
        --*)
            __name=$1
            if [ $# -lt 2 ]; then
                echo "$0: option $1 needs a value" >&2; exit 1
            fi
            __value=$2; shift 2 ;;
        *)
            __positional+=("$1"); shift; continue ;;
    esac
    __name=${__name#--}; __name=${__name//-/_}
    if [[ " ${refused_options:-} " == *" ${__name} "* ]]; then
        echo "$0: --${__name} is set by this script (see --help)" >&2
        exit 1
    fi
    if [ -n "${__own}" ] && [[ " ${own_options} " != *" ${__name} "* ]]; then
        passed_options+=("--${__name}" "${__value}")
        continue
    fi
    if ! declare -p "${__name}" >/dev/null 2>&1; then
        __hint=""
        if declare -F unknown_option_hint >/dev/null; then __hint=$(unknown_option_hint "${__name}"); fi
        echo "$0: unknown option --${__name} (see --help)${__hint:+: ${__hint}}" >&2
        exit 1
    fi
    printf -v "${__name}" '%s' "${__value}"
done
set -- "${__positional[@]+"${__positional[@]}"}"
unset __positional __own __name __value __hint
