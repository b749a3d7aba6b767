"""The gates: mypy --strict, pyright (strict), ruff check and ruff format, from the repository root.

The type checkers run over the package, the examples and the valid typing files
(``tests/typing/fail_*.py`` hold deliberate mistakes; ``tests/typing/test_typing.py``
asserts those). Strictness comes from ``pyproject.toml``, as for ``nox -s types lint``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TYPED = (
    "grestws",
    "examples",
    "docs/examples",
    *sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "tests" / "typing").glob("*.py")
        if not path.name.startswith("fail_")
    ),
)


def run(*command: str) -> None:
    env = {**os.environ, "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1", "NO_COLOR": "1"}
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        output = f"{proc.stdout}\n{proc.stderr}".strip()
        pytest.fail(f"`{' '.join(command)}` exited with {proc.returncode}:\n{output}", pytrace=False)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mypy() -> None:
    run(sys.executable, "-m", "mypy", *TYPED)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pyright() -> None:
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent))
    assert pyright is not None, f"pyright is not installed next to {sys.executable}: pip install -e '.[dev]'"
    run(pyright, "--pythonpath", sys.executable, *TYPED)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ruff_check() -> None:
    run(sys.executable, "-m", "ruff", "check", ".")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ruff_format() -> None:
    run(sys.executable, "-m", "ruff", "format", "--check", ".")
