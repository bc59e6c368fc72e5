# Where the corpus lives: the directory holding Actor_01 ... Actor_24 of the unzipped
# Audio_Speech_Actors_01-24.zip (Zenodo record 1188976; see README.md). Set it here or in the
# environment. `local/data.sh --download true` downloads and unzips it into this directory.
RAVDESS="${RAVDESS:-}"
