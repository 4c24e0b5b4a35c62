"""The example READMEs and the docs point only at what exists: every file path they name
(in backticks or as a link) is in the repository, and every `unkai` command in their shell
blocks is a real command of the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from unkai.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([*ROOT.glob("examples/*/README.md"), ROOT / "README.md", *ROOT.glob("docs/*.md")])
# a path-looking token: has a slash and a file extension, or names a folder of the repository
_PATH = re.compile(r"^(?:\.\./|\./)?[\w.-]+(?:/[\w.-]+)*(?:\.(?:py|md|yaml|yml|json|html|js|css|txt|toml|tf|sh)|/)$")
_TOPS = ("src/", "tests/", "bench/", "docs/", "examples/", "unkai/", "itest/", "../")


def candidates(page: Path) -> set[str]:
    text = page.read_text()
    found = {m for m in re.findall(r"`([^`\s]+)`", text)
             if m.startswith("../") or _PATH.match(m) and m.startswith(_TOPS)}
    found |= {m for m in re.findall(r"\]\(([^)#\s]+)\)", text) if "://" not in m}
    return found


# paths in a walkthrough of the reader's own project, not of this repository
READERS_OWN = {"docs/devloop.md": {"src/app.py"}, "docs/templates.md": {"src/app.py"}}


def exists(page: Path, path: str) -> bool:
    if re.search(r"\b[A-Z]{2,}\b", path):  # a placeholder (bench/results/NAME.json)
        return True
    bases = [page.parent, ROOT, page.parent.parent, *ROOT.glob("examples/*")]  # a table row names an example's own
    return any((base / path).exists() for base in bases)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_page_names_exists(page):
    own = READERS_OWN.get(str(page.relative_to(ROOT)), set())
    missing = [p for p in sorted(candidates(page) - own) if not exists(page, p)]
    assert missing == [], f"{page.relative_to(ROOT)} names files that are not in the repository: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_unkai_command_in_a_shell_block_exists(page):
    blocks = re.findall(r"```(?:sh|bash|console)\n(.*?)```", page.read_text(), re.S)
    used = {m for block in blocks for m in re.findall(r"(?:^|[|;&(]\s*|\$\()unkai ([a-z][a-z-]*)", block, re.M)}
    assert used - set(main.commands) == set(), f"{page.relative_to(ROOT)}: no such unkai command"
