# Where the corpus lives: your copy of TIMIT (LDC93S1, licensed from the LDC; no download), the
# directory holding TRAIN/ and TEST/ (or train/ and test/, or a TIMIT/ directory with them),
# e.g. /export/corpora5/LDC/LDC93S1/timit/TIMIT (an exported TIMIT wins).
TIMIT=${TIMIT:-}
