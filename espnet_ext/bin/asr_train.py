"""Train (or collect stats for) an ESPnet ASR model with the project's plugins.

Same options as ``espnet2.bin.asr_train``; see ``--help``.
"""

import espnet_ext  # noqa: F401  (registry, before ESPnet builds a model)


def main(cmd=None):
    from espnet_ext.espnet.tasks import ASRTask

    ASRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
