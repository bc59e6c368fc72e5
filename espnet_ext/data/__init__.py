"""The data layer: corpus preparation (:mod:`.corpora`, one module per corpus) and Kaldi data-dir
tools (:mod:`.datadir`, :mod:`.format`, :mod:`.filter`, :mod:`.frames`, ...). Imports no torch and no
ESPnet. Layers: ``docs/architecture.md``.
"""
