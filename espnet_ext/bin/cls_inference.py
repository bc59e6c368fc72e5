"""Classify utterances with an ESPnet classification model, the project's plugins registered.

ESPnet's ``espnet2.bin.cls_inference`` (same options; see ``--help``): one utterance at a
time, writing ``OUTPUT_DIR/prediction/{text,token,score}`` (``text``: the predicted label;
``score``: the class probabilities with ``--output_all_probabilities true``). The wav2vec 2.0
CPU kernels run as the training config's ``cpu_kernels`` says (``auto``: on with ``--ngpu 0``;
:mod:`espnet_ext.espnet.kernel_option`).
"""

import sys

import espnet_ext  # noqa: F401  (registry: the project's plugins for CLSTask)


def main(argv=None):
    from espnet2.bin.cls_inference import main as espnet_main

    from espnet_ext.espnet.kernel_option import apply_for_decoding

    argv = list(sys.argv[1:] if argv is None else argv)
    apply_for_decoding(argv, "classification_train_config")
    espnet_main(argv)


if __name__ == "__main__":
    main()
