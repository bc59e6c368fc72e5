"""N-gram language models for decoding, without a compiled binary (no KenLM ``lmplz``, no ``kenlm``).

- :mod:`.ngram`: counting and interpolated modified Kneser-Ney estimation (Chen & Goodman 1998, as
  KenLM's ``lmplz`` does it), written as an ARPA file (``python -m espnet_ext.bin.ngram_train``)
- :mod:`.arpa`: the ARPA text format, written and read
- :mod:`.query`: an ARPA model queried with backoff, one word or a whole vocabulary at once

ESPnet's decoding reaches the model through :mod:`espnet_ext.espnet.ngram_scorer`. Plain Python and
numpy: no torch, no ESPnet. Layers: ``docs/architecture.md``.
"""
