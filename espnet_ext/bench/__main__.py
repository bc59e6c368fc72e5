"""python -m espnet_ext.bench {finetune,extractor,pretrain,decode,dataprep} [options]  (see each benchmark's --help)"""

import sys

from espnet_ext.bench import dataprep, decode, extractor, finetune, pretrain

BENCHMARKS = {"finetune": finetune.main, "extractor": extractor.main, "pretrain": pretrain.main,
              "decode": decode.main, "dataprep": dataprep.main}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in BENCHMARKS:
        print(f"usage: python -m espnet_ext.bench {{{','.join(BENCHMARKS)}}} [options]", file=sys.stderr)
        return 2
    return BENCHMARKS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
