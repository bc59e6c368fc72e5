# shellcheck shell=bash
# Sourced by every recipe script: the project root, its venv and helper scripts on PATH.
# (Recipes link this file; the recipe directory is three levels below the project root,
# unless ESPNET_EXT_ROOT is set, e.g. for a recipe copied elsewhere.)
ESPNET_EXT_ROOT=${ESPNET_EXT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
export ESPNET_EXT_ROOT
if [ ! -x "${ESPNET_EXT_ROOT}/.venv/bin/python" ]; then
    echo "path.sh: ${ESPNET_EXT_ROOT}/.venv not found: run 'make install' in ${ESPNET_EXT_ROOT} first" >&2
    # shellcheck disable=SC2317  # exit when run rather than sourced
    return 1 2>/dev/null || exit 1
fi
export PATH="${ESPNET_EXT_ROOT}/local:${ESPNET_EXT_ROOT}/.venv/bin:${PATH}"
[ -d /usr/lib/sctk/bin ] && export PATH="${PATH}:/usr/lib/sctk/bin"  # sclite (Debian sctk)
export PYTHONIOENCODING=UTF-8
export PYTHONUNBUFFERED=1
# Byte order for every sort of Kaldi-style files.
export LC_COLLATE=C
