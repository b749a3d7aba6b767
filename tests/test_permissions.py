"""Permissions: per-method and connect permissions, the identity resolver, refuse-to-start
and revocation, over real sockets."""

from __future__ import annotations

import asyncio
from typing import Protocol

import msgspec
import pytest

import grestws
from grestws import PUBLIC, AllOf, AnyOf, Identity, Scope
from tests.conftest import StartServer

WAIT = 5.0

TOKEN = grestws.ContextKey[str]("permissions-token")


class Post(msgspec.Struct):
    text: str


class BoardServer(Protocol):
    @grestws.request(permission=PUBLIC)
    async def read(self) -> str: ...

    @grestws.request(permission=Scope("board:write"))
    async def write(self, post: Post) -> str: ...

    @grestws.request(permission=AllOf(Scope("board:write"), Scope("board:admin")))
    async def wipe(self) -> str: ...

    @grestws.request(permission=AnyOf(Scope("board:admin"), AllOf(Scope("board:mod"), Scope("board:write"))))
    async def pin(self) -> str: ...

    @grestws.notify(permission=Scope("board:write"))
    async def like(self, post: Post) -> None: ...


class BoardClient(Protocol):
    @grestws.notify
    async def nothing(self) -> None: ...


Board = grestws.SocketContract("Board", client_to_server=BoardServer, server_to_client=BoardClient)

USERS = {
    "reader": frozenset[str](),
    "writer": frozenset({"board:write"}),
    "admin": frozenset({"board:write", "board:admin"}),
    "mod": frozenset({"board:mod", "board:write"}),
}


class Tokens(grestws.Middleware):
    """``user-<name>`` identifies a user of USERS; no token is no identity."""

    def __init__(self) -> None:
        self.identified = 0

    def update_handshake(self, handshake: grestws.ClientHandshake) -> None:
        if (token := TOKEN.get(None)) is not None:
            handshake.headers["authorization"] = token

    async def identify(self, handshake: grestws.ServerHandshake) -> Identity | None:
        self.identified += 1
        name = handshake.headers.get("authorization", "").removeprefix("user-")
        return Identity(name, USERS[name]) if name in USERS else None


class BoardHandler(BoardServer):
    def __init__(self, conn: grestws.ServerConnection[BoardClient], liked: asyncio.Queue[str]) -> None:
        self.conn = conn
        self.liked = liked

    async def read(self) -> str:
        return "posts"

    async def write(self, post: Post) -> str:
        return f"wrote {post.text}"

    async def wipe(self) -> str:
        return "wiped"

    async def pin(self) -> str:
        return "pinned"

    async def like(self, post: Post) -> None:
        self.liked.put_nowait(post.text)


def board_app(
    schema: grestws.SocketSchema[BoardServer, BoardClient], liked: asyncio.Queue[str] | None = None
) -> grestws.App:
    """An App serving ``schema``; its handlers put what they are sent to ``like`` in ``liked``."""
    queue: asyncio.Queue[str] = asyncio.Queue() if liked is None else liked
    app = grestws.App()
    app.add(schema, lambda conn: BoardHandler(conn, queue))
    return app


async def client_as(
    url: str, schema: grestws.SocketSchema[BoardServer, BoardClient], user: str | None
) -> grestws.Client[BoardServer, BoardClient]:
    if user is not None:
        TOKEN.set(f"user-{user}")
    client = grestws.Client(url, schema)
    await asyncio.wait_for(client.connect(), WAIT)
    return client


class TestPerMethod:
    async def test_no_identity_gets_not_authorized_and_the_socket_stays_usable(
        self, start_server: StartServer
    ) -> None:
        schema = Board.at("/board").use(Tokens())
        server = await start_server(board_app(schema))
        client = await client_as(server.url, schema, None)
        with pytest.raises(grestws.NotAuthorizedError):
            await client.outgoing.write(Post("hi"))
        assert await client.outgoing.read() == "posts"
        await client.close()

    async def test_a_missing_scope_is_forbidden_and_the_socket_stays_usable(
        self, start_server: StartServer
    ) -> None:
        schema = Board.at("/board").use(Tokens())
        server = await start_server(board_app(schema))
        client = await client_as(server.url, schema, "reader")
        with pytest.raises(grestws.ForbiddenError):
            await client.outgoing.write(Post("hi"))
        assert await client.outgoing.read() == "posts"
        await client.close()

    async def test_the_check_comes_before_input_validation(self, start_server: StartServer) -> None:
        schema = Board.at("/board").use(Tokens())
        server = await start_server(board_app(schema))
        client = await client_as(server.url, schema, "reader")
        with pytest.raises(grestws.ForbiddenError):
            await client.outgoing.write(Post(5))  # type: ignore[arg-type]
        await client.close()

    @pytest.mark.parametrize(
        ("user", "wipe", "pin"),
        [
            ("writer", False, False),
            ("admin", True, True),
            ("mod", False, True),
            ("reader", False, False),
        ],
    )
    async def test_all_of_and_any_of(
        self, start_server: StartServer, user: str, wipe: bool, pin: bool
    ) -> None:
        schema = Board.at("/board").use(Tokens())
        server = await start_server(board_app(schema))
        client = await client_as(server.url, schema, user)
        for call, allowed in ((client.outgoing.wipe, wipe), (client.outgoing.pin, pin)):
            result = await grestws.as_result(call())
            assert isinstance(result, grestws.Ok) is allowed, (call, result)
            if not allowed:
                assert isinstance(result, grestws.Err)
                assert isinstance(result.error, grestws.ForbiddenError)
        await client.close()

    async def test_a_gated_message_is_dropped(self, start_server: StartServer) -> None:
        schema = Board.at("/board").use(Tokens())
        liked: asyncio.Queue[str] = asyncio.Queue()  # one per test: each test has its own loop
        server = await start_server(board_app(schema, liked))
        reader = await client_as(server.url, schema, "reader")
        writer = await client_as(server.url, schema, "writer")
        await reader.outgoing.like(Post("from reader"))
        await writer.outgoing.like(Post("from writer"))
        assert await asyncio.wait_for(liked.get(), WAIT) == "from writer"
        assert liked.empty()
        await reader.close()
        await writer.close()

    async def test_the_resolver_runs_once_per_connection(self, start_server: StartServer) -> None:
        tokens = Tokens()
        schema = Board.at("/board").use(tokens)
        server = await start_server(board_app(schema))
        client = await client_as(server.url, schema, "writer")
        for n in range(20):
            assert await client.outgoing.write(Post(str(n))) == f"wrote {n}"
        assert tokens.identified == 1
        await client.close()


class TestConnectPermission:
    @pytest.mark.parametrize(
        ("user", "error"), [(None, grestws.NotAuthorizedError), ("reader", grestws.ForbiddenError)]
    )
    async def test_refused_at_the_handshake(
        self, start_server: StartServer, user: str | None, error: type[Exception]
    ) -> None:
        schema = Board.at("/board", permission=Scope("board:write")).use(Tokens())
        server = await start_server(board_app(schema))
        with pytest.raises(error):
            await client_as(server.url, schema, user)

    async def test_admitted(self, start_server: StartServer) -> None:
        schema = Board.at("/board", permission=Scope("board:write")).use(Tokens())
        server = await start_server(board_app(schema))
        client = await client_as(server.url, schema, "writer")
        (conn,) = server.connections
        assert conn.identity == Identity("writer", USERS["writer"])
        await client.close()


class TestRefuseToStart:
    async def test_permissions_without_a_resolver(self) -> None:
        with pytest.raises(grestws.ContractError) as caught:
            await grestws.serve(board_app(Board.at("/board")), "127.0.0.1", 0)
        message = str(caught.value)
        for method in ("Board.write", "Board.wipe", "Board.pin", "Board.like"):
            assert method in message
        assert "Board.read" not in message

    async def test_strict_mode_lists_methods_without_a_permission(self) -> None:
        class LooseServer(Protocol):
            @grestws.request
            async def open_door(self) -> str: ...

        Loose = grestws.SocketContract("Loose", client_to_server=LooseServer, server_to_client=BoardClient)

        class LooseHandler(LooseServer):
            def __init__(self, conn: grestws.ServerConnection[BoardClient]) -> None:
                pass

            async def open_door(self) -> str:
                return "open"

        app = board_app(Board.at("/board").use(Tokens()))
        app.add(Loose.at("/loose"), LooseHandler)
        with pytest.raises(grestws.ContractError) as caught:
            await grestws.serve(app, "127.0.0.1", 0)
        assert "Loose.open_door at /loose: declares no permission" in str(caught.value)

    def test_an_app_without_permissions_is_not_strict(self) -> None:
        from examples.chat.server import app

        assert app.permission_problems() == []


class TestRevocation:
    async def test_close_every_connection_of_one_identity(self, start_server: StartServer) -> None:
        schema = Board.at("/board").use(Tokens())
        server = await start_server(board_app(schema))
        writers = [await client_as(server.url, schema, "writer") for _ in range(2)]
        admin = await client_as(server.url, schema, "admin")
        closed: asyncio.Queue[tuple[int | None, str]] = asyncio.Queue()
        for writer in writers:
            writer.on_close(lambda code, reason: closed.put_nowait((code, reason)))
        assert await server.close_identity("writer", "Token revoked") == 2
        for _ in writers:
            assert await asyncio.wait_for(closed.get(), WAIT) == (1008, "Token revoked")
        assert await admin.outgoing.wipe() == "wiped"
        await admin.close()


class TestDeclarations:
    def test_server_to_client_methods_are_never_gated(self) -> None:
        class GatedClient(Protocol):
            @grestws.notify(permission=Scope("x"))
            async def push(self) -> None: ...

        with pytest.raises(grestws.ContractError, match="never gated"):
            grestws.SocketContract("G", client_to_server=BoardServer, server_to_client=GatedClient)

    def test_nesting_is_bounded(self) -> None:
        permission: grestws.Permission = Scope("a")
        for _ in range(8):
            permission = AllOf(permission)
        with pytest.raises(grestws.ContractError, match="nest"):
            AnyOf(permission)

    def test_empty_groups_and_scopes(self) -> None:
        with pytest.raises(grestws.ContractError):
            AllOf()
        with pytest.raises(grestws.ContractError):
            Scope("")


class TestPublicGroups:
    def test_groups_made_of_public_are_public(self) -> None:
        assert AnyOf(PUBLIC, Scope("x")).public
        assert AllOf(PUBLIC, PUBLIC).public
        assert not AllOf(PUBLIC, Scope("x")).public


class HiddenServer(Protocol):
    @grestws.request(permission=PUBLIC)
    async def read(self) -> str: ...

    @grestws.request(permission=Scope("board:admin"))
    async def secret(self) -> str: ...


Hidden = grestws.SocketContract("Hidden", client_to_server=HiddenServer, server_to_client=BoardClient)


class OnlyReads(HiddenServer):
    def __init__(self, conn: grestws.ServerConnection[BoardClient]) -> None:
        pass

    async def read(self) -> str:
        return "posts"


async def test_an_unimplemented_gated_method_is_not_revealed(start_server: StartServer) -> None:
    app = grestws.App()
    app.add(Hidden.at("/hidden").use(Tokens()), OnlyReads)
    server = await start_server(app)
    async with grestws.connect(server.url, Hidden.at("/hidden")) as client:
        with pytest.raises(grestws.NotAuthorizedError):
            await client.outgoing.secret()


def unservable_app() -> grestws.App:
    """An App whose gated methods no middleware can grant (for the CLI test)."""
    return board_app(Board.at("/board"))
