"""Declared permissions: what each method and the connection need, an identity resolved once
per connection, refuse-to-start, and revocation.

Run from the repository root: ``python docs/examples/permissions.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Annotated, Protocol

import msgspec

import grestws
from grestws import PUBLIC, AllOf, AnyOf, Identity, Scope


class Post(msgspec.Struct):
    text: Annotated[str, msgspec.Meta(min_length=1)]


class BoardServer(Protocol):
    @grestws.request(permission=PUBLIC)
    async def read(self) -> list[str]: ...

    @grestws.request(permission=Scope("board:write"))
    async def write(self, post: Post) -> int: ...

    @grestws.request(permission=AllOf(Scope("board:write"), Scope("board:admin")))
    async def wipe(self) -> int: ...

    @grestws.request(permission=AnyOf(Scope("board:admin"), AllOf(Scope("board:mod"), Scope("board:write"))))
    async def pin(self, index: int) -> str: ...

    @grestws.notify(permission=Scope("board:write"))
    async def like(self, index: int) -> None: ...


class BoardClient(Protocol):
    @grestws.notify  # server-to-client methods never declare a permission
    async def posted(self, text: str) -> None: ...


class GatedClient(Protocol):
    @grestws.notify(permission=Scope("board:read"))
    async def posted(self, text: str) -> None: ...


class StatusServer(Protocol):
    @grestws.request  # no permission: strict mode refuses this next to BoardServer
    async def uptime(self) -> float: ...


Board = grestws.SocketContract("Board", client_to_server=BoardServer, server_to_client=BoardClient)
Status = grestws.SocketContract("Status", client_to_server=StatusServer, server_to_client=BoardClient)

USERS = {
    "ann": frozenset({"board:write", "board:admin"}),
    "bob": frozenset({"board:write"}),
    "cy": frozenset({"board:mod", "board:write"}),
    "dee": frozenset[str](),
}
lookups: list[str] = []


async def lookup(token: str) -> Identity | None:
    """A stand-in for a token store: ``secret-<name>`` is user ``<name>``."""
    lookups.append(token)
    await asyncio.sleep(0)
    name = token.removeprefix("secret-")
    scopes = USERS.get(name)
    return Identity(name, scopes) if scopes is not None and token.startswith("secret-") else None


class Tokens(grestws.Middleware):
    """Server side: who the connection acts for, resolved once, at the handshake."""

    async def identify(self, handshake: grestws.ServerHandshake) -> Identity | None:
        scheme, _, token = handshake.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            return None  # no identity: only PUBLIC methods answer
        return await lookup(token)


BoardApi = Board.at("/ws/board").use(Tokens())
MembersApi = Board.at("/ws/members", permission=Scope("board:write")).use(Tokens())

posts: list[str] = []
liked: asyncio.Queue[tuple[str, int]] = asyncio.Queue()


class BoardHandler(BoardServer):
    def __init__(self, conn: grestws.ServerConnection[BoardClient]) -> None:
        self.conn = conn

    async def read(self) -> list[str]:
        return list(posts)

    async def write(self, post: Post) -> int:
        identity = self.conn.identity
        assert identity is not None  # write needs a scope, so the caller has an identity
        posts.append(f"{identity.id}: {post.text}")
        return len(posts)

    async def wipe(self) -> int:
        count = len(posts)
        posts.clear()
        return count

    async def pin(self, index: int) -> str:
        return f"pinned {index}"

    async def like(self, index: int) -> None:
        assert self.conn.identity is not None
        liked.put_nowait((self.conn.identity.id, index))


class StatusHandler(StatusServer):
    def __init__(self, conn: grestws.ServerConnection[BoardClient]) -> None:
        pass

    async def uptime(self) -> float:
        return 0.0


def bearer(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer secret-{name}"}


async def status(call: Awaitable[object]) -> str:
    """``"OK"``, or the wire type of the error the call raises."""
    match await grestws.as_result(call):
        case grestws.Ok():
            return "OK"
        case grestws.Err(error):
            return error.type


async def refuse_to_start() -> None:
    unresolved = grestws.App()
    unresolved.add(Board.at("/ws/board"), BoardHandler)  # no middleware identifies anyone
    loose = grestws.App()
    loose.add(BoardApi, BoardHandler)
    loose.add(Status.at("/ws/status"), StatusHandler)  # Status.uptime declares nothing
    for app in (unresolved, loose):
        try:
            await grestws.serve(app, "127.0.0.1", 0)
        except grestws.ContractError as exc:
            print(exc)
        else:
            raise AssertionError("served")
    assert len(unresolved.permission_problems()) == 4  # every method but the PUBLIC read
    assert len(loose.permission_problems()) == 1  # Board declares everything; Status does not


def declarations() -> None:
    try:
        grestws.SocketContract("Gated", client_to_server=BoardServer, server_to_client=GatedClient)
    except grestws.ContractError as exc:
        print(exc)
    else:
        raise AssertionError("declared")

    permission: grestws.Permission = Scope("board:write")
    try:
        for _ in range(9):
            permission = AllOf(permission)
    except grestws.ContractError as exc:
        print(exc)
    assert permission.depth == 8


async def per_call(url: str, bob: grestws.Client[BoardServer, BoardClient]) -> None:
    async with grestws.connect(url, BoardApi) as anonymous:
        assert await status(anonymous.outgoing.read()) == "OK"
        assert await status(anonymous.outgoing.write(Post("hi"))) == "NOT_AUTHORIZED"
        assert await status(anonymous.outgoing.read()) == "OK"  # the socket stays usable

    async with grestws.connect(url, BoardApi, headers=bearer("dee")) as dee:
        assert await status(dee.outgoing.write(Post("hi"))) == "FORBIDDEN"
        assert await status(dee.outgoing.write(Post(""))) == "FORBIDDEN"  # checked before validation
        await dee.outgoing.like(0)  # dropped by the server, logged as a warning
        assert await dee.outgoing.read() == []

    assert await status(bob.outgoing.write(Post(""))) == "VALIDATION_ERROR"  # allowed, then validated
    assert await bob.outgoing.write(Post("hello")) == 1
    await bob.outgoing.like(0)
    assert await asyncio.wait_for(liked.get(), 5.0) == ("bob", 0)
    assert liked.empty()  # dee's like never reached the handler


async def all_of_any_of(url: str) -> None:
    expected = {"bob": ("FORBIDDEN", "FORBIDDEN"), "cy": ("FORBIDDEN", "OK"), "ann": ("OK", "OK")}
    for name, (wipe, pin) in expected.items():
        async with grestws.connect(url, BoardApi, headers=bearer(name)) as client:
            assert await status(client.outgoing.wipe()) == wipe
            assert await status(client.outgoing.pin(0)) == pin
        print(f"{name}: wipe {wipe}, pin {pin}")


async def connect_permission(url: str) -> None:
    assert await status(grestws.connect(url, MembersApi)) == "NOT_AUTHORIZED"
    assert await status(grestws.connect(url, MembersApi, headers=bearer("dee"))) == "FORBIDDEN"


async def revocation(
    server: grestws.Server,
    bobs: list[grestws.Client[BoardServer, BoardClient]],
    ann: grestws.Client[BoardServer, BoardClient],
) -> None:
    closed: asyncio.Queue[tuple[int | None, str]] = asyncio.Queue()
    for client in bobs:
        client.on_close(lambda code, reason: closed.put_nowait((code, reason)))
    assert await server.close_identity("bob", "Token revoked") == 2
    for _ in bobs:
        assert await asyncio.wait_for(closed.get(), 5.0) == (1008, "Token revoked")
    assert await status(ann.outgoing.read()) == "OK"  # other identities keep their connections
    print("revoked bob's connections; ann's stays open")


class Reports(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        reports.append(record.getMessage())


reports: list[str] = []


async def main() -> None:
    logging.getLogger("grestws").addHandler(Reports())
    await refuse_to_start()
    declarations()

    app = grestws.App()
    app.add(BoardApi, BoardHandler)
    app.add(MembersApi, BoardHandler)
    async with grestws.serve(app, "127.0.0.1", 0) as server:
        bob = await grestws.connect(server.url, BoardApi, headers=bearer("bob"))
        await per_call(server.url, bob)
        (dropped,) = [report for report in reports if "dropped a message to Board.like" in report]
        print("reported:", dropped)
        assert lookups.count("secret-bob") == 1  # once for the connection, not per call

        await connect_permission(server.url)
        bob_member = await grestws.connect(server.url, MembersApi, headers=bearer("bob"))
        assert await bob_member.outgoing.read() == ["bob: hello"]

        await all_of_any_of(server.url)
        async with grestws.connect(server.url, BoardApi, headers=bearer("ann")) as ann:
            await revocation(server, [bob, bob_member], ann)


if __name__ == "__main__":
    asyncio.run(main())
