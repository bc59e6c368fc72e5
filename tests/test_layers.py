"""The import layering (pyproject.toml, [tool.importlinter]) holds, and `lint-imports` would catch a
break: an upward import, a cycle, torch in a torch-free layer, ESPnet outside the ESPnet layer, a bin
module importing another. Every command-line entry point is a module of espnet_ext/bin/: no other
module defines a module-level `main` or runs as a script."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the package under ``root`` with the contracts of ``root``/pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy under root before the installed package
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "modules, heavy",
    [
        (
            "espnet_ext.core.frames, espnet_ext.core.log, espnet_ext.core.progress",
            ("torch", "numpy", "espnet2", "espnet"),
        ),
        # the stage-4 filter's frame counts, the scorer, the data tools, the n-gram LM (stage 9): no torch
        # or ESPnet at import
        (
            "espnet_ext.espnet.lengths, espnet_ext.bin.filter_data, espnet_ext.scoring, espnet_ext.data.kaldi_files, "
            "espnet_ext.data.datadir, espnet_ext.data.subsets, espnet_ext.data.sampling, espnet_ext.lm.ngram, "
            "espnet_ext.lm.query, espnet_ext.bin.ngram_train",
            ("torch", "espnet2", "espnet"),
        ),
        # the planner, its LR schedules and mask statistics: numpy and PyYAML (a backbone preset is read on use)
        (
            "espnet_ext.bin.plan, espnet_ext.report.plan, espnet_ext.report.schedules, espnet_ext.report.mask_stats",
            ("torch", "espnet2", "espnet"),
        ),
    ],
    ids=["core", "filter-scoring-data", "planner"],
)
def test_light_layers_load_nothing_heavy_at_run_time(modules, heavy):
    """What the contracts check in the source also holds at run time (`import espnet_ext` included)."""
    code = f"import sys, {modules}; print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(heavy)!r}))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_package_keeps_its_layers():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


# (file, an import that breaks a contract, the contract's id in pyproject.toml)
BREAKS = [
    ("core/frames.py", "from espnet_ext.bin import datadir", "Layers"),  # upward
    ("wav2vec2/config.py", "from espnet_ext.wav2vec2 import model", "No import cycles"),  # model imports config
    ("data/datadir.py", "from espnet_ext.espnet import trainer", "Layers"),  # data -> espnet
    ("scoring/textio.py", "import torch", "core, data, scoring and lm import no torch"),
    ("lm/query.py", "import torch", "core, data, scoring and lm import no torch"),
    ("lm/ngram.py", "from espnet_ext.scoring import textio", "Layers"),  # lm sits beside data, below scoring
    ("wav2vec1/loss.py", "import espnet2.asr.ctc", "Only the espnet layer imports ESPnet"),
    ("helpers.py", "import os", "Layers"),
    (
        "bin/datadir.py",
        "import espnet2.tasks.asr",
        "bin reaches ESPnet through the espnet layer",
    ),  # a new top-level module outside the layers (exhaustive)
    ("bin/cls_score.py", "from espnet_ext.bin import cls_labels", "No bin module imports another"),
    ("bin/score.py", "import espnet_ext.bin.datadir", "No bin module imports another"),
]


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("layers")
    shutil.copytree(ROOT / "espnet_ext", root / "espnet_ext", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root)
    return root


@pytest.mark.parametrize("path, line, contract", BREAKS, ids=[b[0] for b in BREAKS])
def test_an_import_that_breaks_the_layering_fails_the_check(package_copy, path, line, contract):
    target = package_copy / "espnet_ext" / path
    original = target.read_text() if target.exists() else None
    target.write_text((original or "") + f"\n{line}  # injected by tests/test_layers.py\n")
    try:
        result = lint_imports(package_copy)
    finally:
        if original is None:
            target.unlink()
        else:
            target.write_text(original)
    assert result.returncode == 1, result.stdout + result.stderr
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(b.startswith(contract) for b in broken), result.stdout
    module = "espnet_ext." + path[: -len(".py")].replace("/", ".")
    report = result.stdout.split("Broken contracts")[1]
    assert module in report or "." + Path(path).stem in report, result.stdout  # the offender is named


def _is_main_guard(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either side first)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(x, ast.Name) and x.id == "__name__" for x in sides) and any(
        isinstance(x, ast.Constant) and x.value == "__main__" for x in sides
    )


def entry_points_outside_bin(package: Path) -> list[str]:
    """The modules of ``package`` outside its ``bin/`` that are entry points: a module-level
    ``main`` function, an ``if __name__ == "__main__"`` block, or a ``__main__.py``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel.startswith("bin/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found += [
            f"{rel}:{node.lineno}: def {node.name}"
            for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "main"
        ]
        found += [
            f"{rel}:{node.lineno}: if __name__ == '__main__'"
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and _is_main_guard(node.test)
        ]
        if path.name == "__main__.py":
            found.append(f"{rel}: a __main__.py")
    return found


def test_entry_points_are_in_bin_only():
    assert entry_points_outside_bin(ROOT / "espnet_ext") == [], "move the command line into espnet_ext/bin/"


@pytest.mark.parametrize(
    "path, code, found",
    [
        ("data/mini.py", "def main(argv=None):\n    return 0\n", "data/mini.py:{line}: def main"),
        ("core/frames.py", "async def main():\n    pass\n", "core/frames.py:{line}: def main"),
        (
            "wav2vec2/presets.py",
            "if '__main__' == __name__:\n    print(PRESETS)\n",
            "wav2vec2/presets.py:{line}: if __name__ == '__main__'",
        ),
        ("scoring/__main__.py", "", "scoring/__main__.py: a __main__.py"),
    ],
    ids=["main", "async-main", "main-guard", "__main__.py"],
)
def test_an_entry_point_outside_bin_fails_the_check(package_copy, path, code, found):
    target = package_copy / "espnet_ext" / path
    original = target.read_text() if target.exists() else None
    text = (original or "").rstrip("\n")
    text = f"{text}\n\n\n{code}" if text else code
    target.write_text(text)
    try:
        result = entry_points_outside_bin(package_copy / "espnet_ext")
    finally:
        if original is None:
            target.unlink()
        else:
            target.write_text(original)
    line = len((original or "").rstrip("\n").splitlines()) + 3
    assert result == [found.format(line=line)]
    assert entry_points_outside_bin(package_copy / "espnet_ext") == []
