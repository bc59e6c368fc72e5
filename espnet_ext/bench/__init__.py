"""Benchmarks: ``python -m espnet_ext.bench <name> [options]``; each prints our figure, the
reference's and their ratio, measured in one run on the same machine, config and batch."""
