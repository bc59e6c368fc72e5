# Where the corpus lives. The mini corpus ships with the project.
MINI="${ESPNET_EXT_ROOT}/egs2/mini/corpus"
