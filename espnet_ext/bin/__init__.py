"""Thin entry points: ``python -m espnet_ext.bin.<tool>``.

Each imports :mod:`espnet_ext` (the registry, and a quiet ``nltk.download``) before ESPnet.
"""
