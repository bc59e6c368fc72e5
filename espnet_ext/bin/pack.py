"""Pack a trained model into a zip that ``espnet_model_zoo`` unpacks (stage 14).

Same options as ``espnet2.bin.pack``. The zip holds the training config, the model file
and the ``--option`` files (stats, BPE model, RESULTS.md) with paths made relative, as
``ModelDownloader().unpack_local_file(zip)`` expects. To load it, ``import espnet_ext``
first so that the project's classes are registered.
"""

import espnet_ext  # noqa: F401  (registry)


def main(cmd=None):
    from espnet2.bin.pack import main as espnet_main

    espnet_main(cmd)


if __name__ == "__main__":
    main()
