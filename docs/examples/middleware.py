"""Handshake middleware and context keys: a bearer token checked once per connection.

Run from the repository root: ``python docs/examples/middleware.py``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import grestws

USER = grestws.ContextKey[str]("user")  # set by the server's middleware, per connection
TOKEN = grestws.ContextKey[str]("token")  # set by the client's caller, read by its middleware


class NotesServer(Protocol):
    @grestws.request
    async def whoami(self) -> str: ...


class NotesClient(Protocol):
    @grestws.notify
    async def note(self, text: str) -> None: ...


class BearerAuth(grestws.Middleware):
    """One class for both sides: the client sends the token, the server checks it."""

    def update_handshake(self, handshake: grestws.ClientHandshake) -> None:
        handshake.headers["authorization"] = f"Bearer {TOKEN.get()}"

    def parse_handshake(self, handshake: grestws.ServerHandshake) -> None:
        scheme, _, token = handshake.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            raise grestws.NotAuthorizedError("A bearer token is required")
        TOKEN.set(token)

    async def process(self, handshake: grestws.ServerHandshake) -> None:
        user = await verify(TOKEN.get())  # slow work belongs here, not in parse_handshake
        if user is None:
            raise grestws.NotAuthorizedError("Unknown token")
        USER.set(user)


async def verify(token: str) -> str | None:
    """A stand-in for a token lookup: ``secret-<name>`` is user ``<name>``."""
    await asyncio.sleep(0)
    return token.removeprefix("secret-") if token.startswith("secret-") else None


NotesApi = (
    grestws.SocketContract("NotesApi", client_to_server=NotesServer, server_to_client=NotesClient)
    .at("/ws/notes")
    .use(BearerAuth())
)


class NotesHandler(NotesServer):
    def __init__(self, conn: grestws.ServerConnection[NotesClient]) -> None:
        self.user = USER.get()  # the middleware ran before the handler is made

    async def whoami(self) -> str:
        return USER.get()  # every call of this connection sees the same user


async def as_user(url: str, token: str) -> str:
    TOKEN.set(token)
    async with grestws.connect(url, NotesApi) as client:
        return await client.outgoing.whoami()


async def main() -> None:
    app = grestws.App()
    app.add(NotesApi, NotesHandler)
    async with grestws.serve(app, "127.0.0.1", 0) as server:
        names = await asyncio.gather(as_user(server.url, "secret-ann"), as_user(server.url, "secret-bob"))
        assert list(names) == ["ann", "bob"]
        print("connections see their own user:", names)
        try:
            await as_user(server.url, "forged")
        except grestws.NotAuthorizedError as exc:
            print("refused at the handshake:", exc)


if __name__ == "__main__":
    asyncio.run(main())
