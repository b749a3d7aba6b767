"""Developer tasks: ``nox -s tests lint types``."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "types"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, with branch coverage."""
    session.install("-e", ".[dev]")
    session.run("pytest", "--cov", "--cov-report=term", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff format and ruff check."""
    session.install("ruff")
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")


@nox.session
def types(session: nox.Session) -> None:
    """mypy --strict and pyright (strict) over the package, the examples and the typing tests.

    ``tests/typing/fail_*.py`` hold deliberate mistakes and are left out here;
    ``tests/typing/test_typing.py`` asserts the errors they must get.
    """
    session.install("-e", ".[dev]")
    python = str(session.virtualenv.bin) + "/python"
    typing_files = sorted(
        path.as_posix() for path in Path("tests/typing").glob("*.py") if not path.name.startswith("fail_")
    )
    session.run("mypy", "grestws", "examples", "docs/examples", *typing_files)
    session.run("pyright", "--pythonpath", python, "grestws", "examples", "docs/examples", *typing_files)


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks against plain websockets and python-socketio, with grestws and
    python-socketio also served by uvicorn (see docs/performance.md)."""
    session.install("-e", ".[bench]")
    session.run("python", "-m", "benchmarks.run", *session.posargs)
