"""Tests of the espnet_ext.scoring package: its public names, and imports between its
modules going one way only."""

import ast
import importlib
from pathlib import Path

import espnet_ext.scoring as scoring

PACKAGE = Path(scoring.__file__).parent

# The names callers (bin/score.py, report/, the recipes' tests) import from espnet_ext.scoring.
PUBLIC = """COST_DEL COST_INS COST_SUB Counts LEFT_OUT METRICS Percentages SCLITE_FALLBACK SPACE
ScliteMismatch ScliteResult Score Summary TokenPair UNITS UttScore align align_many aligned_pairs
alignment_lines check_same_counts collect_results find_sclite fold_texts format_result_txt left_out
prepare read_fold_map read_nlsyms read_summary read_text read_utt2spk run_sclite sclite_available
sclite_percent score speaker_of sum_counts tokenize write_left_out write_result_txt
write_results_md write_trn""".split()


def test_public_names_are_re_exported():
    missing = [name for name in PUBLIC if not hasattr(scoring, name)]
    assert not missing
    assert set(PUBLIC) <= set(scoring.__all__)
    for name in scoring.__all__:  # each from the module that defines it
        obj = getattr(scoring, name)
        module = getattr(obj, "__module__", None)
        if module and module.startswith("espnet_ext.scoring."):
            assert getattr(importlib.import_module(module), name) is obj


def _package_imports(path: Path):
    """The modules of this package that ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("espnet_ext.scoring."):
            found.add(node.module.rsplit(".", 1)[1])
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.add(node.module or "")
    return found


def test_no_import_cycles():
    graph = {p.stem: _package_imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    order, done = [], set()
    while len(done) < len(graph):
        ready = sorted(m for m, deps in graph.items() if m not in done and deps <= done)
        assert ready, f"import cycle among {sorted(set(graph) - done)}: {graph}"
        done.update(ready)
        order += ready
    assert order.index("textio") < order.index("tokens") < order.index("scorer") < order.index("results_md")
