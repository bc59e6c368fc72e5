# Where the corpus lives: the directory that holds (or receives) LibriSpeech/<part>/, relative to
# this recipe or absolute (an exported LIBRISPEECH wins). local/data.sh downloads the missing
# parts there (~7.6 GB for train-clean-100 with dev/test, +53 GB for 960 h); point it at an
# existing copy to skip downloads (parts with LibriSpeech/<part>/.complete are not fetched again;
# add --local_data_opts "--download false" for a copy without those markers).
LIBRISPEECH=${LIBRISPEECH:-downloads}
# Libri-light's limited-supervision sets (run.sh --train_set train_10h | train_1h | train_10min):
# the directory holding librispeech_finetuning/ (extracted from
# https://dl.fbaipublicfiles.com/librilight/data/librispeech_finetuning.tgz, ~0.7 GB; not downloaded).
LIBRILIGHT=${LIBRILIGHT:-downloads}
