"""Decode with an ESPnet ASR model, the project's plugins registered.

With a decoding config that says ``decoding: ctc_greedy`` (conf/decode_ctc_greedy.yaml) this
runs the project's batched CTC greedy decoder (options: ``batch_size``; an LM or n-gram given with
``--lm_file``/``--ngram_file`` is an error, as greedy decoding scores none); otherwise it is
ESPnet's ``asr_inference`` (beam search; same options, see ``--help``). Either way a phone
model's hypotheses (``token_type: phn``) are written as phones separated by spaces: ESPnet's
phoneme tokenizer joins them with nothing between, so its ``text`` files are rewritten from
its ``token`` files. The wav2vec 2.0 CPU kernels run as the training config's ``cpu_kernels`` says
(``auto``: on with ``--ngpu 0``; :mod:`espnet_ext.espnet.kernel_option`): in eval mode they change
the speed, not the hypotheses beyond float32 summation order. ``--ngram_file LM.arpa`` (with
``--ngram_weight``, ``--ngram_scorer full|part``) scores with the project's ARPA reader, no
``kenlm`` needed (:mod:`espnet_ext.espnet.ngram_scorer`; the scores are log10, as ESPnet's);
``--ngram_scorer`` is taken here (ESPnet's command line lacks it; default ``full``).
"""

import argparse
import sys
from pathlib import Path

import yaml

import espnet_ext  # noqa: F401  (registry, before ESPnet builds a model)
from espnet_ext.core.log import setup_logging

#: asr_inference's shallow-fusion options, which the greedy decoder refuses
GREEDY_REFUSES = ("lm_train_config", "lm_file", "word_lm_train_config", "word_lm_file", "ngram_file")


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
    path = _option(argv, "config")
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def _option(argv, name):
    """The value of ``--name`` (``--name value`` or ``--name=value``) in argv, else None."""
    for i, arg in enumerate(argv):
        if arg == f"--{name}" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return None


def _pop_option(argv, name):
    """``argv`` without ``--name value`` / ``--name=value``, and that value (None when absent)."""
    rest, value = [], None
    i = 0
    while i < len(argv):
        if argv[i] == f"--{name}" and i + 1 < len(argv):
            value, i = argv[i + 1], i + 2
            continue
        if argv[i].startswith(f"--{name}="):
            value = argv[i].split("=", 1)[1]
        else:
            rest.append(argv[i])
        i += 1
    return rest, value


def space_phone_hypotheses(output_dir, asr_train_config) -> int:
    """For a phone model, rewrite every ``<output_dir>/*best_recog/text`` from its ``token``
    file (phones separated by spaces); returns the number of files rewritten (0 otherwise)."""
    with open(asr_train_config, encoding="utf-8") as f:
        if (yaml.safe_load(f) or {}).get("token_type") != "phn":
            return 0
    rewritten = 0
    for token_file in sorted(Path(output_dir).glob("*best_recog/token")):
        token_file.with_name("text").write_text(token_file.read_text(encoding="utf-8"), encoding="utf-8")
        rewritten += 1
    return rewritten


def main(cmd=None):
    argv = list(sys.argv[1:] if cmd is None else cmd)
    conf = _decoding_config(argv)
    from espnet_ext.espnet.kernel_option import apply_for_decoding

    apply_for_decoding(argv, "asr_train_config")
    if conf.get("decoding") != "ctc_greedy":
        from espnet2.bin.asr_inference import main as espnet_main

        from espnet_ext.espnet.ngram_scorer import install as install_ngram_scorers

        argv, ngram_scorer = _pop_option(argv, "ngram_scorer")
        install_ngram_scorers(ngram_scorer or "full")

        result = espnet_main(argv)
        output_dir, train_config = _option(argv, "output_dir"), _option(argv, "asr_train_config")
        if output_dir and train_config:
            space_phone_hypotheses(output_dir, train_config)
        return result
    fusion = [f"--{name}" for name in GREEDY_REFUSES if _option(argv, name)]
    if fusion:
        raise ValueError(
            f"{_option(argv, 'config')}: decoding: ctc_greedy takes no LM or n-gram ({', '.join(fusion)} given): "
            "decode with a beam-search config (e.g. conf/decode_ctc_lm.yaml)"
        )
    args = _greedy_parser().parse_args(argv)
    unknown = set(conf) - {"decoding", "batch_size"}
    if unknown:
        raise ValueError(f"{args.config}: unknown keys for ctc_greedy decoding: {sorted(unknown)}")
    setup_logging(args.log_level, force=False)
    from espnet_ext.espnet.ctc_greedy import decode

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
