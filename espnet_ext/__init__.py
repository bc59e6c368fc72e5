"""ESPnet recipes for wav2vec 2.0.

Importing this package makes the project's classes selectable in ESPnet configs
(see :mod:`espnet_ext.espnet.registry`); it does not import ESPnet itself.
"""

from espnet_ext.espnet.registry import install as _install_registry

__version__ = "0.1.0"

_install_registry()
