"""Classify utterances with an ESPnet classification model, the project's plugins registered.

ESPnet's ``espnet2.bin.cls_inference`` (same options; see ``--help``): one utterance at a
time, writing ``OUTPUT_DIR/prediction/{text,token,score}`` (``text``: the predicted label;
``score``: the class probabilities with ``--output_all_probabilities true``).
"""

import sys

import espnet_ext  # noqa: F401  (registry: the project's plugins for CLSTask)


def main(argv=None):
    from espnet2.bin.cls_inference import main as espnet_main

    espnet_main(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
