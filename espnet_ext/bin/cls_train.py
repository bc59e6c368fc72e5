"""Train (or collect stats for) an ESPnet classification model with the project's plugins.

Same options as ``espnet2.bin.cls_train`` (ESPnet's ``CLSTask``); see ``--help``. A config
for emotion classification on a wav2vec 2.0 backbone::

    frontend: wav2vec2              # the project's backbone (path: checkpoint, or preset:)
    normalize: null                 # CLSTask's default (utterance_mvn) would rescale features
    encoder: w2v2_light             # dropout (+ optional LayerNorm / projection), lengths kept
    decoder: linear                 # ESPnet's LinearDecoder: pooling over time + one Linear
    decoder_conf:
        pooling: mean               # mean over the valid frames (or max, CLS)

The task is :class:`espnet_ext.espnet.tasks.CLSTask`: ESPnet's ``CLSTask`` with this project's Trainer
(``--keep_last_epochs``, ``--save_every_updates``) and ``--collect_feats_stats``. The token list holds
the class labels and ``<unk>`` last (ESPnet counts
``len(token_list) - 1`` classes); stage 4 of ``egs2/TEMPLATE/cls1/cls.sh`` writes it.
"""

from espnet_ext.espnet.tasks import CLSTask


def main(cmd=None):
    CLSTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
