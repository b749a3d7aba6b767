"""Handshake middleware and connection-scoped context keys, over real sockets."""

from __future__ import annotations

import asyncio
from typing import Protocol

import pytest
from websockets.asyncio.client import connect as ws_connect

import grestws
from tests.conftest import StartServer

WAIT = 5.0

USER = grestws.ContextKey[str]("user")
TOKEN = grestws.ContextKey[str]("token")
LOCALE = grestws.ContextKey[str]("locale")


class WhoServer(Protocol):
    @grestws.request
    async def whoami(self) -> str: ...

    @grestws.request
    async def locale(self) -> str: ...


class WhoClient(Protocol):
    @grestws.notify
    async def nothing(self) -> None: ...


Who = grestws.SocketContract("Who", client_to_server=WhoServer, server_to_client=WhoClient).at("/who")


class WhoHandler(WhoServer):
    def __init__(self, conn: grestws.ServerConnection[WhoClient]) -> None:
        self.user_at_connect = USER.get("nobody")

    async def whoami(self) -> str:
        assert USER.get("nobody") == self.user_at_connect
        await asyncio.sleep(0)  # let other connections' calls interleave
        return USER.get("nobody")

    async def locale(self) -> str:
        return LOCALE.get("en")


class BearerToken(grestws.Middleware):
    """Client: sends TOKEN as a bearer header. Server: ``secret-<name>`` is user <name>."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.log = log if log is not None else []

    def update_handshake(self, handshake: grestws.ClientHandshake) -> None:
        token = TOKEN.get(None)
        if token is not None:
            handshake.headers["authorization"] = f"Bearer {token}"

    def parse_handshake(self, handshake: grestws.ServerHandshake) -> None:
        self.log.append("parse token")
        scheme, _, token = handshake.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not token.startswith("secret-"):
            raise grestws.NotAuthorizedError("Missing or bad token")
        TOKEN.set(token)

    async def process(self, handshake: grestws.ServerHandshake) -> None:
        self.log.append("process token")
        await asyncio.sleep(0)  # stands for a token lookup
        USER.set(TOKEN.get().removeprefix("secret-"))


class Locale(grestws.Middleware):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def parse_handshake(self, handshake: grestws.ServerHandshake) -> None:
        self.log.append("parse locale")
        LOCALE.set(handshake.headers.get("accept-language", "en"))

    async def process(self, handshake: grestws.ServerHandshake) -> None:
        self.log.append("process locale")


def app_for(schema: grestws.SocketSchema[WhoServer, WhoClient], **settings: float) -> grestws.App:
    app = grestws.App(**settings)
    app.add(schema, WhoHandler)
    return app


async def connect_as(url: str, schema: grestws.SocketSchema[WhoServer, WhoClient], token: str | None) -> str:
    """Connect with ``token`` in the client-side context key; return ``whoami``."""
    if token is not None:
        TOKEN.set(token)
    async with grestws.connect(url, schema) as client:
        return await client.outgoing.whoami()


class TestChain:
    async def test_parse_hooks_run_in_order_then_process_hooks(self, start_server: StartServer) -> None:
        log: list[str] = []
        schema = Who.use(BearerToken(log)).use(Locale(log))
        server = await start_server(app_for(schema))
        assert await asyncio.wait_for(connect_as(server.url, schema, "secret-ann"), WAIT) == "ann"
        assert log == ["parse token", "parse locale", "process token", "process locale"]

    async def test_use_leaves_the_schema_as_it_was(self) -> None:
        schema = Who.use(Locale([]))
        assert Who.middleware == ()
        assert len(schema.middleware) == 1
        assert (schema.path, schema.contract) == (Who.path, Who.contract)

    def test_use_takes_only_middleware(self) -> None:
        with pytest.raises(grestws.ContractError):
            Who.use(object())  # type: ignore[arg-type]

    async def test_handshake_headers_reach_parse(self, start_server: StartServer) -> None:
        schema = Who.use(Locale([]))
        server = await start_server(app_for(schema))
        async with grestws.connect(server.url, schema, headers={"accept-language": "et"}) as client:
            assert await client.outgoing.locale() == "et"


class TestRefusal:
    @pytest.mark.parametrize("token", [None, "wrong"])
    async def test_bad_or_missing_token(self, start_server: StartServer, token: str | None) -> None:
        schema = Who.use(BearerToken())
        server = await start_server(app_for(schema))
        with pytest.raises(grestws.NotAuthorizedError) as caught:
            await asyncio.wait_for(connect_as(server.url, schema, token), WAIT)
        assert caught.value.message == "Missing or bad token"

    async def test_refusal_is_x_then_4001_on_the_wire(self, start_server: StartServer) -> None:
        server = await start_server(app_for(Who.use(BearerToken())))
        async with ws_connect(server.url + "/who") as ws:
            await ws.send("h:::{}")
            answer = await asyncio.wait_for(ws.recv(), WAIT)
            assert isinstance(answer, str)
            assert answer.startswith('x:::{"success":false,"type":"NOT_AUTHORIZED","statusCode":401')
            await asyncio.wait_for(ws.wait_closed(), WAIT)
            assert (ws.close_code, ws.close_reason) == (4001, "Handshake failed")

    async def test_refusal_in_process(self, start_server: StartServer) -> None:
        class Banned(grestws.Middleware):
            async def process(self, handshake: grestws.ServerHandshake) -> None:
                await asyncio.sleep(0)
                raise grestws.ForbiddenError("Banned")

        schema = Who.use(Banned())
        server = await start_server(app_for(schema))
        with pytest.raises(grestws.ForbiddenError):
            await asyncio.wait_for(connect_as(server.url, schema, None), WAIT)

    @pytest.mark.logs_errors
    async def test_a_failing_middleware_is_a_server_error_with_a_ref(self, start_server: StartServer) -> None:
        class Broken(grestws.Middleware):
            def parse_handshake(self, handshake: grestws.ServerHandshake) -> None:
                raise RuntimeError("internal detail")

        schema = Who.use(Broken())
        server = await start_server(app_for(schema))
        with pytest.raises(grestws.ServerError) as caught:
            await asyncio.wait_for(connect_as(server.url, schema, None), WAIT)
        assert caught.value.ref is not None
        assert "internal detail" not in str(caught.value)

    async def test_a_slow_process_hits_the_handshake_timeout(self, start_server: StartServer) -> None:
        never = asyncio.Event()

        class Slow(grestws.Middleware):
            async def process(self, handshake: grestws.ServerHandshake) -> None:
                await never.wait()

        schema = Who.use(Slow())
        server = await start_server(app_for(schema, handshake_timeout=0.2))
        with pytest.raises(grestws.ServerError) as caught:
            await asyncio.wait_for(connect_as(server.url, schema, None), WAIT)
        assert caught.value.message == "Handshake timeout"


class TestCookies:
    async def test_cookie_comes_from_the_upgrade_request_never_from_h(
        self, start_server: StartServer
    ) -> None:
        seen: asyncio.Queue[str | None] = asyncio.Queue()

        class Session(grestws.Middleware):
            def parse_handshake(self, handshake: grestws.ServerHandshake) -> None:
                seen.put_nowait(handshake.cookies.get("session"))

        schema = Who.use(Session())
        server = await start_server(app_for(schema))
        async with grestws.connect(
            server.url,
            schema,
            upgrade_headers={"Cookie": "session=real; theme=dark"},
            headers={"cookie": "session=forged"},
        ):
            assert await asyncio.wait_for(seen.get(), WAIT) == "real"
        async with grestws.connect(server.url, schema, headers={"cookie": "session=forged"}):
            assert await asyncio.wait_for(seen.get(), WAIT) is None


class TestContextKeys:
    async def test_no_leak_between_50_concurrent_connections(self, start_server: StartServer) -> None:
        schema = Who.use(BearerToken())
        server = await start_server(app_for(schema))
        names = [f"user{n}" for n in range(50)]

        async def as_user(name: str) -> str:
            return await connect_as(server.url, schema, f"secret-{name}")

        answers = await asyncio.wait_for(asyncio.gather(*(as_user(name) for name in names)), 4 * WAIT)
        assert answers == names

    def test_unset_key(self) -> None:
        key = grestws.ContextKey[int]("unset")
        assert key.get(7) == 7
        with pytest.raises(grestws.InvalidStateError, match="'unset' is not set"):
            key.get()
