"""The documentation a user reads: no references they cannot follow, links that resolve, a short README.

- No tracked text file cites an issue by number, the design notes or the study notes that only the
  project's authors have (their names are built below, so that this file does not match itself).
- README.md is a guide: at most 220 lines, and the two commands that set everything up come first.
- Every relative link in README.md, docs/*.md and the recipes' READMEs names a file (and a heading)
  that exists.
- Every module they name (``espnet_ext.data.datadir``, ``espnet_ext/data/datadir.py``, a name defined
  in a module) exists, and docs/architecture.md places every module of the package's layers: it names
  each by its path below ``espnet_ext`` (``data/datadir.py``, ``data/{subsets,format}.py``,
  ``data/corpora/*.py``, ``bin/score``) or a package below a layer (``wav2vec2/cpu_kernels/``).
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 220
COMMANDS_WITHIN = 15

#: What a user cannot open: an issue by number ("issue 17", "issue #17", "issues 3"), the design
#: notes, the study notes. Built from parts so that this file holds none of them.
UNREACHABLE = re.compile(
    r"\bissues?\s?#?\d+\b|" + re.escape("DESIGN" + ".md") + "|" + re.escape("shared" + "/seeds"),
    re.IGNORECASE,
)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")
CODE_SPAN = re.compile(r"`[^`]*`")


def tracked_text_files() -> list[Path]:
    """The checkout's tracked files that are text (no NUL byte in their first 8 KiB)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: git ls-files lists nothing")
    files = []
    for name in filter(None, out.split("\0")):
        path = ROOT / name
        if path == Path(__file__).resolve() or not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as f:
            if b"\0" in f.read(8192):
                continue
        files.append(path)
    return files


def test_no_tracked_file_cites_what_a_user_cannot_open():
    found = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            m = UNREACHABLE.search(line)
            if m:
                found.append(f"{path.relative_to(ROOT)}:{number}: {m.group(0)!r} in {line.strip()[:100]!r}")
    assert not found, (
        "cite papers, upstream files or published studies by title instead of issues, design or study notes:\n"
        + "\n".join(found)
    )


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines, expected at most {MAX_README_LINES}: move details to docs/ "
        "or to the recipe's README"
    )
    head = lines[:COMMANDS_WITHIN]
    for command in ("make demo", "make test"):
        assert any(line.startswith(command + " ") or line == command for line in head), (
            f"README.md: expected a line starting with '{command}' within its first {COMMANDS_WITHIN} lines"
        )


def prose_lines(text: str, code_spans: bool = False) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with code spans removed unless ``code_spans``."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append((number, line if code_spans else CODE_SPAN.sub("", line)))
    return out


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lstrip("#").strip().replace("`", "").lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (a code span's text is part of its heading's anchor)."""
    lines = prose_lines(path.read_text(encoding="utf-8"), code_spans=True)
    return {github_anchor(line) for _, line in lines if line.startswith("#")}


def documents() -> list[Path]:
    """README.md, docs/*.md and the recipes' READMEs (a linked README once, where it lives)."""
    found = [README, *sorted((ROOT / "docs").glob("*.md"))]
    found += sorted(ROOT.glob("egs2/*/README.md")) + sorted(ROOT.glob("egs2/*/*/README.md"))
    return list(dict.fromkeys(path.resolve() for path in found))


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path):
    broken = []
    for number, line in prose_lines(doc.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            name, _, anchor = target.partition("#")
            path = (doc.parent / name).resolve() if name else doc
            if not path.exists():
                broken.append(f"{doc.relative_to(ROOT)}:{number}: {target} (no file {name})")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                broken.append(
                    f"{doc.relative_to(ROOT)}:{number}: {target} (no heading #{anchor} in {name or doc.name})"
                )
    assert not broken, "links to files or headings that do not exist:\n" + "\n".join(broken)


PACKAGE = ROOT / "espnet_ext"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
#: The layers: every package directly below espnet_ext (a new one must be placed too).
LAYERS = tuple(sorted(path.parent.name for path in PACKAGE.glob("*/__init__.py")))
DOTTED = re.compile(r"\bespnet_ext(?:\.\w+)+")
SLASHED = re.compile(r"\bespnet_ext/([\w/.{},*]*)")
#: A path below espnet_ext as architecture.md writes it: a layer first, not inside another path (tests/...).
LAYER_PATH = re.compile(r"(?<![\w/.-])((?:" + "|".join(LAYERS) + r")/[\w/.{},*]*)")


def expand_braces(pattern: str) -> list[str]:
    """``a/{b,c}.py`` -> ``a/b.py``, ``a/c.py``."""
    m = re.search(r"\{([^{}]*)\}", pattern)
    if not m:
        return [pattern]
    return [q for alt in m.group(1).split(",") for q in expand_braces(pattern[: m.start()] + alt + pattern[m.end() :])]


def package_files(pattern: str) -> list[Path]:
    """The files of espnet_ext a path below it names: a module (``.py`` optional), a glob, or a package
    (all its modules); empty when there is none."""
    pattern = pattern.rstrip(".,;:")
    if "*" in pattern:
        return sorted(PACKAGE.glob(pattern))
    path = PACKAGE / pattern
    if (path / "__init__.py").is_file():
        return sorted(path.rglob("*.py"))
    if path.suffix != ".py":
        path = path.with_name(path.name + ".py")
    return [path] if path.is_file() else []


def defined_names(path: Path) -> set[str]:
    """What a module defines or imports at its top level."""
    names = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def dotted_problem(name: str) -> str | None:
    """Why ``espnet_ext.a.b.c`` names nothing: the longest module prefix, then a name it defines."""
    parts = name.split(".")
    for end in range(len(parts), 1, -1):
        base = ROOT.joinpath(*parts[:end])
        module = base / "__init__.py" if (base / "__init__.py").is_file() else base.with_suffix(".py")
        if module.is_file():
            rest = parts[end:]
            if rest and rest[0] not in defined_names(module) and not (base / f"{rest[0]}.py").is_file():
                return f"{name}: {module.relative_to(ROOT)} defines no {rest[0]}"
            return None
    return f"{name}: no such module"


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_named_modules_exist(doc: Path):
    missing = []
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{doc.relative_to(ROOT)}:{number}"
        missing += [f"{where}: {problem}" for problem in map(dotted_problem, DOTTED.findall(line)) if problem]
        for pattern in SLASHED.findall(line):
            missing += [
                f"{where}: espnet_ext/{p} (no such file)" for p in expand_braces(pattern) if p and not package_files(p)
            ]
    assert not missing, "modules named in the docs that do not exist:\n" + "\n".join(missing)


def test_architecture_places_every_module():
    named, missing = set(), []
    for number, line in enumerate(ARCHITECTURE.read_text(encoding="utf-8").splitlines(), 1):
        for pattern in LAYER_PATH.findall(line):
            for path in expand_braces(pattern):
                files = package_files(path)
                if path.rstrip("/") in LAYERS:
                    continue  # a layer as a whole places nothing
                if not files and (path.endswith((".py", "/")) or path.startswith("bin/")):
                    missing.append(f"docs/architecture.md:{number}: {path} (no such module below espnet_ext)")
                named.update(files)
    unplaced = [
        str(path.relative_to(PACKAGE))
        for layer in LAYERS
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        if path.name != "__init__.py" and path not in named
    ]
    assert not missing, "docs/architecture.md names modules that do not exist:\n" + "\n".join(missing)
    assert not unplaced, (
        "docs/architecture.md places no module of these paths (name each in the table of its layer, an "
        "entry point in the table of command lines, e.g. `data/{kaldi_files,datadir}.py`, `bin/{score,pack}.py`):\n"
        + "\n".join(unplaced)
    )
