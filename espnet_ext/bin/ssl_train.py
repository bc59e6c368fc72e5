"""Pre-train (or collect stats for) an ESPnet SSL model, e.g. ``model: wav2vec2``.

Same options as ``espnet2.bin.ssl_train``; see ``--help``.
"""

import espnet_ext  # noqa: F401  (registry, before ESPnet builds a model)


def main(cmd=None):
    from espnet_ext.espnet.tasks import SSLTask

    SSLTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
