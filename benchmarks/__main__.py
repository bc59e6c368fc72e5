"""python -m benchmarks {finetune,extractor,pretrain,decode,dataprep,concat,gpu} [options]

(see each benchmark's --help)"""

import sys
import textwrap

from benchmarks import concat, dataprep, decode, extractor, finetune, gpu, pretrain

MODULES = {
    "finetune": finetune,
    "extractor": extractor,
    "pretrain": pretrain,
    "decode": decode,
    "dataprep": dataprep,
    "concat": concat,
    "gpu": gpu,
}
BENCHMARKS = {name: module.main for name, module in MODULES.items()}


def usage() -> str:
    """The usage line and each benchmark with the first paragraph of its module's docstring."""
    lines = [
        f"usage: python -m benchmarks {{{','.join(BENCHMARKS)}}} [options]",
        "",
        "benchmarks (each has --help; figures in docs/benchmarks.md):",
    ]
    for name, module in MODULES.items():
        summary = " ".join(module.__doc__.split("\n\n")[0].split()).replace("``", "")
        lines += textwrap.wrap(summary, width=100, initial_indent=f"  {name:<10} ", subsequent_indent=" " * 13)
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if not argv or argv[0] not in BENCHMARKS:
        found = f"unknown benchmark '{argv[0]}'" if argv else "no benchmark named"
        print(f"{usage()}\n\nerror: {found}; expected one of {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    return BENCHMARKS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
