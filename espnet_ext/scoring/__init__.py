"""Scoring of ASR output (CER, WER, PER, TER) with sclite's counts, without needing sclite.

Reads Kaldi-style texts (``<uttid> <text...>``), writes a scoring directory's
``result.txt`` in the layout of ``sclite -o all stdout`` (and ``ref.trn``/``hyp.trn`` when
sclite runs, ``left_out.txt``), and collects ``RESULTS.md``. One job per module, imported
one way (``textio`` ← ``tokens``/``folding``/``leftout``; ``alignment``, ``counts`` ←
``scorer`` ← ``result_txt``/``sclite`` ← ``results_md``):

- :mod:`.textio`: reading text, symbol and ``utt2spk`` files
- :mod:`.tokens`: units (char/word/phn/bpe) and tokenisation, speakers of utterance ids
- :mod:`.folding`: token folding maps (TIMIT 60/48 → 39 phones)
- :mod:`.leftout`: utterances left out before decoding (``left_out.txt``)
- :mod:`.alignment`: sclite's alignment (costs 3/3/4, its tie-breaking), batched in numpy
- :mod:`.counts`: error counts and sclite's percentage rounding
- :mod:`.scorer`: :func:`score`, texts to alignments and counts
- :mod:`.result_txt`: the ``result.txt`` report and reading its ``Sum/Avg`` row
- :mod:`.sclite`: running sclite and checking its counts against ours
- :mod:`.results_md`: ``RESULTS.md``
- :mod:`.significance`: paired tests of two systems on the same utterances (MAPSSWE as SCTK's
  ``sc_stats``, the paired bootstrap), read from score dirs
- :mod:`.classification`: classification output (accuracy, macro-F1, confusion matrix), its
  ``metrics.json`` and ``RESULTS.md`` (``python -m espnet_ext.bin.cls_score``)

References: SCTK's sclite 2.10 (``sclite -h``, its ``-o all`` report); ESPnet's asr.sh
stage 13 scoring. The command-line entry point is ``python -m espnet_ext.bin.score``.
No torch, no ESPnet imports.
"""

from espnet_ext.scoring.alignment import COST_DEL, COST_INS, COST_SUB, align, align_many, aligned_pairs
from espnet_ext.scoring.counts import Counts, Percentages, sclite_percent, sum_counts
from espnet_ext.scoring.folding import fold_texts, read_fold_map
from espnet_ext.scoring.leftout import LEFT_OUT, left_out, write_left_out
from espnet_ext.scoring.result_txt import (
    Summary,
    alignment_lines,
    format_result_txt,
    read_summary,
    write_result_txt,
)
from espnet_ext.scoring.results_md import collect_results, environment_lines, write_results_md
from espnet_ext.scoring.sclite import (
    SCLITE_FALLBACK,
    ScliteMismatch,
    ScliteResult,
    check_same_counts,
    find_sclite,
    run_sclite,
    sclite_available,
    write_trn,
)
from espnet_ext.scoring.scorer import Score, UttScore, score
from espnet_ext.scoring.textio import read_nlsyms, read_text, read_utt2spk
from espnet_ext.scoring.tokens import (
    METRICS,
    SPACE,
    UNITS,
    Encoder,
    TokenPair,
    bpe_encoder,
    prepare,
    speaker_of,
    tokenize,
)

_environment_lines = environment_lines  # its name before the split into modules

__all__ = [
    "COST_DEL",
    "COST_INS",
    "COST_SUB",
    "LEFT_OUT",
    "METRICS",
    "SCLITE_FALLBACK",
    "SPACE",
    "UNITS",
    "Counts",
    "Encoder",
    "Percentages",
    "Score",
    "ScliteMismatch",
    "ScliteResult",
    "Summary",
    "TokenPair",
    "UttScore",
    "align",
    "align_many",
    "aligned_pairs",
    "alignment_lines",
    "bpe_encoder",
    "check_same_counts",
    "collect_results",
    "environment_lines",
    "find_sclite",
    "fold_texts",
    "format_result_txt",
    "left_out",
    "prepare",
    "read_fold_map",
    "read_nlsyms",
    "read_summary",
    "read_text",
    "read_utt2spk",
    "run_sclite",
    "sclite_available",
    "sclite_percent",
    "score",
    "speaker_of",
    "sum_counts",
    "tokenize",
    "write_left_out",
    "write_result_txt",
    "write_results_md",
    "write_trn",
]
