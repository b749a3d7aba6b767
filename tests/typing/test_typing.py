"""The typed surface, as mypy --strict and pyright (strict) see it.

The files next to this one are checked, never run:

``reveal_*.py``
    Valid user code. Every ``reveal_type(...)`` line states the type the checkers must
    infer, and no line may get an error, so a proxy, a result or an error's data that
    turned into ``Any`` fails here.
``fail_*.py``
    Deliberate mistakes. Every line with a mistake states the errors it must get, and no
    other line may get one, so a mistake that stops being caught fails here.

Expectations are trailing comments; several may follow one another on a line:

``# R: <type>``
    Both checkers reveal ``<type>`` on this line. ``# R[mypy]: <type>`` or
    ``# R[pyright]: <type>`` states it for one checker, where their spellings differ.
    Types are compared after dropping module prefixes (``examples.chat.contract.Message``
    is ``Message``), mypy's ``def`` before a callable and pyright's ``Type`` suffix of
    ``CoroutineType``, so one spelling usually serves both.
``# E: <codes>``
    Exactly these errors on this line: mypy's error codes (``arg-type``) and pyright's
    rules (``reportArgumentType``), told apart by the ``report`` prefix. A checker with no
    code listed must report nothing on the line.
``# hole[mypy,pyright]: <why>``
    The line states what the library should give, which the named checkers do not give
    yet. Those lines are left out of the per-file checks and asserted one by one as strict
    xfails, so closing the hole fails the suite until the marker is removed.

Each checker runs once, over all the files, with the project's configuration.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tokenize
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHECKERS = ("mypy", "pyright")
FILES = tuple(sorted(path for path in HERE.glob("*.py") if path.name.startswith(("reveal_", "fail_"))))


# -- what the files expect -------------------------------------------------------------


@dataclass
class Expected:
    """One file's expectations, by checker and line."""

    reveals: dict[str, dict[int, str]] = field(default_factory=lambda: {c: {} for c in CHECKERS})
    errors: dict[str, dict[int, frozenset[str]]] = field(default_factory=lambda: {c: {} for c in CHECKERS})
    holes: dict[str, dict[int, str]] = field(default_factory=lambda: {c: {} for c in CHECKERS})


_QUALIFIER = re.compile(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])")


def normalise(revealed: str) -> str:
    """One spelling for a type as either checker prints it."""
    text = _QUALIFIER.sub("", revealed)
    text = re.sub(r"\bdef (?=\()", "", text)
    text = re.sub(r"\bCoroutineType\[", "Coroutine[", text)
    return " ".join(text.split())


_MARK = re.compile(r"(?P<kind>R|E|hole)\b")
_SEGMENT = re.compile(r"(?P<kind>R|E|hole)(?:\[(?P<which>[a-z]+(?:,\s*[a-z]+)*)\])?:\s*(?P<text>.*?)\s*")


def _checkers(which: str | None, where: str) -> tuple[str, ...]:
    if which is None:
        return CHECKERS
    names = tuple(name.strip() for name in which.split(","))
    unknown = set(names) - set(CHECKERS)
    if unknown:
        raise ValueError(f"{where}: unknown checker {sorted(unknown)}")
    return names


def parse_expectations(path: Path) -> Expected:
    """Read the ``# R:``, ``# E:`` and ``# hole:`` comments of one file."""
    expected = Expected()
    source = path.read_text()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        line = token.start[0]
        where = f"{path.name}:{line}"
        for segment in re.split(r"\s*#\s*", token.string)[1:]:
            if not _MARK.match(segment):
                continue
            match = _SEGMENT.fullmatch(segment)
            if match is None:
                raise ValueError(f"{where}: cannot read {segment!r}")
            kind, text = match["kind"], match["text"]
            if kind == "R":
                for checker in _checkers(match["which"], where):
                    expected.reveals[checker][line] = normalise(text)
            elif kind == "E":
                if match["which"] is not None:
                    raise ValueError(f"{where}: write E without [checker]; codes name their checker")
                codes = text.replace(",", " ").split()
                expected.errors["pyright"][line] = frozenset(c for c in codes if c.startswith("report"))
                expected.errors["mypy"][line] = frozenset(c for c in codes if not c.startswith("report"))
            else:
                for checker in _checkers(match["which"], where):
                    expected.holes[checker][line] = text
    return expected


EXPECTED = {path.name: parse_expectations(path) for path in FILES}


# -- what the checkers say -------------------------------------------------------------


@dataclass
class Observed:
    """One checker's reveals and errors, by file name and line."""

    reveals: defaultdict[str, defaultdict[int, list[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    errors: defaultdict[str, defaultdict[int, list[tuple[str, str]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )


def _typing_file(name: str) -> str | None:
    path = Path(name)
    path = (path if path.is_absolute() else ROOT / path).resolve()
    return path.name if path.parent == HERE else None


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1", "NO_COLOR": "1"}
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=False)


def _relative(paths: tuple[Path, ...]) -> list[str]:
    return [str(path.relative_to(ROOT)) for path in paths]


_MYPY_REVEAL = re.compile(r'Revealed type is "(?P<type>.*)"', re.DOTALL)


def run_mypy() -> Observed:
    command = [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml", "--strict"]
    proc = _run([*command, "--output", "json", *_relative(FILES)])
    if proc.returncode not in (0, 1):
        pytest.fail(f"mypy failed to run (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    observed = Observed()
    for raw in proc.stdout.splitlines():
        if not raw.startswith("{"):
            continue
        item = json.loads(raw)
        name = _typing_file(item["file"])
        if name is None:
            continue
        line, message = int(item["line"]), str(item["message"])
        if item["severity"] == "error":
            observed.errors[name][line].append((item["code"] or "<no code>", message))
        elif revealed := _MYPY_REVEAL.fullmatch(message):
            observed.reveals[name][line].append(normalise(revealed["type"]))
    return observed


_PYRIGHT_REVEAL = re.compile(r'Type of ".*" is "(?P<type>.*)"', re.DOTALL)


def run_pyright() -> Observed:
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent))
    if pyright is None:
        pytest.fail(f"pyright is not installed next to {sys.executable}: pip install -e '.[dev]'")
    proc = _run([pyright, "--outputjson", "--pythonpath", sys.executable, *_relative(FILES)])
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright gave no JSON report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    if proc.returncode not in (0, 1) or report["summary"]["filesAnalyzed"] < len(FILES):
        pytest.fail(f"pyright did not check every file (exit {proc.returncode}):\n{proc.stdout}")
    observed = Observed()
    for item in report["generalDiagnostics"]:
        name = _typing_file(item["file"])
        if name is None:
            continue
        line, message = int(item["range"]["start"]["line"]) + 1, str(item["message"])
        if item["severity"] in ("error", "warning"):
            observed.errors[name][line].append((item.get("rule", "<no rule>"), message))
        elif revealed := _PYRIGHT_REVEAL.fullmatch(message):
            observed.reveals[name][line].append(normalise(revealed["type"]))
    return observed


@pytest.fixture(scope="module")
def mypy_observed() -> Observed:
    return run_mypy()


@pytest.fixture(scope="module")
def pyright_observed() -> Observed:
    return run_pyright()


# -- comparing them --------------------------------------------------------------------


def problems(checker: str, name: str, observed: Observed) -> dict[int, list[str]]:
    """What differs from the expectations of file ``name``, by line."""
    expected = EXPECTED[name]
    want_reveals = expected.reveals[checker]
    want_errors = expected.errors[checker]
    got_reveals = observed.reveals[name]
    got_errors = observed.errors[name]
    found: defaultdict[int, list[str]] = defaultdict(list)
    for line in sorted(set(want_reveals) | set(got_reveals)):
        want, got = want_reveals.get(line), got_reveals.get(line, [])
        if want is None:
            found[line] += [f"revealed {t!r} with no '# R:' expectation" for t in got]
        elif got != [want]:
            found[line].append(f"expected reveal {want!r}, got {got or 'no reveal'}")
    for line in sorted(set(want_errors) | set(got_errors)):
        want_codes = want_errors.get(line, frozenset())
        got_codes = {code for code, _ in got_errors.get(line, [])}
        found[line] += [f"expected error [{code}], not reported" for code in sorted(want_codes - got_codes)]
        found[line] += [
            f"unexpected error [{code}]: {message.splitlines()[0]}"
            for code, message in got_errors.get(line, [])
            if code not in want_codes
        ]
    return {line: messages for line, messages in found.items() if messages}


def report(checker: str, name: str, found: dict[int, list[str]]) -> str:
    source = (HERE / name).read_text().splitlines()
    out = [f"{checker} disagrees with the expectations in {name}:"]
    for line, messages in sorted(found.items()):
        out.append(f"  {name}:{line}: {source[line - 1].strip()}")
        out += [f"      {message}" for message in messages]
    return "\n".join(out)


# -- the tests -------------------------------------------------------------------------


def _cases() -> list[object]:
    return [
        pytest.param(checker, path.name, id=f"{checker}-{path.name}")
        for checker in CHECKERS
        for path in FILES
    ]


def _holes() -> list[object]:
    return [
        pytest.param(
            checker,
            name,
            line,
            id=f"{checker}-{name}:{line}",
            marks=pytest.mark.xfail(strict=True, reason=f"typing hole: {reason}"),
        )
        for checker in CHECKERS
        for name, expected in EXPECTED.items()
        for line, reason in sorted(expected.holes[checker].items())
    ]


@pytest.mark.parametrize(("checker", "name"), _cases())
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_expectations(checker: str, name: str, request: pytest.FixtureRequest) -> None:
    observed: Observed = request.getfixturevalue(f"{checker}_observed")
    holes = EXPECTED[name].holes[checker]
    found = {line: m for line, m in problems(checker, name, observed).items() if line not in holes}
    if found:
        pytest.fail(report(checker, name, found), pytrace=False)


@pytest.mark.parametrize(("checker", "name", "line"), _holes())
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_known_hole(checker: str, name: str, line: int, request: pytest.FixtureRequest) -> None:
    observed: Observed = request.getfixturevalue(f"{checker}_observed")
    found = problems(checker, name, observed).get(line)
    if found:
        pytest.fail(report(checker, name, {line: found}), pytrace=False)


def test_the_files_state_their_expectations() -> None:
    """Reveal files reveal and stay clean; fail files fail; every reveal states its type."""
    assert {p.name.split("_")[0] for p in FILES} == {"reveal", "fail"}
    missing: list[str] = []
    for path in FILES:
        expected = EXPECTED[path.name]
        if path.name.startswith("reveal_"):
            assert not expected.errors["mypy"], f"{path.name} is valid code: no '# E:' lines"
            calls = sorted(
                node.lineno
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Call) and ast.unparse(node.func) == "reveal_type"
            )
            assert calls, f"{path.name} reveals nothing"
            missing += [
                f"{path.name}:{n} ({checker})"
                for n in calls
                for checker in CHECKERS
                if n not in expected.reveals[checker]
            ]
        else:
            assert expected.errors["mypy"], f"{path.name} expects no errors"
    assert not missing, f"reveal_type without '# R:' expectation: {missing}"


def test_normalise() -> None:
    assert normalise("builtins.list[examples.chat.contract.Message]") == "list[Message]"
    callable_type = "(req: B) -> Coroutine[Any, Any, None]"
    assert normalise("def (req: a.B) -> typing.Coroutine[Any, Any, None]") == callable_type
    assert normalise("(req: B) -> CoroutineType[Any, Any, None]") == callable_type
    assert normalise("grestws.result.Ok[builtins.int] | grestws.result.Err") == "Ok[int] | Err"
