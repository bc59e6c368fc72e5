"""The ESPnet layer: the only package that imports ESPnet (``espnet2``).

:mod:`.plugins` (which class is selectable under which name) and :mod:`.registry` (how they reach
ESPnet's ``ClassChoices``), :mod:`.tasks` and :mod:`.trainer`, the frontends, encoders and SSL
models, :mod:`.ctc_greedy` decoding, :mod:`.averaging`, and :mod:`.lengths` (the plugins' frame
counts for the stage-4 filter). Layers: ``docs/architecture.md``.
"""
