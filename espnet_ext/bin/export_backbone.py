"""Export the backbone of a pre-training checkpoint for fine-tuning (ssl1 stage 12).

    python -m espnet_ext.bin.export_backbone --config exp/ssl_<tag>/config.yaml \\
        --model exp/ssl_<tag>/latest.pth --out exp/ssl_<tag>/backbone.pth [--heads]

Writes the ``save_backbone`` format (weights + config) that the ``wav2vec2`` frontend loads
with ``frontend_conf: {path: ...}``; ``--heads`` keeps the quantizer and projections too.
"""

import argparse
import logging
import sys
from pathlib import Path

import espnet_ext  # noqa: F401  (registry)
from espnet_ext.core.log import setup_logging


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help="the pre-training exp's config.yaml")
    parser.add_argument("--model", type=Path, required=True, help="a model file: latest.pth, <N>epoch.pth ...")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--heads", action="store_true", help="keep the pre-training heads")
    args = parser.parse_args(argv)
    setup_logging(force=False)
    from espnet_ext.espnet.tasks import SSLTask

    for path in (args.config, args.model):
        if not path.is_file():
            logging.error("%s: no such file", path)
            return 1
    model, _ = SSLTask.build_model_from_file(args.config, args.model, "cpu")
    if not hasattr(model, "save_pretrained"):
        logging.error(
            "%s: model %s has no backbone to export (expected model: wav2vec2)", args.config, type(model).__name__
        )
        return 1
    model.save_pretrained(args.out, heads=args.heads)
    logging.info("Wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
