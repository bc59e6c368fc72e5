# Sourced after a script has set its default option values: turns "--name value" and
# "--name=value" arguments into assignments of existing variables "name" (dashes in the
# option name become underscores). Unknown options are an error naming the option; "--help"
# prints the script's ${help_message}. Positional arguments are left in "$@".
# A value may be empty (--asr_args ""). Booleans are written true/false.
__positional=()
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
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
    if ! declare -p "${__name}" >/dev/null 2>&1; then
        echo "$0: unknown option --${__name} (see --help)" >&2
        exit 1
    fi
    printf -v "${__name}" '%s' "${__value}"
done
set -- "${__positional[@]+"${__positional[@]}"}"
unset __positional __name __value
