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
