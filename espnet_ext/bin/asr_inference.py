"""Decode with an ESPnet ASR model, the project's plugins registered.

With a decoding config that says ``decoding: ctc_greedy`` (conf/decode_ctc_greedy.yaml) this
runs the project's batched CTC greedy decoder (options: ``batch_size``); otherwise it is
ESPnet's ``asr_inference`` (beam search; same options, see ``--help``).
"""

import argparse
import logging
import sys

import yaml

import espnet_ext  # noqa: F401  (registry, before ESPnet builds a model)


def _greedy_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="CTC greedy decoding")
    parser.add_argument("--config", required=True)
    parser.add_argument("--data_path_and_name_and_type", action="append", required=True)
    parser.add_argument("--key_file")
    parser.add_argument("--asr_train_config", required=True)
    parser.add_argument("--asr_model_file", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--log_level", default="INFO")
    return parser


def _decoding_config(argv):
    """The YAML given with --config, or {} when there is none."""
    for i, arg in enumerate(argv):
        path = argv[i + 1] if arg == "--config" and i + 1 < len(argv) else None
        path = arg.split("=", 1)[1] if arg.startswith("--config=") else path
        if path:
            with open(path, encoding="utf-8") as f:
                return yaml.safe_load(f) or {}
    return {}


def main(cmd=None):
    argv = list(sys.argv[1:] if cmd is None else cmd)
    conf = _decoding_config(argv)
    if conf.get("decoding") != "ctc_greedy":
        from espnet2.bin.asr_inference import main as espnet_main

        return espnet_main(argv)
    args = _greedy_parser().parse_args(argv)
    unknown = set(conf) - {"decoding", "batch_size"}
    if unknown:
        raise ValueError(f"{args.config}: unknown keys for ctc_greedy decoding: {sorted(unknown)}")
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    from espnet_ext.ctc_greedy import decode

    triples = [tuple(x.split(",")) for x in args.data_path_and_name_and_type]
    decode(
        triples,
        args.asr_train_config,
        args.asr_model_file,
        args.output_dir,
        key_file=args.key_file,
        batch_size=args.batch_size or conf.get("batch_size", 16),
        device="cuda" if args.ngpu > 0 else "cpu",
    )


if __name__ == "__main__":
    main()
