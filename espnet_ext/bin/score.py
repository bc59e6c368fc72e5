"""Score ASR output (CER, WER, PER, TER) like sclite, and collect RESULTS.md.

Score one decode of one test set (stage 13 of the recipes)::

    python -m espnet_ext.bin.score --ref data/test/text --hyp exp/<tag>/<decode>/test/text \\
        --unit char --out_dir exp/<tag>/<decode>/test/score_cer \\
        [--sclite auto|yes|no] [--nlsyms FILE] [--remove_tokens a,b] [--utt2spk FILE] \\
        [--bpemodel data/token_list/bpe_unigram5000/bpe.model] \\
        [--case_sensitive] [--title TITLE] [--fold_map MAP] \\
        [--source_ref data/test/text [--left_out_reasons FILE ...]]

``--unit``: ``char`` (CER; spaces become ``<space>`` tokens), ``word`` (WER), ``phn`` (PER),
``bpe`` (TER: the pieces of ``--bpemodel``, reference and hypothesis texts both encoded with it,
as ESPnet's ``ter``; ``--nlsyms`` does not apply to it, ESPnet's ``ter`` keeps those symbols).
Writes ``OUT_DIR/result.txt`` (sclite's ``-o all stdout`` layout: summary tables whose
``| Sum/Avg|`` row ``grep -e Avg -e SPKR -m 2`` finds, then per-utterance alignments) and
prints its ``SPKR`` header and ``Sum/Avg`` row. ``--sclite``: ``auto`` (the default) uses
sclite when it is installed, ``yes`` requires it, ``no`` never runs it. When sclite runs
(it also leaves ``ref.trn`` and ``hyp.trn`` in OUT_DIR), its counts must equal this
project's own, totals and per utterance, else the command fails printing both and
writes no ``result.txt``; ``result.txt`` is then sclite's report. Otherwise it is written by
:func:`espnet_ext.scoring.write_result_txt`, same counts, same layout.

``--fold_map``: fold the tokens of both sides before scoring (``phn``/``word``), with a file of
rows ``<symbol> ... <target>`` (TIMIT's ``phones.60-48-39.map``: PER on 39 phones whatever
the training set); a symbol alone on its row is deleted, a token the map lacks is kept.
``--source_ref``: the test set as prepared (``data/<set>/text``) when ``--ref`` is what was
decoded (``dump/raw/<set>/text``): its utterances missing from ``--ref`` are written to
``OUT_DIR/left_out.txt`` (``uttid<TAB>reason``, the reason from the first
``--left_out_reasons`` file listing it: stage 3's ``excluded.txt``, stage 4's ``removed.txt``)
and counted in RESULTS.md's "Left out" column.

Texts are Kaldi style (``<uttid> <text...>``, UTF-8). Reference utterances without
hypothesis count as all deletions (with a warning); a hypothesis without reference is an
error. ``--nlsyms``: a file of non-linguistic symbols (one a line) removed before scoring;
``--remove_tokens``: comma-separated tokens removed too. Speakers (the per-speaker rows)
come from ``--utt2spk`` or else from each id's prefix before its first ``-`` or ``_``.

Collect the tables of every decode dir below an experiment into a Markdown file::

    python -m espnet_ext.bin.score collect exp/<tag> [--out exp/<tag>/RESULTS.md]

(``--collect exp/<tag>`` is the same command.) One section per decode dir
``exp/<tag>/<decode>/``, one table per metric (CER, WER, PER, TER) with a row per
``<test_set>/score_<metric>/result.txt``.

``--out -`` prints it instead. Exit status: 0 on success, 1 on bad input or an
sclite disagreement (the message says which), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from espnet_ext import scoring
from espnet_ext.core.atomic import write_text


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_ext.bin.score",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--hyp", type=Path, help="hypothesis text (<uttid> <text...>)")
    mode.add_argument("--collect", type=Path, metavar="EXP_DIR", help="write RESULTS.md for EXP_DIR")
    parser.add_argument("--ref", type=Path, help="reference text (<uttid> <text...>)")
    parser.add_argument("--unit", choices=scoring.UNITS, help="char (CER), word (WER), phn (PER) or bpe (TER)")
    parser.add_argument("--bpemodel", type=Path, help="with --unit bpe: the sentencepiece model to tokenize with")
    parser.add_argument("--out_dir", type=Path, help="where result.txt (and the trn files) go")
    parser.add_argument("--sclite", choices=("auto", "yes", "no"), default="auto")
    parser.add_argument("--nlsyms", type=Path, help="non-linguistic symbols to remove, one a line")
    parser.add_argument("--remove_tokens", default="", help="comma-separated tokens to remove")
    parser.add_argument("--utt2spk", type=Path, help="speakers for the per-speaker rows")
    parser.add_argument("--case_sensitive", action="store_true", help="like sclite -s")
    parser.add_argument("--title", help="the tables' title (default: the --hyp path)")
    parser.add_argument("--fold_map", type=Path, help="fold tokens with this map (rows '<symbol> ... <target>')")
    parser.add_argument("--source_ref", type=Path, help="the set before formatting/filtering (data/<set>/text)")
    parser.add_argument(
        "--left_out_reasons",
        type=Path,
        action="append",
        default=[],
        help="uttid<TAB>reason file for the utterances left out (repeatable)",
    )
    parser.add_argument("--out", help="with --collect: output file, '-' for stdout")
    return parser


def _use_sclite(choice: str) -> bool:
    """Whether ``--sclite auto|yes|no`` runs sclite; ``yes`` without sclite is an error."""
    if choice == "no":
        return False
    if choice == "yes" and not scoring.sclite_available():
        raise ValueError(f"--sclite yes: expected sclite on PATH or at {scoring.SCLITE_FALLBACK}, found neither")
    return scoring.sclite_available()


def run_scoring(args: argparse.Namespace) -> Path:
    """Score ``--hyp`` against ``--ref`` and write ``out_dir/result.txt``; returns its path."""
    refs, hyps = scoring.read_text(args.ref), scoring.read_text(args.hyp)
    if (args.unit == "bpe") != (args.bpemodel is not None):
        raise ValueError(f"--unit {args.unit} and --bpemodel {args.bpemodel}: expected --bpemodel with --unit bpe only")
    bpe = scoring.bpe_encoder(args.bpemodel) if args.unit == "bpe" else None
    if args.fold_map is not None:
        if args.unit in ("char", "bpe"):
            raise ValueError(f"--fold_map folds whole tokens: expected --unit phn or word, found {args.unit}")
        mapping = scoring.read_fold_map(args.fold_map)
        refs, hyps = scoring.fold_texts(refs, mapping), scoring.fold_texts(hyps, mapping)
    if args.source_ref is not None:
        source = scoring.read_text(args.source_ref)
        try:
            left = scoring.left_out(source, refs, args.left_out_reasons)
        except ValueError as e:
            raise ValueError(f"{args.ref} against --source_ref {args.source_ref}: {e}") from None
        path = scoring.write_left_out(left, args.out_dir / scoring.LEFT_OUT)
        if left:
            print(f"{len(left)} of {len(source)} utterances of {args.source_ref} left out before decoding: {path}")
    else:
        (args.out_dir / scoring.LEFT_OUT).unlink(missing_ok=True)  # none from an earlier run
    options = dict(
        nlsyms=scoring.read_nlsyms(args.nlsyms) if args.nlsyms else (),
        remove_tokens=[t for t in args.remove_tokens.split(",") if t],
        utt2spk=scoring.read_utt2spk(args.utt2spk) if args.utt2spk else None,
        case_sensitive=args.case_sensitive,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ours = scoring.score(refs, hyps, args.unit, bpe=bpe, **options)
        except ValueError as e:
            raise ValueError(f"{args.hyp} against {args.ref}: {e}") from None
    for warning in caught:
        print(f"warning: {args.hyp}: {warning.message}", file=sys.stderr)
    title = args.title or str(args.hyp)
    result = args.out_dir / "result.txt"
    result.unlink(missing_ok=True)  # never leave a stale result behind a failure
    if _use_sclite(args.sclite):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the same warning as above
            theirs = scoring.run_sclite(refs, hyps, args.unit, args.out_dir, title=title, bpe=bpe, **options)
        scoring.check_same_counts(ours, theirs)
        write_text(result, theirs.report)
        backend = "sclite (counts identical to espnet_ext.scoring)"
    else:
        scoring.write_result_txt(ours, result, title)
        backend = "espnet_ext.scoring"
    print(f"{ours.metric} of {args.hyp} by {backend}: {result}")
    with open(result, encoding="utf-8", errors="replace") as f:
        print("".join([line for line in f if "SPKR" in line or "Sum/Avg" in line][:2]), end="")
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["collect"]:  # the subcommand form: collect EXP_DIR [--out FILE]
        argv[0] = "--collect"
    args = parser.parse_args(argv)
    if args.collect is None:
        missing = [f"--{name}" for name in ("ref", "unit", "out_dir") if getattr(args, name) is None]
        if missing:
            parser.error(f"scoring needs {', '.join(missing)}")
    elif any(getattr(args, name) is not None for name in ("ref", "unit", "out_dir", "bpemodel")):
        parser.error("--collect takes only --out")
    try:
        if args.hyp is not None:
            run_scoring(args)
        elif args.out == "-":
            print(scoring.collect_results(args.collect))
        else:
            print(f"wrote {scoring.write_results_md(args.collect, args.out)}")
    except (ValueError, OSError, scoring.ScliteMismatch) as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
