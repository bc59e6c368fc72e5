"""Corpus preparation: one module per corpus (native layout -> Kaldi-style data dirs) and the
shared download helpers (espnet_ext.data.download)."""
