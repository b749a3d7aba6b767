"""One BearerAuth object for httpx requests and WebSocket handshakes, over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

import httpx
import pytest

import grestws
from grestws import Identity, Scope
from tests.conftest import StartServer

WAIT = 5.0


async def verify(token: str) -> Identity | None:
    """``secret-<name>`` is user ``<name>``; ``admin`` also holds ``notes:admin``."""
    if not token.startswith("secret-"):
        return None
    name = token.removeprefix("secret-")
    return Identity(name, frozenset({"notes:admin"} if name == "admin" else ()))


class NotesServer(Protocol):
    @grestws.request(permission=grestws.PUBLIC)
    async def whoami(self) -> str: ...

    @grestws.request(permission=Scope("notes:admin"))
    async def purge(self) -> int: ...


class NotesClient(Protocol):
    @grestws.notify
    async def nothing(self) -> None: ...


Notes = grestws.SocketContract("Notes", client_to_server=NotesServer, server_to_client=NotesClient)


class NotesHandler(NotesServer):
    def __init__(self, conn: grestws.ServerConnection[NotesClient]) -> None:
        self.conn = conn

    async def whoami(self) -> str:
        assert self.conn.identity is not None
        return self.conn.identity.id

    async def purge(self) -> int:
        return 3


def notes_app(auth: grestws.BearerAuth) -> grestws.App:
    app = grestws.App()
    app.add(Notes.at("/notes").use(auth), NotesHandler)
    return app


@contextlib.asynccontextmanager
async def http_server(auth: grestws.BearerAuth) -> AsyncIterator[str]:
    """A minimal HTTP/1.1 server on 127.0.0.1 whose one route answers the caller's identity,
    checked with the same BearerAuth the socket uses."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines if line)
        }
        try:
            identity = await auth.authenticate(headers)
            status, body = "200 OK", identity.id
        except grestws.NotAuthorizedError as exc:
            status, body = "401 Unauthorized", exc.message or ""
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}".encode()
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


class TestOneObjectBothTransports:
    async def test_the_same_object_authenticates_http_and_the_socket(self, start_server: StartServer) -> None:
        server_auth = grestws.BearerAuth(verify=verify)
        client_auth = grestws.BearerAuth("secret-ann")
        server = await start_server(notes_app(server_auth))
        async with http_server(server_auth) as base, httpx.AsyncClient(auth=client_auth) as http:
            response = await asyncio.wait_for(http.get(base + "/me"), WAIT)
            assert (response.status_code, response.text) == (200, "ann")
        async with grestws.connect(server.url, Notes.at("/notes").use(client_auth)) as client:
            assert await client.outgoing.whoami() == "ann"

    async def test_a_bad_token_is_refused_on_both(self, start_server: StartServer) -> None:
        server_auth = grestws.BearerAuth(verify=verify)
        bad = grestws.BearerAuth("forged")
        server = await start_server(notes_app(server_auth))
        async with http_server(server_auth) as base, httpx.AsyncClient(auth=bad) as http:
            response = await asyncio.wait_for(http.get(base + "/me"), WAIT)
            assert (response.status_code, response.text) == (401, "Invalid token")
        with pytest.raises(grestws.NotAuthorizedError) as caught:
            await grestws.connect(server.url, Notes.at("/notes").use(bad))
        assert caught.value.message == "Invalid token"

    async def test_a_missing_token_is_refused(self, start_server: StartServer) -> None:
        server = await start_server(notes_app(grestws.BearerAuth(verify=verify)))
        with pytest.raises(grestws.NotAuthorizedError) as caught:
            await grestws.connect(server.url, Notes.at("/notes"))
        assert caught.value.message == "A bearer token is required"


class TestTokenSources:
    async def test_a_function_is_asked_for_every_connection(self, start_server: StartServer) -> None:
        server = await start_server(notes_app(grestws.BearerAuth(verify=verify)))
        tokens = iter(["secret-ann", "secret-bob"])
        schema = Notes.at("/notes").use(grestws.BearerAuth(lambda: next(tokens)))
        for name in ("ann", "bob"):
            async with grestws.connect(server.url, schema) as client:
                assert await client.outgoing.whoami() == name

    async def test_a_context_key_is_read_in_the_connecting_task(self, start_server: StartServer) -> None:
        server = await start_server(notes_app(grestws.BearerAuth(verify=verify)))
        user_token = grestws.ContextKey[str]("user-token")
        schema = Notes.at("/notes").use(grestws.BearerAuth(user_token))

        async def as_user(token: str) -> str:
            user_token.set(token)
            async with grestws.connect(server.url, schema) as client:
                return await client.outgoing.whoami()

        assert await asyncio.gather(as_user("secret-ann"), as_user("secret-admin")) == ["ann", "admin"]

    async def test_the_identity_gates_methods(self, start_server: StartServer) -> None:
        server = await start_server(notes_app(grestws.BearerAuth(verify=verify)))
        for token, allowed in (("secret-ann", False), ("secret-admin", True)):
            async with grestws.connect(
                server.url, Notes.at("/notes").use(grestws.BearerAuth(token))
            ) as client:
                result = await grestws.as_result(client.outgoing.purge())
                assert isinstance(result, grestws.Ok) is allowed

    async def test_a_client_object_cannot_verify(self) -> None:
        with pytest.raises(grestws.InvalidStateError):
            await grestws.BearerAuth("secret-ann").authenticate({"authorization": "Bearer secret-ann"})


class AnonymousNotesHandler(NotesHandler):
    async def whoami(self) -> str:
        return "anonymous" if self.conn.identity is None else self.conn.identity.id


def anonymous_notes_app() -> grestws.App:
    app = grestws.App()
    auth = grestws.BearerAuth(verify=verify, allow_anonymous=True)
    app.add(Notes.at("/notes").use(auth), AnonymousNotesHandler)
    return app


class TestAllowAnonymous:
    async def test_no_token_is_admitted_without_identity(self, start_server: StartServer) -> None:
        server = await start_server(anonymous_notes_app())
        async with grestws.connect(server.url, Notes.at("/notes")) as client:
            assert await client.outgoing.whoami() == "anonymous"  # PUBLIC
            with pytest.raises(grestws.NotAuthorizedError):
                await client.outgoing.purge()  # gated: refused per call
            assert await client.outgoing.whoami() == "anonymous"  # the socket stays usable

    async def test_a_client_without_a_token_yet_connects_anonymously(self, start_server: StartServer) -> None:
        server = await start_server(anonymous_notes_app())
        tokens: list[str | None] = [None, "secret-admin"]
        schema = Notes.at("/notes").use(grestws.BearerAuth(lambda: tokens.pop(0)))
        for name in ("anonymous", "admin"):
            async with grestws.connect(server.url, schema) as client:
                assert await client.outgoing.whoami() == name

    async def test_a_valid_token_still_gives_the_identity(self, start_server: StartServer) -> None:
        server = await start_server(anonymous_notes_app())
        schema = Notes.at("/notes").use(grestws.BearerAuth("secret-admin"))
        async with grestws.connect(server.url, schema) as client:
            assert await client.outgoing.whoami() == "admin"
            assert await client.outgoing.purge() == 3

    async def test_a_rejected_token_is_refused_not_anonymous(self, start_server: StartServer) -> None:
        server = await start_server(anonymous_notes_app())
        with pytest.raises(grestws.NotAuthorizedError) as caught:
            await grestws.connect(server.url, Notes.at("/notes").use(grestws.BearerAuth("forged")))
        assert caught.value.message == "Invalid token"

    @pytest.mark.parametrize("value", ["Basic c2VjcmV0", "Bearer ", "secret-admin", ""])
    async def test_a_header_without_a_bearer_token_is_refused(
        self, start_server: StartServer, value: str
    ) -> None:
        server = await start_server(anonymous_notes_app())
        with pytest.raises(grestws.NotAuthorizedError) as caught:
            await grestws.connect(server.url, Notes.at("/notes"), headers={"authorization": value})
        assert caught.value.message == "Invalid token"

    async def test_http_still_needs_a_token(self) -> None:
        auth = grestws.BearerAuth(verify=verify, allow_anonymous=True)
        async with http_server(auth) as base, httpx.AsyncClient() as http:
            response = await asyncio.wait_for(http.get(base + "/me"), WAIT)
        assert (response.status_code, response.text) == (401, "A bearer token is required")
        assert (await auth.authenticate({"authorization": "Bearer secret-ann"})).id == "ann"

    def test_the_app_accepts_gated_methods_behind_it(self) -> None:
        assert anonymous_notes_app().permission_problems() == []

    def test_it_needs_verify(self) -> None:
        with pytest.raises(ValueError, match="needs verify"):
            grestws.BearerAuth("secret-ann", allow_anonymous=True)

    async def test_a_required_http_route_still_needs_a_token(self) -> None:
        from starlette.exceptions import HTTPException
        from starlette.requests import Request

        require = grestws.BearerAuth(verify=verify, allow_anonymous=True).require()
        with pytest.raises(HTTPException) as caught:
            await require(Request({"type": "http", "headers": []}))
        assert (caught.value.status_code, caught.value.detail) == (401, "A bearer token is required")
        request = Request({"type": "http", "headers": [(b"authorization", b"Bearer secret-ann")]})
        assert (await require(request)).id == "ann"


class TestTwoBearerAuthsOnOneSchema:
    async def test_each_checks_the_token_of_its_own_header(self, start_server: StartServer) -> None:
        async def verify_service(token: str) -> Identity | None:
            return Identity("service") if token == "svc" else None

        users = grestws.BearerAuth(verify=verify)
        services = grestws.BearerAuth(verify=verify_service, header="x-service-token")
        app = grestws.App()
        app.add(Notes.at("/notes").use(users).use(services), AnonymousNotesHandler)
        server = await start_server(app)
        headers = {"authorization": "Bearer secret-alice", "x-service-token": "Bearer svc"}
        async with grestws.connect(server.url, Notes.at("/notes"), headers=headers) as client:
            assert await client.outgoing.whoami() == "alice"  # the first that identifies wins
