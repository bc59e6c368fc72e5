"""The bottom layer: frame arithmetic of strided convolutions, the log format and the progress line.

Pure Python: imports neither torch nor ESPnet, and nothing else from this package, so every
other layer (models, data, scoring, the ESPnet glue, reports, entry points) may use it.
"""
