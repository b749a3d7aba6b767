"""The AsyncAPI document of an App (grestws.asyncapi): valid by the AsyncAPI project's own
parser, what it says about channels, operations, payloads, errors and permissions, written
the same way every time, by the function, by ``grestws asyncapi`` and by the ASGI app.

The parser is ``@asyncapi/parser`` run by Node (tests/node/validate-asyncapi.mjs); the
``asyncapi_parser`` fixture installs it with ``npm ci`` when its packages are missing or
older than tests/node/package-lock.json, and skips the tests that need it only where
``node`` or ``npm`` is not on PATH.
"""

from __future__ import annotations

import html
import itertools
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

import grestws
from examples.chat import server as chat
from grestws.asyncapi import (
    WEB_COMPONENT_CSS,
    WEB_COMPONENT_JS,
    AsyncApiApp,
    asyncapi_app,
    asyncapi_document,
    dumps,
)
from tests import asyncapi_app as board
from tests import tooling
from tests.processes import uvicorn_in_process
from tests.support import Hub, RoomApi, RoomHandler, SkewHandler, SkewServerSide

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / "tests" / "node"
SERVERS = {"local": "ws://127.0.0.1:8765", "production": "wss://chat.example.com/rt"}

# -- the AsyncAPI parser --------------------------------------------------------------------


class Diagnostic(msgspec.Struct):
    severity: str
    code: str
    message: str
    path: str


class Report(msgspec.Struct, rename="camel"):
    """What tests/node/validate-asyncapi.mjs prints."""

    valid: bool
    parser_version: str
    errors: int
    warnings: int
    diagnostics: list[Diagnostic]

    def shown(self, severity: str) -> list[str]:
        return [f"{d.path}: {d.message} ({d.code})" for d in self.diagnostics if d.severity == severity]


Validate = Callable[[dict[str, Any]], Report]


@pytest.fixture(scope="session")
def asyncapi_parser(tmp_path_factory: pytest.TempPathFactory) -> Validate:
    """``validate(document)``: the AsyncAPI parser's report on ``document``."""
    node = tooling.node()
    tooling.npm_ci(NODE_DIR)
    folder = tmp_path_factory.mktemp("asyncapi")
    runs = itertools.count()

    def validate(document: dict[str, Any]) -> Report:
        path = folder / f"document-{next(runs)}.json"
        path.write_text(dumps(document), encoding="utf-8")
        done = subprocess.run(
            [node, str(NODE_DIR / "validate-asyncapi.mjs"), str(path)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode in (0, 1), done.stderr.decode()
        report = msgspec.json.decode(done.stdout, type=Report)
        print(f"@asyncapi/parser {report.parser_version}: {report.errors} errors, {report.warnings} warnings")
        for line in report.shown("warning"):
            print("  warning:", line)
        return report

    return validate


# -- the Apps described -------------------------------------------------------------------


def room_app() -> grestws.App:
    app = grestws.App()
    hub = Hub()
    app.add(RoomApi, lambda conn: RoomHandler(conn, hub))
    app.add(SkewServerSide, SkewHandler)
    return app


APPS: dict[str, Callable[[], grestws.App]] = {
    "chat": lambda: chat.app,
    "room-and-skew": room_app,
    "board": board.make_app,
    "empty": grestws.App,
}


@pytest.fixture(scope="module")
def chat_doc() -> dict[str, Any]:
    return asyncapi_document(chat.app, servers=SERVERS)


@pytest.fixture(scope="module")
def board_doc() -> dict[str, Any]:
    return asyncapi_document(board.make_app())


def resolve(document: dict[str, Any], ref: dict[str, Any]) -> Any:
    """What a local ``{"$ref": "#/..."}`` points at."""
    target: Any = document
    for part in ref["$ref"].removeprefix("#/").split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


def message(document: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """The message a reference of an operation names (through its channel)."""
    found: dict[str, Any] = resolve(document, resolve(document, ref))
    return found


def keys_in(value: Any) -> Iterator[str]:
    """Every key of every object in ``value``, at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():  # pyright: ignore[reportUnknownVariableType]
            yield str(key)  # pyright: ignore[reportUnknownArgumentType]
            yield from keys_in(item)
    elif isinstance(value, list):
        for item in value:  # pyright: ignore[reportUnknownVariableType]
            yield from keys_in(item)


# -- valid, by the AsyncAPI parser --------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(600)  # the first test may install the parser
class TestTheAsyncApiParser:
    @pytest.mark.parametrize("name", sorted(APPS))
    def test_finds_no_errors(self, asyncapi_parser: Validate, name: str) -> None:
        report = asyncapi_parser(asyncapi_document(APPS[name](), servers=SERVERS))
        assert report.errors == 0, "\n".join(report.shown("error"))
        assert report.valid

    def test_finds_the_errors_of_a_broken_document(self, asyncapi_parser: Validate) -> None:
        document = asyncapi_document(chat.app)
        document["operations"]["ChatApi.ping"]["action"] = "listen"
        document["components"]["messages"]["ChatApi.clientToServer.sendMessage"]["payload"] = {
            "$ref": "#/components/schemas/Nowhere"
        }
        report = asyncapi_parser(document)
        assert not report.valid
        errors = "\n".join(report.shown("error"))
        assert "Nowhere" in errors
        assert "operations/ChatApi.ping/action" in errors


# -- what the document says ----------------------------------------------------------------


class TestChannels:
    def test_one_per_schema_at_its_path(self, chat_doc: dict[str, Any], board_doc: dict[str, Any]) -> None:
        assert chat_doc["asyncapi"] == "3.0.0"
        assert {name: channel["address"] for name, channel in chat_doc["channels"].items()} == {
            "ChatApi": "/ws/chat"
        }
        assert {name: channel["address"] for name, channel in board_doc["channels"].items()} == {
            "Board_ws_board": "/ws/board",
            "Board_ws_board_archive": "/ws/board/archive",
            "Notes": "/notes",
        }
        assert board_doc["channels"]["Notes"]["x-grestws-contract"] == "Notes"

    def test_the_query_type_is_the_websocket_binding_query(self, board_doc: dict[str, Any]) -> None:
        binding = board_doc["channels"]["Board_ws_board"]["bindings"]["ws"]
        assert binding["method"] == "GET"
        assert binding["query"]["type"] == "object"
        assert binding["query"]["properties"] == {
            "board": {"type": "string", "minLength": 1},
            "page": {"type": "integer", "default": 1},
            "live": {"type": "boolean", "default": False},
        }
        assert binding["query"]["required"] == ["board"]
        assert "query" not in board_doc["channels"]["Board_ws_board_archive"]["bindings"]["ws"]

    def test_the_connect_permission(self, board_doc: dict[str, Any]) -> None:
        assert board_doc["channels"]["Board_ws_board"]["x-grestws-permission"] == "board:view"
        assert "x-grestws-permission" not in board_doc["channels"]["Notes"]
        handshake = board_doc["operations"]["Board_ws_board.handshake"]
        assert handshake["x-grestws-permission"] == "board:view"

    def test_every_message_of_an_operation_is_in_its_channel(self, board_doc: dict[str, Any]) -> None:
        for operation in board_doc["operations"].values():
            refs = [*operation["messages"], *operation.get("reply", {}).get("messages", [])]
            for ref in refs:
                assert ref["$ref"].startswith(operation["channel"]["$ref"] + "/messages/")
                assert message(board_doc, ref)["x-grestws-frame"]["type"] in "hkxprsmo"


class TestOperations:
    def test_one_per_method_with_the_action_of_the_server(self, chat_doc: dict[str, Any]) -> None:
        actions = {name: operation["action"] for name, operation in chat_doc["operations"].items()}
        assert actions == {
            "ChatApi.handshake": "receive",
            "ChatApi.ping": "receive",
            "ChatApi.clientToServer.sendMessage": "receive",
            "ChatApi.clientToServer.markAsRead": "receive",
            "ChatApi.clientToServer.ping": "receive",
            "ChatApi.clientToServer.isTyping": "receive",
            "ChatApi.clientToServer.whoIsHere": "receive",
            "ChatApi.clientToServer.deleteMessage": "receive",
            "ChatApi.serverToClient.newMessage": "send",
            "ChatApi.serverToClient.typing": "send",
            "ChatApi.serverToClient.areYouThere": "send",
        }

    def test_a_request_has_a_reply_a_notification_none(self, chat_doc: dict[str, Any]) -> None:
        operations = chat_doc["operations"]
        for name, operation in operations.items():
            assert ("reply" in operation) == (operation.get("x-grestws-kind") != "notify"), name
        reply = operations["ChatApi.clientToServer.sendMessage"]["reply"]
        assert reply["channel"] == {"$ref": "#/channels/ChatApi"}
        result, error = (message(chat_doc, ref) for ref in reply["messages"])
        assert result["x-grestws-frame"] == {"type": "s", "path": "ChatApi.sendMessage", "success": True}
        assert result["payload"]["properties"]["data"] == {"$ref": "#/components/schemas/SendMessageResponse"}
        assert result["payload"]["required"] == ["success", "type", "data"]
        assert error["x-grestws-frame"] == {"type": "s", "path": "ChatApi.sendMessage", "success": False}

    def test_a_server_request_is_sent_and_its_reply_received(self, chat_doc: dict[str, Any]) -> None:
        operation = chat_doc["operations"]["ChatApi.serverToClient.areYouThere"]
        assert operation["action"] == "send"
        call = message(chat_doc, operation["messages"][0])
        assert call["x-grestws-frame"] == {"type": "r", "path": "ChatApi.areYouThere", "data": "empty"}
        assert "payload" not in call
        result = message(chat_doc, operation["reply"]["messages"][0])
        assert result["payload"]["properties"]["data"] == {"type": "boolean"}

    def test_a_method_without_result_answers_without_data(self, board_doc: dict[str, Any]) -> None:
        operation = board_doc["operations"]["Board_ws_board.clientToServer.watchBoard"]
        result = message(board_doc, operation["reply"]["messages"][0])
        assert "data" not in result["payload"]["properties"]
        assert result["payload"]["required"] == ["success", "type"]

    def test_wire_names_and_frames(self, chat_doc: dict[str, Any]) -> None:
        operation = chat_doc["operations"]["ChatApi.clientToServer.markAsRead"]
        call = message(chat_doc, operation["messages"][0])
        assert operation["x-grestws-path"] == call["name"] == "ChatApi.markAsRead"
        assert call["x-grestws-frame"] == {"type": "m", "path": "ChatApi.markAsRead", "data": "json"}
        assert call["headers"] == {"$ref": "#/components/schemas/grestws.FrameHeaders.m"}
        assert "correlationId" not in call
        request = message(
            chat_doc, chat_doc["operations"]["ChatApi.clientToServer.sendMessage"]["messages"][0]
        )
        assert request["correlationId"] == {"$ref": "#/components/correlationIds/grestws.requestId"}
        assert resolve(chat_doc, request["correlationId"])["location"] == "$message.header#/id"

    def test_a_wire_name_in_both_directions_and_one_that_is_no_identifier(
        self, board_doc: dict[str, Any]
    ) -> None:
        operations = board_doc["operations"]
        assert operations["Board_ws_board.clientToServer.draw"]["action"] == "receive"
        assert operations["Board_ws_board.serverToClient.draw"]["action"] == "send"
        snapshot = operations["Board_ws_board.clientToServer.snapshot_v2"]
        assert snapshot["x-grestws-path"] == "Board.snapshot/v2"
        assert snapshot["title"] == "snapshot/v2"

    def test_docstrings(self, board_doc: dict[str, Any]) -> None:
        draw = board_doc["operations"]["Board_ws_board.clientToServer.draw"]
        assert draw["summary"] == "Add a drawing to the board."
        assert draw["description"].endswith("Everyone watching the board gets it as ``drawn``.")
        erase = board_doc["operations"]["Board_ws_board.clientToServer.eraseAll"]
        assert erase["summary"] == "Erase every drawing."
        assert "description" not in erase

    def test_rate_deadline_idempotent_topics(self, board_doc: dict[str, Any]) -> None:
        operations = board_doc["operations"]
        draw = operations["Board_ws_board.clientToServer.draw"]
        assert draw["x-grestws-rate"] == {"count": 10, "per": 60, "burst": 20}
        assert draw["x-grestws-deadline"] == 2.5
        assert draw["x-grestws-idempotent"] is True
        assert operations["Board_ws_board.clientToServer.watchBoard"]["x-grestws-topic"] == {
            "name": "board",
            "watch": True,
        }
        assert operations["Board_ws_board.clientToServer.unwatchBoard"]["x-grestws-topic"] == {
            "name": "board",
            "watch": False,
        }
        assert "x-grestws-rate" not in operations["Board_ws_board.clientToServer.eraseAll"]


class TestPayloads:
    def test_components_with_wire_names(self, chat_doc: dict[str, Any]) -> None:
        schemas = chat_doc["components"]["schemas"]
        assert schemas["SendMessageRequest"]["properties"] == {
            "text": {"type": "string", "minLength": 1},
            "channelId": {"type": "string"},
        }
        assert schemas["Message"]["required"] == ["id", "text", "senderId", "timestamp"]
        call = message(chat_doc, chat_doc["operations"]["ChatApi.serverToClient.newMessage"]["messages"][0])
        assert call["payload"] == {"$ref": "#/components/schemas/Message"}

    def test_unions_enums_optional_fields_tuples(self, board_doc: dict[str, Any]) -> None:
        schemas = board_doc["components"]["schemas"]
        drawing = schemas["Drawing"]["properties"]
        assert drawing["shapes"]["items"] == {
            "anyOf": [{"$ref": "#/components/schemas/Circle"}, {"$ref": "#/components/schemas/Square"}]
        }
        assert schemas["Circle"]["properties"]["type"] == {"enum": ["circle"]}
        assert schemas["Square"]["properties"]["sideCm"] == {"type": "number", "exclusiveMinimum": 0}
        assert drawing["noteText"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
        assert drawing["color"]["$ref"] == "#/components/schemas/Color"
        assert schemas["Color"]["enum"] == ["green", "red"]
        assert drawing["corner"]["items"] == [{"type": "integer"}, {"type": "integer"}]
        assert drawing["corner"]["additionalItems"] is False
        assert schemas["Drawn"]["properties"] == {
            "drawingId": {"type": "string"},
            "revision": {"type": "integer"},
        }

    def test_only_what_draft_07_knows(self, board_doc: dict[str, Any]) -> None:
        keys = set(keys_in(board_doc["components"]["schemas"]))
        assert not keys & {"prefixItems", "discriminator", "$defs"}

    def test_only_json_types(self, board_doc: dict[str, Any]) -> None:
        assert json.loads(json.dumps(board_doc)) == board_doc


class TestErrors:
    def test_declared_errors_with_their_data(self, board_doc: dict[str, Any]) -> None:
        draw = board_doc["operations"]["Board_ws_board.clientToServer.draw"]
        assert draw["x-grestws-errors"] == ["BOARD_FULL", "LOCKED"]
        error = message(board_doc, draw["reply"]["messages"][1])
        types = [resolve(board_doc, ref)["properties"]["type"]["const"] for ref in error["payload"]["oneOf"]]
        assert types == [
            "BOARD_FULL",
            "FORBIDDEN",
            "LOCKED",
            "NOT_AUTHORIZED",
            "ROUTE_NOT_FOUND",
            "SERVER_ERROR",
            "TOO_MANY_REQUESTS",
            "UNAVAILABLE",
            "VALIDATION_ERROR",
        ]
        schemas = board_doc["components"]["schemas"]
        full = schemas["grestws.ErrorEnvelope.BOARD_FULL"]
        assert full["properties"]["data"] == {"$ref": "#/components/schemas/BoardInfo"}
        assert full["properties"]["statusCode"] == {"type": "integer", "const": 409}
        assert full["properties"]["success"] == {"const": False}
        assert full["required"] == ["success", "type"]
        assert full["description"] == "The board has no room for another drawing."
        assert "data" not in schemas["grestws.ErrorEnvelope.LOCKED"]["properties"]
        assert (
            schemas["grestws.ErrorEnvelope.ARCHIVED"]["description"] == "The error ARCHIVED."
        )  # no docstring
        issues = schemas["grestws.ErrorEnvelope.VALIDATION_ERROR"]["properties"]["data"]
        assert issues == {"type": "array", "items": {"$ref": "#/components/schemas/Issue"}}

    def test_a_method_that_declares_none(self, chat_doc: dict[str, Any]) -> None:
        operation = chat_doc["operations"]["ChatApi.clientToServer.whoIsHere"]
        assert operation["x-grestws-errors"] == []
        error = message(chat_doc, operation["reply"]["messages"][1])
        assert len(error["payload"]["oneOf"]) == 7  # the errors every method may answer

    def test_the_chats_declared_error(self, chat_doc: dict[str, Any]) -> None:
        operation = chat_doc["operations"]["ChatApi.clientToServer.sendMessage"]
        assert operation["x-grestws-errors"] == ["READ_ONLY_CHANNEL"]
        error = message(chat_doc, operation["reply"]["messages"][1])
        assert len(error["payload"]["oneOf"]) == 8

    def test_the_handshake_refusal(self, chat_doc: dict[str, Any]) -> None:
        handshake = chat_doc["operations"]["ChatApi.handshake"]
        accepted, refused = (message(chat_doc, ref) for ref in handshake["reply"]["messages"])
        assert accepted["x-grestws-frame"] == {"type": "k"}
        assert refused["x-grestws-frame"] == {"type": "x"}
        assert refused["payload"]["anyOf"][-1] == {"$ref": "#/components/schemas/grestws.ErrorEnvelope"}


class TestPermissions:
    def test_methods(self, chat_doc: dict[str, Any], board_doc: dict[str, Any]) -> None:
        delete = chat_doc["operations"]["ChatApi.clientToServer.deleteMessage"]
        assert delete["x-grestws-permission"] == "chat:admin"
        assert delete["security"] == [{"$ref": "#/components/securitySchemes/bearer"}]
        send = chat_doc["operations"]["ChatApi.clientToServer.sendMessage"]
        assert send["x-grestws-permission"] == "*"
        assert "security" not in send
        assert "x-grestws-permission" not in chat_doc["operations"]["ChatApi.serverToClient.newMessage"]
        erase = board_doc["operations"]["Board_ws_board.clientToServer.eraseAll"]
        assert erase["x-grestws-permission"] == {
            "any": ["board:admin", {"all": ["board:draw", "board:erase"]}]
        }

    def test_the_bearer_token_of_the_h_frame(
        self, chat_doc: dict[str, Any], board_doc: dict[str, Any]
    ) -> None:
        scheme = chat_doc["components"]["securitySchemes"]["bearer"]
        assert (scheme["type"], scheme["scheme"], scheme["x-grestws-header"]) == (
            "http",
            "bearer",
            "authorization",
        )
        assert "`h` frame" in scheme["description"]
        assert scheme["x-grestws-scopes"] == ["chat:admin"]
        handshake = chat_doc["operations"]["ChatApi.handshake"]
        assert handshake["security"] == [{"$ref": "#/components/securitySchemes/bearer"}]
        headers = message(chat_doc, handshake["messages"][0])["payload"]
        assert headers["required"] == ["authorization"]
        assert board_doc["components"]["securitySchemes"]["bearer"]["x-grestws-scopes"] == [
            "board:admin",
            "board:draw",
            "board:erase",
            "board:view",
        ]

    def test_anonymous_clients_welcome(self, board_doc: dict[str, Any]) -> None:
        assert board_doc["components"]["securitySchemes"]["bearer-x-token"]["x-grestws-header"] == "x-token"
        handshake = board_doc["operations"]["Notes.handshake"]
        assert "security" not in handshake
        assert "required" not in message(board_doc, handshake["messages"][0])["payload"]

    def test_no_scheme_without_a_bearer_check(self) -> None:
        document = asyncapi_document(room_app())
        assert "securitySchemes" not in document["components"]


class TestDocument:
    def test_info_and_servers(self, chat_doc: dict[str, Any]) -> None:
        assert chat_doc["info"]["title"] == "ChatApi"
        assert chat_doc["info"]["version"] == "1.0.0"
        assert chat_doc["defaultContentType"] == "application/json"
        assert chat_doc["x-grestws-protocol"] == 1
        assert chat_doc["servers"] == {
            "local": {"host": "127.0.0.1:8765", "protocol": "ws"},
            "production": {"host": "chat.example.com", "protocol": "wss", "pathname": "/rt"},
        }
        document = asyncapi_document(board.make_app(), title="Boards", version="2.1.0")
        assert (document["info"]["title"], document["info"]["version"]) == ("Boards", "2.1.0")
        assert "servers" not in document
        assert asyncapi_document(board.make_app())["info"]["title"] == "Board, Notes"  # as served

    @pytest.mark.parametrize(
        ("servers", "message"),
        [
            ({"local": "http://127.0.0.1"}, "expected a ws:// or wss:// URL"),
            ({"local": "ws://"}, "expected a ws:// or wss:// URL"),
            ({"local": "ws://host/?x=1"}, "expected a ws:// or wss:// URL"),
            ({"a b": "ws://host"}, "a server name is"),
        ],
    )
    def test_bad_servers(self, servers: dict[str, str], message: str) -> None:
        with pytest.raises(ValueError, match=re.escape(message)):
            asyncapi_document(chat.app, servers=servers)

    def test_an_empty_app(self) -> None:
        document = asyncapi_document(grestws.App())
        assert (document["info"]["title"], document["channels"], document["operations"]) == (
            "grestws App",
            {},
            {},
        )

    def test_a_new_document_that_shares_nothing(self) -> None:
        document = asyncapi_document(chat.app)
        document["operations"]["ChatApi.ping"]["channel"]["$ref"] = "#/channels/Elsewhere"
        request = "ChatApi.clientToServer.sendMessage"
        document["components"]["messages"][request]["correlationId"]["$ref"] = "#/nowhere"
        assert document["operations"]["ChatApi.handshake"]["channel"] == {"$ref": "#/channels/ChatApi"}
        assert asyncapi_document(chat.app)["components"]["messages"][request]["correlationId"] == {
            "$ref": "#/components/correlationIds/grestws.requestId"
        }

    def test_the_same_text_every_time(self) -> None:
        first = dumps(asyncapi_document(board.make_app(), servers=SERVERS))
        assert dumps(asyncapi_document(board.make_app(), servers=SERVERS)) == first
        assert first.endswith("}\n")
        assert json.loads(first) == asyncapi_document(board.make_app(), servers=SERVERS)


# -- grestws asyncapi -------------------------------------------------------------------------


def cli(*args: str, seed: str = "0") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.run(
        [sys.executable, "-m", "grestws", "asyncapi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )


@pytest.mark.slow
class TestCli:
    def test_prints_what_the_function_gives(self) -> None:
        done = cli(
            "tests.asyncapi_app:app", "--title", "Boards", "--version", "3.0.1", "--server", "local=ws://h:1"
        )
        assert done.returncode == 0, done.stderr.decode()
        expected = asyncapi_document(
            board.app, title="Boards", version="3.0.1", servers={"local": "ws://h:1"}
        )
        assert done.stdout == dumps(expected).encode()

    def test_writes_a_file_the_same_in_every_process(self, tmp_path: Path) -> None:
        outputs: list[bytes] = []
        for seed in ("1", "2"):
            out = tmp_path / f"asyncapi-{seed}.json"
            done = cli("examples.chat.server:app", "-o", str(out), seed=seed)
            assert (done.returncode, done.stdout) == (0, b""), done.stderr.decode()
            outputs.append(out.read_bytes())
        assert outputs[0] == outputs[1] == dumps(asyncapi_document(chat.app)).encode()

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["examples.chat.server:app", "--server", "local"], "expected NAME=URL, got 'local'"),
            (
                ["examples.chat.server:app", "--server", "local=http://x"],
                "--server: server local: expected a ws://",
            ),
            (["examples.chat.server"], "expected MODULE:ATTR"),
            (["tests.asyncapi_app:verify"], "is not a grestws.App"),
        ],
    )
    def test_usage_errors(self, args: list[str], message: str) -> None:
        done = cli(*args)
        assert done.returncode == 2
        assert message in done.stderr.decode()
        assert done.stdout == b""

    def test_a_file_that_cannot_be_written(self, tmp_path: Path) -> None:
        done = cli("examples.chat.server:app", "-o", str(tmp_path / "missing" / "asyncapi.json"))
        assert done.returncode == 1
        assert "cannot write" in done.stderr.decode()


# -- the ASGI app ---------------------------------------------------------------------------


def http(app: Any, root: str = "") -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, root_path=root), base_url="http://testserver"
    )


class TestAsgiApp:
    async def test_serves_the_json(self) -> None:
        async with http(asyncapi_app(board.app, servers=SERVERS)) as client:
            response = await client.get("/asyncapi.json")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.content == dumps(asyncapi_document(board.app, servers=SERVERS)).encode()

    async def test_serves_the_page_with_the_json_in_it(self) -> None:
        async with http(asyncapi_app(board.app)) as client:
            response = await client.get("/asyncapi")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        page = response.text
        assert f'<script src="{WEB_COMPONENT_JS}" defer></script>' in page
        assert '<asyncapi-component id="asyncapi"' in page
        embedded = re.search(r'<pre id="asyncapi-document">(.*?)</pre>', page, re.DOTALL)
        assert embedded is not None
        assert json.loads(html.unescape(embedded.group(1))) == asyncapi_document(board.app)
        assert "<script>alert" not in page  # a docstring cannot inject markup
        assert '<a href="/asyncapi.json">' in page

    async def test_head_other_paths_other_methods(self) -> None:
        async with http(asyncapi_app(board.app, path_json="/spec.json", path_html="/spec")) as client:
            head = await client.head("/spec.json")
            assert (head.status_code, head.content) == (200, b"")
            assert int(head.headers["content-length"]) > 1000
            assert (await client.get("/asyncapi.json")).status_code == 404
            posted = await client.post("/spec")
            assert (posted.status_code, posted.headers["allow"]) == (405, "GET, HEAD")

    async def test_mounted_beside_the_app_in_starlette(self) -> None:
        sockets = board.make_app()
        docs = asyncapi_app(sockets, servers={"local": "ws://127.0.0.1:8000/rt"})
        site = Starlette(routes=[Mount("/rt", app=sockets), Mount("/docs", app=docs)])
        async with http(site) as client:
            document = (await client.get("/docs/asyncapi.json")).json()
            page = (await client.get("/docs/asyncapi")).text
            assert (await client.get("/rt/anything")).status_code == 404
        assert document["servers"]["local"]["pathname"] == "/rt"
        assert '<a href="/docs/asyncapi.json">' in page

    async def test_lifespan_and_sockets(self) -> None:
        app = asyncapi_app(board.app)
        inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return inbox.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app({"type": "lifespan"}, receive, send)
        assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        inbox[:] = [{"type": "websocket.connect"}]
        await app({"type": "websocket", "path": "/asyncapi"}, receive, send)
        assert sent[-1] == {"type": "websocket.close", "code": 1000}

    def test_bad_paths(self) -> None:
        with pytest.raises(ValueError, match="starts with '/'"):
            asyncapi_app(board.app, path_json="asyncapi.json")
        with pytest.raises(ValueError, match="paths of their own"):
            AsyncApiApp(board.app, path_json="/a", path_html="/a")

    def test_a_bad_server_fails_at_once(self) -> None:
        with pytest.raises(ValueError, match="expected a ws://"):
            asyncapi_app(board.app, servers={"local": "http://nope"})


# -- the page in a browser ---------------------------------------------------------------------

WEB_COMPONENT = tooling.BROWSER / "node_modules" / "@asyncapi" / "web-component"
REACT_COMPONENT = tooling.BROWSER / "node_modules" / "@asyncapi" / "react-component"


def test_the_browser_tests_pin_the_web_component_the_page_loads() -> None:
    pinned = json.loads((tooling.BROWSER / "package.json").read_text())["dependencies"][
        "@asyncapi/web-component"
    ]
    assert f"@asyncapi/web-component@{pinned}/" in WEB_COMPONENT_JS
    assert f"@asyncapi/react-component@{pinned}/" in WEB_COMPONENT_CSS


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_chromium_renders_the_page(tmp_path: Path) -> None:
    """The page as asyncapi_app serves it, with the web component of unpkg's URL served
    from the same host (the tests reach no other): it loads, renders the document, folds
    the raw JSON away, and logs no error."""
    driver = tooling.browser_driver("asyncapi-page.mjs")
    expected = ["ChatApi", "sendMessage", "READ_ONLY_CHANNEL", "SendMessageRequest"]
    docs = asyncapi_app(
        chat.app,
        servers={"local": "ws://127.0.0.1:8765"},
        script_url="/vendor/web-component/asyncapi-web-component.js",
        css_url="/vendor/react-component/default.min.css",
    )
    site = Starlette(
        routes=[
            Mount("/docs", app=docs),
            Mount("/vendor/web-component", app=StaticFiles(directory=WEB_COMPONENT / "lib")),
            Mount("/vendor/react-component", app=StaticFiles(directory=REACT_COMPONENT / "styles")),
        ]
    )
    shot = tmp_path / "asyncapi.png"
    async with uvicorn_in_process(site) as port:
        lines = await tooling.drive(driver, f"http://127.0.0.1:{port}/docs/asyncapi", str(shot), *expected)
    assert lines == [
        "ok the web component loads",
        "ok it renders the document",
        "ok the raw document folds away",
        "ok no errors and no other hosts",
    ]
    assert shot.stat().st_size > 0
