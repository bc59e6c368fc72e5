# Where the synthetic corpus lives: stage 1 generates it there (tools/synth_corpus/generate.py),
# or reuses it when it is complete. One directory per generator seed.
SYNTH="${SYNTH:-${ESPNET_EXT_ROOT}/egs2/synth/corpus/seed0}"   # the environment may override it (tests)
