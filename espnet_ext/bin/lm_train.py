"""Train (or collect stats for) an ESPnet language model with the project's trainer.

Same options as ``espnet2.bin.lm_train`` (``--lm transformer|seq_rnn``, ``--token_list``, ...); see
``--help``. asr.sh runs it in stages 6 (``--collect_stats true``) and 7.
"""

import espnet_ext  # noqa: F401  (registry, before ESPnet builds a model)


def main(cmd=None):
    from espnet_ext.espnet.tasks import LMTask

    LMTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
