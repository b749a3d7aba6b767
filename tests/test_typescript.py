"""The TypeScript client generated from a contract (:mod:`grestws.typescript`).

Without Node: the types that msgspec's JSON Schema becomes, the names, the files, their
headers, determinism, and ``grestws typescript``. With Node and npm (tests/typescript has
the compiler; a session fixture installs it): the generated files pass ``tsc --strict``,
the mistakes of tests/typescript/mistakes.ts each fail it, the compiled runtime follows
the reconnect rules against a scripted WebSocket (tests/typescript/runtime-rules.ts), and
the compiled client talks to ``grestws serve tests.typescript_app:app``
(tests/typescript/runtime-check.ts), and the client of the chat example to the example
itself (tests/typescript/chat-check.ts).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import pytest

import grestws
from examples.chat.server import app as chat_app
from grestws.typescript import RUNTIME_FILE, generate, write
from grestws.typescript.api import file_stem
from grestws.typescript.types import TypeWriter, identifier
from tests.processes import grestws_serve
from tests.tooling import node, npm_ci
from tests.typescript_app import BoardApi
from tests.typescript_app import app as board_app

ROOT = Path(__file__).resolve().parent.parent
TOOLING = ROOT / "tests" / "typescript"
TSC_FLAGS = ("--strict", "--noEmit", "--pretty", "false", "--target", "es2022", "--lib", "es2022,dom")
VERSION = "9.9.9"
PROGRAMS = ("runtime-check.ts", "runtime-rules.ts")
"""The programs of tests/typescript that use the generated clients, compiled and run."""
CHAT_PROGRAM = "chat-check.ts"
HELPERS = "checks.ts"
"""What the programs share, copied beside each."""


def copy_programs(folder: Path, *programs: str) -> None:
    """Copy ``programs`` of tests/typescript, and their helpers, into ``folder``."""
    for program in (*programs, HELPERS):
        shutil.copy(TOOLING / program, folder)


"""The program of tests/typescript that uses the chat example's client (chat-api.ts only)."""


def files_of(target: object, source: str) -> dict[str, str]:
    return generate(target, version=VERSION, source=source)


# -- types ---------------------------------------------------------------------------------


def ts_of(tp: Any) -> tuple[str, list[str]]:
    """The TypeScript type of ``tp`` and the declarations of its components."""
    (schema,), components = msgspec.json.schema_components([tp], ref_template="#/$defs/{name}")
    writer = TypeWriter(components)
    return writer.type(schema), writer.declarations()


class Inner(msgspec.Struct, rename="camel"):
    """An inner thing."""

    some_value: int
    label: Annotated[str, msgspec.Meta(min_length=2, pattern="^[a-z]+$")] = "ab"


class Weird(msgspec.Struct, rename={"odd": "odd-name"}):
    odd: int


class Promise(msgspec.Struct):
    """A payload whose name the generated code needs for itself."""

    value: int


class TestTypes:
    @pytest.mark.parametrize(
        ("tp", "expected"),
        [
            (int, "number"),
            (float, "number"),
            (str, "string"),
            (bool, "boolean"),
            (None, "null"),
            (Any, "unknown"),
            (int | None, "number | null"),
            (list[int | str], "(number | string)[]"),
            (tuple[int, str], "[number, string]"),
            (tuple[int, ...], "number[]"),
            (set[str], "string[]"),
            (dict[str, list[int]], "{ [key: string]: number[] }"),
            (Literal["a", "b"], '"a" | "b"'),
            (Literal[1, 2], "1 | 2"),
            (bytes, "string /* base64 */"),
            (Annotated[Any, msgspec.Meta(description="x")], "unknown"),
            (list[Any], "unknown[]"),
        ],
    )
    def test_expressions(self, tp: Any, expected: str) -> None:
        assert ts_of(tp)[0] == expected

    def test_formats_are_comments(self) -> None:
        import datetime
        import uuid

        assert ts_of(uuid.UUID)[0] == "string /* UUID */"
        assert ts_of(datetime.date)[0] == "string /* date, YYYY-MM-DD */"
        assert ts_of(list[uuid.UUID])[0] == "(string /* UUID */)[]"

    def test_a_struct_is_an_interface_with_wire_names_and_jsdoc(self) -> None:
        text, declarations = ts_of(Inner)
        assert text == "Inner"
        assert "\n".join(declarations) == (
            "/** An inner thing. */\n"
            "export interface Inner {\n"
            "  someValue: number;\n"
            "  /**\n"
            "   * @minLength 2\n"
            '   * @pattern "^[a-z]+$"\n'
            '   * @default "ab"\n'
            "   */\n"
            "  label?: string;\n"
            "}\n"
        )

    def test_a_property_that_is_no_identifier_is_quoted(self) -> None:
        assert '  "odd-name": number;' in ts_of(Weird)[1]

    def test_a_name_the_code_needs_is_not_taken(self) -> None:
        text, declarations = ts_of(list[Promise])
        assert text == "Promise2[]"
        assert "export interface Promise2 {" in declarations

    def test_identifiers(self) -> None:
        assert identifier("a.b-c") == "a_b_c"
        assert identifier("1x") == "_1x"
        assert identifier("class") == "class2"
        assert identifier("Chat", {"Chat", "Chat2"}) == "Chat3"

    @pytest.mark.parametrize(
        ("name", "stem"),
        [
            ("ChatApi", "chat-api"),
            ("Ticker", "ticker-api"),
            ("HTTPStatusAPI", "http-status-api"),
            ("Api", "api"),
        ],
    )
    def test_file_names(self, name: str, stem: str) -> None:
        assert file_stem(name) == stem


# -- files -----------------------------------------------------------------------------------


class TestFiles:
    def test_one_runtime_and_one_api_file_per_contract(self) -> None:
        assert list(files_of(chat_app, "examples.chat.server:app")) == ["chat-api.ts", RUNTIME_FILE]
        assert list(files_of(board_app, "tests.typescript_app:app")) == [
            "board-api.ts",
            "chat-api.ts",
            RUNTIME_FILE,
        ]

    def test_every_file_has_the_header(self) -> None:
        for text in files_of(board_app, "tests.typescript_app:app").values():
            assert text.startswith("// Generated by grestws 9.9.9 from tests.typescript_app:app. Do not edit")

    def test_the_source_defaults_to_the_contracts_modules(self) -> None:
        text = generate(BoardApi, version="1.0")["board-api.ts"]
        assert text.startswith("// Generated by grestws 1.0 from tests.typescript_app.")

    def test_one_contract_at_two_paths_has_two_clients(self) -> None:
        other = BoardApi.contract.at("/ws/other")
        text = files_of([BoardApi, other], "x")["board-api.ts"]
        assert "export class BoardApiWsBoardClient " in text
        assert "export class BoardApiWsOtherClient " in text
        assert "grestws.ClientOptions<BoardServer, BoardClient, grestws.NoQuery>" in text

    def test_wire_names_errors_and_query(self) -> None:
        text = files_of(board_app, "tests.typescript_app:app")["board-api.ts"]
        assert "  createPost(post: NewPost): Promise<Post>;" in text
        assert "  getPost(postId: number): Promise<Post | null>;" in text
        assert "  touch(postId: number): Promise<void>;" in text
        assert "  confirm?(question: Question): boolean | Promise<boolean>;" in text
        assert "  postCreated?(post: Post): void | Promise<void>;" in text
        assert "export class BoardFullError extends grestws.ApiError<BoardInfo> {" in text
        assert '  static override readonly TYPE = "BOARD_FULL";' in text
        assert "export class LockedError extends grestws.ApiError<unknown> {" in text
        assert "grestws.ClientOptions<BoardServer, BoardClient, BoardQuery>" in text
        assert "@throws {grestws.NotFoundError} NOT_FOUND (404)" in text
        assert 'errors: ["BOARD_FULL", "NOT_FOUND"]' in text
        assert "idempotent: true" in text

    def test_nothing_to_generate(self) -> None:
        with pytest.raises(ValueError, match="no schema"):
            generate([], version="1")
        with pytest.raises(ValueError, match="expected a grestws App"):
            generate(42, version="1")
        with pytest.raises(ValueError, match="expected SocketSchemas"):
            generate([BoardApi, "x"], version="1")

    def test_write(self, tmp_path: Path) -> None:
        files = files_of(chat_app, "x")
        written = write(files, tmp_path / "out" / "ts")
        assert [path.name for path in written] == list(files)
        assert all(path.read_text(encoding="utf-8") == files[path.name] for path in written)


GENERATE = """
import sys
from grestws.typescript import generate
from tests.typescript_app import app
for name, text in generate(app, version="1", source="s").items():
    sys.stdout.write(f"== {name}\\n{text}")
"""


def test_the_same_contract_gives_the_same_bytes() -> None:
    runs = [
        subprocess.run(
            [sys.executable, "-c", GENERATE],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1]
    assert runs[0].decode() == "".join(
        f"== {name}\n{text}" for name, text in generate(board_app, version="1", source="s").items()
    )


# -- the command -------------------------------------------------------------------------------


def grestws_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grestws", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


class TestCommand:
    def test_writes_what_generate_makes(self, tmp_path: Path) -> None:
        done = grestws_command("typescript", "examples.chat.server:app", "-o", str(tmp_path / "ts"))
        assert done.returncode == 0, done.stderr
        expected = generate(chat_app, version=grestws.__version__, source="examples.chat.server:app")
        assert done.stdout.splitlines() == [str(tmp_path / "ts" / name) for name in expected]
        assert {
            path.name: path.read_text(encoding="utf-8") for path in (tmp_path / "ts").iterdir()
        } == expected

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["examples.chat.server:app"], "the following arguments are required: -o/--output"),
            (["examples.chat.server", "-o", "x"], "expected MODULE:ATTR"),
            (["examples.chat.nothere:app", "-o", "x"], "No module named"),
            (["examples.chat.server:nothing", "-o", "x"], "has no attribute 'nothing'"),
            (["examples.chat.contract:ChatApi", "-o", "x"], "not a grestws.App"),
        ],
    )
    def test_usage_errors(self, args: list[str], message: str, tmp_path: Path) -> None:
        done = grestws_command("typescript", *args)
        assert done.returncode == 2
        assert message in done.stderr
        assert done.stdout == ""

    def test_a_folder_that_cannot_be_made(self, tmp_path: Path) -> None:
        blocker = tmp_path / "file"
        blocker.write_text("")
        done = grestws_command("typescript", "examples.chat.server:app", "-o", str(blocker / "ts"))
        assert done.returncode == 1
        assert "cannot write" in done.stderr


# -- with Node ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tsc() -> list[str]:
    """The TypeScript compiler of tests/typescript, installed there when missing."""
    return [node(), str(npm_ci(TOOLING) / "typescript" / "bin" / "tsc")]


def run_tsc(tsc: list[str], folder: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    names = sorted(path.name for path in folder.glob("*.ts"))
    return subprocess.run(
        [*tsc, *flags, *names], cwd=folder, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def board_files(tmp_path: Path) -> Path:
    write(files_of(board_app, "tests.typescript_app:app"), tmp_path)
    return tmp_path


@pytest.mark.slow
@pytest.mark.timeout(180)
class TestCompiles:
    def test_the_chat(self, tsc: list[str], tmp_path: Path) -> None:
        write(files_of(chat_app, "examples.chat.server:app"), tmp_path)
        done = run_tsc(tsc, tmp_path, *TSC_FLAGS)
        assert (done.returncode, done.stdout) == (0, "")

    def test_the_chat_and_a_program_that_uses_it(self, tsc: list[str], tmp_path: Path) -> None:
        write(files_of(chat_app, "examples.chat.server:app"), tmp_path)
        copy_programs(tmp_path, CHAT_PROGRAM)
        done = run_tsc(tsc, tmp_path, *TSC_FLAGS)
        assert (done.returncode, done.stdout) == (0, "")

    def test_the_rich_contract_and_a_program_that_uses_it(self, tsc: list[str], board_files: Path) -> None:
        copy_programs(board_files, *PROGRAMS)
        done = run_tsc(tsc, board_files, *TSC_FLAGS)
        assert (done.returncode, done.stdout) == (0, "")

    def test_without_the_dom_library(self, tsc: list[str], board_files: Path) -> None:
        done = run_tsc(tsc, board_files, "--strict", "--noEmit", "--target", "es2022", "--lib", "es2022")
        assert (done.returncode, done.stdout) == (0, "")

    def test_under_the_strictest_options(self, tsc: list[str], board_files: Path) -> None:
        strictest = (
            *("--module", "nodenext", "--moduleResolution", "nodenext"),
            "--exactOptionalPropertyTypes",
            "--noUncheckedIndexedAccess",
            "--noImplicitOverride",
            "--noPropertyAccessFromIndexSignature",
            "--noUnusedLocals",
            "--noUnusedParameters",
            "--noImplicitReturns",
        )
        done = run_tsc(tsc, board_files, *TSC_FLAGS, *strictest)
        assert (done.returncode, done.stdout) == (0, "")

    def test_each_mistake_fails(self, tsc: list[str], board_files: Path) -> None:
        source = (TOOLING / "mistakes.ts").read_text(encoding="utf-8")
        shutil.copy(TOOLING / "mistakes.ts", board_files)
        expected = {
            (number, match.group(1))
            for number, line in enumerate(source.splitlines(), 1)
            if (match := re.search(r"// (TS\d+)$", line))
        }
        done = run_tsc(tsc, board_files, *TSC_FLAGS)
        found = {
            (int(match.group(2)), match.group(3))
            for match in re.finditer(r"^(\S+)\((\d+),\d+\): error (TS\d+):", done.stdout, re.MULTILINE)
        }
        others = [
            line
            for line in done.stdout.splitlines()
            if "error" in line and not line.startswith("mistakes.ts")
        ]
        assert len(expected) >= 15
        assert found == expected, done.stdout
        assert others == []


def node_websocket(executable: str) -> list[str]:
    """How to run Node with the WebSocket global: a flag before Node 22."""
    probe = subprocess.run(
        [executable, "-e", "process.stdout.write(typeof WebSocket)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return [executable] if probe.stdout == "function" else [executable, "--experimental-websocket"]


def compile_to_js(tsc: list[str], folder: Path) -> Path:
    """Compile the .ts files of ``folder`` to ES modules in ``folder/js``, for Node."""
    done = run_tsc(
        tsc,
        folder,
        "--strict",
        "--target",
        "es2022",
        "--lib",
        "es2022,dom",
        "--module",
        "es2022",
        "--outDir",
        "js",
    )
    assert done.returncode == 0, done.stdout
    (folder / "js" / "package.json").write_text(json.dumps({"type": "module"}))
    return folder / "js"


@pytest.fixture
def compiled(tsc: list[str], board_files: Path) -> Path:
    copy_programs(board_files, *PROGRAMS)
    return compile_to_js(tsc, board_files)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_the_compiled_client_talks_to_a_server(tsc: list[str], compiled: Path) -> None:
    command = node_websocket(tsc[0])
    async with grestws_serve("tests.typescript_app:app", "--recovery", "60") as url:
        process = await asyncio.create_subprocess_exec(
            *command, str(compiled / "runtime-check.js"), url, stdout=asyncio.subprocess.PIPE
        )
        stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    lines = stdout.decode().splitlines()
    assert process.returncode == 0, "\n".join(lines)
    assert lines == [
        "ok call",
        "ok push",
        "ok validation error",
        "ok disconnect",
        "ok recovery",
        "ok query and token provider",
        "ok typed call and push",
        "ok declared error",
        "ok server to client request",
        "ok liveness",
        "ok reconnect",
        "ok pending calls fail on close",
        "ok bad token refused",
    ]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_the_runtime_rules(tsc: list[str], compiled: Path) -> None:
    """tests/typescript/runtime-rules.ts: what is sent again, what is final, liveness,
    recovery, against a scripted WebSocket."""
    done = subprocess.run(
        [tsc[0], str(compiled / "runtime-rules.js")], capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "ok handshake, query, p/o",
        "ok idempotent requests sent again after a drop",
        "ok UNAVAILABLE and drained requests sent again",
        "ok restart spread",
        "ok UNAVAILABLE on a live connection: sent again on it",
        "ok final closes",
        "ok a refused handshake is final",
        "ok refusals at connect",
        "ok calls wait for the connection",
        "ok liveness",
        "ok recovery",
    ]


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_the_compiled_client_talks_to_the_chat_example(tsc: list[str], tmp_path: Path) -> None:
    """tests/typescript/chat-check.ts: the client generated from the chat example against
    ``grestws serve examples.chat.server:app``."""
    write(files_of(chat_app, "examples.chat.server:app"), tmp_path)
    copy_programs(tmp_path, CHAT_PROGRAM)
    compiled = compile_to_js(tsc, tmp_path)
    command = node_websocket(tsc[0])
    async with grestws_serve("examples.chat.server:app") as url:
        process = await asyncio.create_subprocess_exec(
            *command, str(compiled / "chat-check.js"), url, stdout=asyncio.subprocess.PIPE
        )
        stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    lines = stdout.decode().splitlines()
    assert process.returncode == 0, "\n".join(lines)
    assert lines == [
        "ok request, fire-and-forget calls and the typing push",
        "ok newMessage reaches both clients",
        "ok whoIsHere asks every connection in the channel",
        "ok declared error READ_ONLY_CHANNEL",
        "ok FORBIDDEN and deleteMessage",
        "ok validation error",
        "ok bad token refused",
        "ok pending calls fail on close",
    ]
