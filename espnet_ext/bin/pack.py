"""Pack a trained model into a zip that ``espnet_model_zoo`` unpacks (stage 14), loadable elsewhere.

    python -m espnet_ext.bin.pack asr --asr_train_config exp/<tag>/config.yaml \\
        --asr_model_file exp/<tag>/valid.loss.ave.pth --option <stats, BPE model, RESULTS.md> \\
        --outpath exp/<tag>/packed_model.zip
    python -m espnet_ext.bin.pack cls --classification_train_config exp/cls_<tag>/config.yaml \\
        --classification_model_file exp/cls_<tag>/valid.acc.ave.pth --outpath exp/cls_<tag>/packed_model.zip

ESPnet's options (``espnet2.bin.pack``). The zip holds the training config, the model file and
the ``--option`` files with paths made relative, as ``ModelDownloader().unpack_local_file(zip)``
expects; the config builds the frontend from the architecture the training recorded instead of
the pre-training checkpoint, and names no other file of this machine that inference reads
(:mod:`espnet_ext.espnet.packing`). To load it, ``import espnet_ext`` first so that the
project's classes are registered. Bad input: a message and exit status 1.
"""

import logging
import sys

import espnet_ext  # noqa: F401  (registry)
from espnet_ext.core.log import setup_logging


def main(cmd=None) -> int:
    from espnet2.bin.pack import get_parser

    from espnet_ext.espnet.packing import pack_model

    setup_logging(force=False)
    parser = get_parser()
    args = parser.parse_args(cmd)
    if not hasattr(args, "contents"):
        parser.print_help()
        return 2
    given = lambda keys: {k: getattr(args, k) for k in keys if getattr(args, k) is not None}  # noqa: E731
    try:
        out = pack_model(given(args.contents.yaml_files), given(args.contents.files), args.outpath, args.option)
    except (ValueError, FileNotFoundError) as e:
        logging.error("%s", e)
        return 1
    logging.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
