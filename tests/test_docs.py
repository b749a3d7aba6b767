"""The documentation: every example script runs, every relative link resolves, and every
Python block on a page is an excerpt of a script, so pages and scripts cannot drift.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCRIPTS = sorted((DOCS / "examples").glob("*.py"))
PAGES = sorted(DOCS.glob("*.md"))
SOURCES = sorted([*SCRIPTS, *(ROOT / "examples").rglob("*.py")])

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
_FENCE = re.compile(r"^```.*?^```$", re.MULTILINE | re.DOTALL)


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("script", SCRIPTS, ids=[script.name for script in SCRIPTS])
def test_example_script_runs(script: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(script.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, f"{script.name} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"


def test_there_are_example_scripts() -> None:
    assert SCRIPTS, "docs/examples/*.py is empty"


def relative_links(page: Path) -> list[str]:
    """The link targets of ``page`` that are not URLs or in-page anchors, outside code blocks."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    targets = [match.group(1) for match in _LINK.finditer(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


@pytest.mark.parametrize(
    "page",
    [*PAGES, ROOT / "README.md"],
    ids=[p.relative_to(ROOT).as_posix() for p in [*PAGES, ROOT / "README.md"]],
)
def test_relative_links_point_to_files(page: Path) -> None:
    missing = [
        target for target in relative_links(page) if not (page.parent / target.split("#", 1)[0]).exists()
    ]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def squeeze(code: str) -> str:
    """``code`` without whitespace: ``ruff format`` dedents the blocks of a page and may
    rewrap their lines, so a block and its script agree on everything but whitespace."""
    return re.sub(r"\s+", "", code)


@pytest.mark.parametrize(
    "page", [*PAGES, ROOT / "README.md"], ids=[page.name for page in [*PAGES, ROOT / "README.md"]]
)
def test_python_blocks_are_excerpts_of_scripts(page: Path) -> None:
    sources = [squeeze(path.read_text(encoding="utf-8")) for path in SOURCES]
    stray = [
        block.strip().splitlines()[0]
        for block in _PYTHON_BLOCK.findall(page.read_text(encoding="utf-8"))
        if not any(squeeze(block) in source for source in sources)
    ]
    assert not stray, (
        f"{page.name}: these ```python blocks are not excerpts of docs/examples/ or examples/ "
        f"(first lines shown): {stray}"
    )
