"""The documentation a user reads: no references they cannot follow, links that resolve, a short README.

- No tracked text file cites an issue by number, the design notes or the study notes that only the
  project's authors have (their names are built below, so that this file does not match itself).
- README.md is a guide: at most 220 lines, and the two commands that set everything up come first.
- Every relative link in README.md, docs/*.md and the recipes' READMEs names a file (and a heading)
  that exists.
"""

from __future__ import annotations

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


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with code spans removed."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append((number, CODE_SPAN.sub("", line)))
    return out


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lstrip("#").strip().replace("`", "").lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {github_anchor(line) for _, line in prose_lines(path.read_text(encoding="utf-8")) if line.startswith("#")}


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
