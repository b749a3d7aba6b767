"""What a new user tripped on, client side: the full URL the server logs, the example
client's command line, and a server call that no client handler serves."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import grestws
from examples.chat.contract import ChatApi
from examples.chat.server import ChatHandler, ServerChatApi
from tests.conftest import StartServer
from tests.support import (
    WAIT,
    Hub,
    Question,
    RoomApi,
    RoomClient,
    SkewClientSide,
    next_item,
    room_app,
    skew_app,
)

ROOT = Path(__file__).resolve().parents[1]


class TestUrl:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765/ws/chat"),
            ("ws://127.0.0.1:8765/", "ws://127.0.0.1:8765/ws/chat"),
            ("ws://127.0.0.1:8765/ws/chat", "ws://127.0.0.1:8765/ws/chat"),
            ("ws://127.0.0.1:8765/ws/chat/", "ws://127.0.0.1:8765/ws/chat"),
            ("ws://127.0.0.1:8765/ws/chat?room=lobby", "ws://127.0.0.1:8765/ws/chat?room=lobby"),
            ("wss://example.com/api", "wss://example.com/api/ws/chat"),
            ("wss://example.com/api/ws/chat", "wss://example.com/api/ws/chat"),
            ("ws://127.0.0.1:8765/xws/chat", "ws://127.0.0.1:8765/xws/chat/ws/chat"),
        ],
    )
    def test_the_schema_path_is_appended_once(self, url: str, expected: str) -> None:
        assert grestws.Client(url, ChatApi).url == expected

    def test_a_schema_path_with_a_trailing_slash(self) -> None:
        schema = ChatApi.contract.at("/ws/chat/")
        assert grestws.Client("ws://h:1/ws/chat", schema).url == "ws://h:1/ws/chat/"
        assert grestws.Client("ws://h:1", schema).url == "ws://h:1/ws/chat/"

    def test_a_schema_at_the_root(self) -> None:
        assert grestws.Client("ws://h:1/base", ChatApi.contract.at("/")).url == "ws://h:1/base/"

    async def test_the_url_the_server_logs_connects(self, start_server: StartServer) -> None:
        server = await start_server(room_app(Hub()))
        (logged,) = server.urls()
        async with grestws.connect(logged, RoomApi) as client:
            assert client.url == logged
            assert await asyncio.wait_for(client.outgoing.double(21), WAIT) == 42


async def run_example(*args: str) -> tuple[int, str, str]:
    """Run ``python -m examples.chat.client ARGS``; its exit code, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "examples.chat.client", *args),
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 3 * WAIT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound and not listening: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


class TestExampleClient:
    async def test_help(self) -> None:
        code, out, err = await run_example("--help")
        assert code == 0
        assert out.startswith("usage: python -m examples.chat.client [-h] [--serve] [--token TOKEN]")
        assert "[URL] [TEXT ...]" in out
        assert err == ""

    async def test_a_bad_option(self) -> None:
        code, out, err = await run_example("--tokn", "x")
        assert out == ""
        assert code == 2
        assert "unrecognized arguments: --tokn" in err
        assert "Traceback" not in err

    async def test_a_server_that_is_down(self, closed_port: int) -> None:
        code, out, err = await run_example(f"ws://127.0.0.1:{closed_port}", "hello")
        assert code == 1
        assert out == ""
        assert err.splitlines() == [
            f"cannot reach the chat server: ws://127.0.0.1:{closed_port}/ws/chat: "
            f"[Errno 111] Connect call failed ('127.0.0.1', {closed_port})"
        ]

    async def test_against_the_url_the_server_logs(self, start_server: StartServer) -> None:
        app = grestws.App()
        app.add(ServerChatApi, ChatHandler)
        server = await start_server(app)
        (logged,) = server.urls()
        code, out, err = await run_example("--token", "secret-tester", logged, "hello", "there")
        assert (code, err) == (0, "")
        lines = out.splitlines()
        assert lines[0] == f"connected to {logged}"
        assert "[tester] hello" in lines
        assert "[tester] there" in lines
        assert "a forged token is refused at the handshake: NOT_AUTHORIZED (401): Invalid token" in lines

    async def test_a_refused_token(self, start_server: StartServer) -> None:
        app = grestws.App()
        app.add(ServerChatApi, ChatHandler)
        server = await start_server(app)
        code, out, err = await run_example("--token", "forged", server.url, "hello")
        assert (code, out) == (1, "")
        assert err.splitlines() == ["the chat server refused the token: NOT_AUTHORIZED (401): Invalid token"]


def no_handler_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "grestws" and r.getMessage().startswith("no handler for")]


class TestNoHandler:
    async def test_a_request_nobody_serves_is_logged(
        self, start_server: StartServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        hub = Hub()
        server = await start_server(room_app(hub))
        caplog.set_level(logging.INFO, "grestws")
        async with grestws.connect(server.url, RoomApi):
            (conn,) = hub.connections
            with pytest.raises(grestws.RouteNotFoundError):
                await asyncio.wait_for(conn.outgoing.answer(Question(text="anyone?")), WAIT)
        (record,) = no_handler_lines(caplog)
        assert record.levelno == logging.WARNING
        assert record.getMessage() == (
            "no handler for RoomApi.answer: register one with client.on(...) or handlers="
        )

    async def test_a_message_the_contract_does_not_declare(
        self, start_server: StartServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        server = await start_server(skew_app())
        caplog.set_level(logging.INFO, "grestws")
        problems: asyncio.Queue[grestws.GrestwsError] = asyncio.Queue()
        client = grestws.Client(server.url, SkewClientSide)
        client.on_error(problems.put_nowait)
        async with client:
            await asyncio.wait_for(client.outgoing.unheard_back(), WAIT)
            assert isinstance(await next_item(problems), grestws.RouteNotFoundError)
        (record,) = no_handler_lines(caplog)
        assert record.levelno == logging.WARNING
        assert record.getMessage() == "no handler for Skew.unheard: the contract does not declare it"

    async def test_a_served_request_logs_nothing(
        self, start_server: StartServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        server = await start_server(room_app(Hub()))
        caplog.set_level(logging.INFO, "grestws")
        client = grestws.Client(server.url, RoomApi)

        async def answer(question: Question) -> str:
            return question.text

        client.on(RoomClient.answer)(answer)
        async with client:
            assert await asyncio.wait_for(client.outgoing.ask_client(Question(text="yes")), WAIT) == "yes"
        assert no_handler_lines(caplog) == []
