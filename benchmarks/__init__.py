"""Benchmarks: ``python -m benchmarks <name> [options]``; each prints our figure, the
reference's and their ratio, measured in one run on the same machine, config and batch. Run from
the checkout's root: the benchmarks are not part of the installed package."""
