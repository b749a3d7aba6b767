"""Upgrade request headers: case-insensitive names, repeated headers joined, the same
under every server."""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect as ws_connect

import grestws
from grestws.context import Headers
from tests.conftest import StartServer
from tests.support import WAIT
from tests.test_middleware import Who, app_for


class TestHeaders:
    def test_names_are_case_insensitive(self) -> None:
        headers = Headers([("Origin", "https://a.example"), ("X-Token", "t")])
        assert headers["origin"] == headers["ORIGIN"] == "https://a.example"
        assert "x-token" in headers
        assert headers.get("missing") is None
        assert sorted(headers) == ["origin", "x-token"]
        assert len(headers) == 2

    def test_repeated_headers_are_joined(self) -> None:
        headers = Headers([("Cookie", "a=1"), ("cookie", "b=2"), ("Accept", "x"), ("accept", "y")])
        assert headers["cookie"] == "a=1; b=2"
        assert headers["accept"] == "x, y"

    def test_a_non_string_is_not_in_it(self) -> None:
        assert 1 not in Headers([("a", "b")])


class TestRepeatedCookieHeaders:
    async def test_two_cookie_headers_reach_middleware_joined(self, start_server: StartServer) -> None:
        seen: asyncio.Queue[dict[str, str]] = asyncio.Queue()

        class Session(grestws.Middleware):
            def parse_handshake(self, handshake: grestws.ServerHandshake) -> None:
                seen.put_nowait(dict(handshake.cookies))

        server = await start_server(app_for(Who.use(Session())))
        cookies = [("Cookie", "session=real"), ("Cookie", "theme=dark")]
        async with ws_connect(server.url + Who.path, additional_headers=cookies) as ws:
            await ws.send("h:::{}")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"
        assert await asyncio.wait_for(seen.get(), WAIT) == {"session": "real", "theme": "dark"}
