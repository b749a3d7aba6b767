"""Rooms, users and connections on one process: ``app.rooms`` with the default
:class:`~grestws.broker.LocalBroker`, and the App's ``on_connect`` / ``on_disconnect`` hooks.

The App serves two contracts: ``RoomApi`` (its handler joins, leaves and speaks in rooms)
and ``LobbyApi`` (a second contract whose connections may share room names with it).
Tokens name the identity and its scopes: ``"ann"``, ``"mod+room:moderator"``; a client
without a token connects with no identity. Everything runs in-process with the testkit,
except the slow consumer, which needs a real socket to leave unread.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import msgspec
import pytest
from websockets.asyncio.client import connect as ws_connect

import grestws
from grestws.broker import LocalBroker, Member
from grestws.testkit import TestClient, call_on, expect, when
from tests.conftest import StartServer

WAIT = 5.0
"""Seconds a test waits for an event at most."""

MODERATOR = grestws.Scope("room:moderator")

# -- the contracts -------------------------------------------------------------------------


class Line(msgspec.Struct, rename="camel"):
    room: str
    text: str
    sender_id: str = ""
    padding: str = ""


class Said(msgspec.Struct):
    room: str
    text: str


class RoomQuery(msgspec.Struct):
    room: str = ""
    """A room the handler factory joins the connection to (none when empty)."""


class RoomServer(Protocol):
    @grestws.request
    async def join(self, room: str) -> list[str]:
        """Join ``room``; the rooms this connection is in, sorted."""
        ...

    @grestws.request
    async def leave(self, room: str) -> list[str]:
        """Leave ``room``; the rooms this connection is in, sorted."""
        ...

    @grestws.request
    async def say(self, said: Said) -> int:
        """Push ``said`` to the room's other members; how many it was written to."""
        ...

    @grestws.request
    async def whoami(self) -> str:
        """This connection's id."""
        ...

    @grestws.request
    async def hold(self) -> None:
        """Return once the test releases it (the App's ``hold`` event)."""
        ...


class RoomClient(Protocol):
    @grestws.notify
    async def said(self, line: Line) -> None: ...

    @grestws.notify
    async def poke(self) -> None: ...

    @grestws.request
    async def ask(self, question: str) -> str: ...


RoomContract = grestws.SocketContract(
    "RoomApi", client_to_server=RoomServer, server_to_client=RoomClient, rename="camel"
)
RoomApi = RoomContract.at("/ws/rooms", query=RoomQuery)


class LobbyServer(Protocol):
    @grestws.request
    async def join(self, room: str) -> list[str]: ...

    @grestws.request
    async def whoami(self) -> str: ...


class LobbyClient(Protocol):
    @grestws.notify
    async def said(self, line: Line) -> None: ...


LobbyContract = grestws.SocketContract(
    "LobbyApi", client_to_server=LobbyServer, server_to_client=LobbyClient, rename="camel"
)
LobbyApi = LobbyContract.at("/ws/lobby")


class ElsewhereServer(Protocol):
    @grestws.request
    async def hello(self) -> None: ...


class ElsewhereClient(Protocol):
    @grestws.notify
    async def said(self, line: Line) -> None: ...


ElsewhereContract = grestws.SocketContract(
    "ElsewhereApi", client_to_server=ElsewhereServer, server_to_client=ElsewhereClient
)
"""A contract no App of this module serves."""


# -- the server ----------------------------------------------------------------------------


async def verify(token: str) -> grestws.Identity | None:
    """``name`` or ``name+scope,scope``."""
    name, _, scopes = token.partition("+")
    if not name:
        return None
    return grestws.Identity(name, frozenset(scope for scope in scopes.split(",") if scope))


auth = grestws.BearerAuth(verify=verify, allow_anonymous=True)


class RoomHandler(RoomServer):
    def __init__(
        self,
        conn: grestws.ServerConnection[RoomClient],
        app: grestws.App,
        release: asyncio.Event | None = None,
    ) -> None:
        self.conn = conn
        self.rooms = app.rooms
        self.release = release
        room = RoomApi.query_of(conn).room
        if room:
            self.rooms.join(conn, room)

    async def join(self, room: str) -> list[str]:
        self.rooms.join(self.conn, room)
        return sorted(self.rooms.rooms_of(self.conn))

    async def leave(self, room: str) -> list[str]:
        self.rooms.leave(self.conn, room)
        return sorted(self.rooms.rooms_of(self.conn))

    async def say(self, said: Said) -> int:
        sender = "" if self.conn.identity is None else self.conn.identity.id
        line = Line(room=said.room, text=said.text, sender_id=sender)
        return await self.rooms.send(said.room, RoomClient.said, line, exclude=self.conn)

    async def whoami(self) -> str:
        return self.conn.id

    async def hold(self) -> None:
        assert self.release is not None, "room_app(release=...)"
        await self.release.wait()


class LobbyHandler(LobbyServer):
    def __init__(self, conn: grestws.ServerConnection[LobbyClient], app: grestws.App) -> None:
        self.conn = conn
        self.rooms = app.rooms

    async def join(self, room: str) -> list[str]:
        self.rooms.join(self.conn, room)
        return sorted(self.rooms.rooms_of(self.conn))

    async def whoami(self) -> str:
        return self.conn.id


def room_app(release: asyncio.Event | None = None, **settings: Any) -> grestws.App:
    """An App serving RoomApi and LobbyApi, both behind the bearer check; ``hold`` calls
    return once ``release`` is set."""
    app = grestws.App(**settings)
    app.add(RoomApi.use(auth), lambda conn: RoomHandler(conn, app, release))
    app.add(LobbyApi.use(auth), lambda conn: LobbyHandler(conn, app))
    return app


# -- helpers -------------------------------------------------------------------------------


def room_client(
    app: grestws.App, token: str | None = None, *, name: str, room: str = ""
) -> TestClient[RoomServer, RoomClient]:
    return call_on(RoomApi, app, token=token, name=name, query=RoomQuery(room) if room else None)


def lobby_client(
    app: grestws.App, token: str | None = None, *, name: str
) -> TestClient[LobbyServer, LobbyClient]:
    return call_on(LobbyApi, app, token=token, name=name)


def server_conn(app: grestws.App, conn_id: str) -> grestws.ServerConnection[Any]:
    """The App's side of the connection with id ``conn_id``."""
    for conn in app.connections:
        if conn.id == conn_id:
            return conn
    raise AssertionError(f"no live connection {conn_id}")


async def settle(*clients: TestClient[Any, Any]) -> None:
    """A round trip on each client: every push written to it before now has arrived (the
    server answers after it, and frames arrive in order)."""
    for client in clients:
        await client.call.whoami()


def closed_with(client: TestClient[Any, Any]) -> tuple[int | None, str]:
    """The close code and reason of a client whose connection has closed."""
    got: list[tuple[int | None, str]] = []
    client.client.on_close(lambda code, reason: got.append((code, reason)))
    assert got, f"{client.name} is still open"
    return got[0]


def line(room: str, text: str, sender: str = "") -> Line:
    return Line(room=room, text=text, sender_id=sender)


# -- membership ----------------------------------------------------------------------------


class TestMembership:
    async def test_the_handler_factory_joins(self) -> None:
        app = room_app()
        async with room_client(app, "ann", name="ann", room="general") as ann:
            conn = server_conn(app, await ann.call.whoami())
            assert app.rooms.members("general") == [conn]
            assert app.rooms.size("general") == 1
            assert app.rooms.sizes() == {"general": 1}
            assert app.rooms.rooms_of(conn) == frozenset({"general"})

    async def test_an_on_connect_hook_joins(self) -> None:
        app = room_app()
        app.on_connect(lambda conn: app.rooms.join(conn, "lobby"))
        async with room_client(app, "ann", name="ann") as ann:
            conn = server_conn(app, await ann.call.whoami())
            assert app.rooms.members("lobby") == [conn]
            assert await app.rooms.send("lobby", RoomClient.said, line("lobby", "welcome")) == 1
            await expect(ann.mock.said).to_match({"room": "lobby", "text": "welcome"})

    async def test_a_client_call_joins_and_leaves(self) -> None:
        app = room_app()
        async with room_client(app, "ann", name="ann") as ann:
            conn = server_conn(app, await ann.call.whoami())
            assert await ann.call.join("a") == ["a"]
            assert await ann.call.join("b") == ["a", "b"]
            assert await ann.call.join("a") == ["a", "b"]  # joined already: no-op
            assert app.rooms.sizes() == {"a": 1, "b": 1}

            assert await ann.call.leave("a") == ["b"]
            assert await ann.call.leave("a") == ["b"]  # not in it: no-op
            assert await ann.call.leave("never") == ["b"]
            assert app.rooms.sizes() == {"b": 1}  # an empty room is gone
            assert app.rooms.members("a") == []
            assert app.rooms.size("a") == 0

            assert await app.rooms.send("a", RoomClient.said, line("a", "gone")) == 0
            assert await ann.call.leave("b") == []
            assert app.rooms.sizes() == {}
            assert app.rooms.rooms_of(conn) == frozenset()
            await settle(ann)
            expect(ann.mock.said).not_to_be_called()

    async def test_membership_ends_with_the_connection(self) -> None:
        app = room_app()
        async with room_client(app, "bob", name="bob", room="a") as bob:
            ann = room_client(app, "ann", name="ann", room="a")
            await ann.connect()
            conn = server_conn(app, await ann.call.whoami())
            await ann.call.join("b")
            assert app.rooms.sizes() == {"a": 2, "b": 1}

            await ann.disconnect()  # returns once the App is done with the connection
            assert app.rooms.sizes() == {"a": 1}
            assert conn not in app.rooms.members("a")
            assert app.rooms.members("b") == []
            assert app.rooms.rooms_of(conn) == frozenset()
            assert [member.connection for member in await app.rooms.presence("a")] == [
                await bob.call.whoami()
            ]

            app.rooms.join(conn, "c")  # after the close: ignored
            assert app.rooms.rooms_of(conn) == frozenset()
            assert app.rooms.sizes() == {"a": 1}
            assert await app.rooms.send_to_connection(conn.id, RoomClient.poke) == 0

    async def test_a_join_in_an_on_disconnect_hook_is_ignored(self) -> None:
        app = room_app()
        seen: list[frozenset[str]] = []

        def rejoin(conn: grestws.ServerConnection[Any], code: int | None, reason: str) -> None:
            seen.append(app.rooms.rooms_of(conn))  # it has left its rooms by now
            app.rooms.join(conn, "a")

        app.on_disconnect(rejoin)
        async with room_client(app, "ann", name="ann", room="a"):
            assert app.rooms.sizes() == {"a": 1}
        assert seen == [frozenset()]
        assert app.rooms.sizes() == {}

    async def test_a_connection_of_another_app_is_not_joined(self) -> None:
        app, other = room_app(), room_app()
        async with room_client(other, "ann", name="ann") as ann:
            conn = server_conn(other, await ann.call.whoami())
            app.rooms.join(conn, "a")
            assert app.rooms.sizes() == {}


# -- sending to a room ---------------------------------------------------------------------


class TestRoomSend:
    async def test_a_push_reaches_each_member_once_and_nobody_else(self) -> None:
        app = room_app()
        async with (
            room_client(app, "ann", name="ann", room="a") as ann,
            room_client(app, "bob", name="bob", room="a") as bob,
            room_client(app, "cy", name="cy", room="b") as cy,
            room_client(app, name="nobody") as nobody,
        ):
            await ann.call.join("a")  # twice in a room is once in it
            await cy.call.join("c")
            assert await app.rooms.send("a", RoomClient.said, line("a", "hi all")) == 2
            await settle(ann, bob, cy, nobody)
            for member in (ann, bob):
                await expect(member.mock.said).to_match(line("a", "hi all"))
                expect(member.mock.said).not_to_be_called()  # once only
            expect(cy.mock.said).not_to_be_called()
            expect(nobody.mock.said).not_to_be_called()
            assert await app.rooms.send("nowhere", RoomClient.said, line("nowhere", "?")) == 0

    async def test_a_member_in_a_handler_speaks_to_the_others(self) -> None:
        app = room_app()
        async with (
            room_client(app, "ann", name="ann", room="a") as ann,
            room_client(app, "bob", name="bob", room="a") as bob,
            room_client(app, "cy", name="cy", room="a") as cy,
        ):
            assert await ann.call.say(Said("a", "hello")) == 2  # exclude=the sender
            for member in (bob, cy):
                await expect(member.mock.said).to_match({"text": "hello", "senderId": "ann"})
            await settle(ann)
            expect(ann.mock.said).not_to_be_called()

    async def test_exclude_a_connection_an_id_or_several(self) -> None:
        app = room_app()
        async with (
            room_client(app, "ann", name="ann", room="a") as ann,
            room_client(app, "bob", name="bob", room="a") as bob,
            room_client(app, "cy", name="cy", room="a") as cy,
        ):
            ann_id, bob_id = await ann.call.whoami(), await bob.call.whoami()
            ann_conn = server_conn(app, ann_id)
            said = RoomClient.said
            rooms = app.rooms

            assert await rooms.send("a", said, line("a", "not to ann"), exclude=ann_conn) == 2
            assert await rooms.send("a", said, line("a", "not to bob"), exclude=bob_id) == 2
            assert await rooms.send("a", said, line("a", "to cy"), exclude=[ann_conn, bob_id]) == 1
            assert await rooms.send("a", said, line("a", "set"), exclude={ann_id, bob_id}) == 1
            assert await rooms.send("a", said, line("a", "all"), exclude=[]) == 3
            assert await rooms.send("a", said, line("a", "stranger"), exclude="not-a-member") == 3
            await settle(ann, bob, cy)

            expected = {
                ann: ["not to bob", "all", "stranger"],
                bob: ["not to ann", "all", "stranger"],
                cy: ["not to ann", "not to bob", "to cy", "set", "all", "stranger"],
            }
            for member, texts in expected.items():
                for text in texts:
                    await expect(member.mock.said).to_match({"text": text})
                expect(member.mock.said).not_to_be_called()

    async def test_only_keeps_the_members_whose_identity_has_the_scope(self) -> None:
        app = room_app()
        async with (
            room_client(app, "mod+room:moderator", name="mod", room="a") as mod,
            room_client(app, "boss+room:moderator,room:admin", name="boss", room="a") as boss,
            room_client(app, "ann", name="ann", room="a") as ann,
            room_client(app, name="anonymous", room="a") as anonymous,
        ):
            sent = await app.rooms.send("a", RoomClient.said, line("a", "mods only"), only=MODERATOR)
            assert sent == 2
            boss_id = await boss.call.whoami()
            sent = await app.rooms.send(
                "a", RoomClient.said, line("a", "other mods"), only=MODERATOR, exclude=boss_id
            )
            assert sent == 1
            assert await app.rooms.send("a", RoomClient.said, line("a", "all"), only=grestws.PUBLIC) == 4
            await settle(mod, boss, ann, anonymous)
            await expect(mod.mock.said).to_match({"text": "mods only"})
            await expect(mod.mock.said).to_match({"text": "other mods"})
            await expect(boss.mock.said).to_match({"text": "mods only"})
            for member in (mod, boss, ann, anonymous):
                await expect(member.mock.said).to_match({"text": "all"})
                expect(member.mock.said).not_to_be_called()

    async def test_a_method_without_an_argument(self) -> None:
        app = room_app()
        async with (
            room_client(app, "ann", name="ann", room="a") as ann,
            room_client(app, "bob", name="bob") as bob,
        ):
            assert await app.rooms.send("a", RoomClient.poke) == 1
            assert await app.rooms.send_to_user("ann", RoomClient.poke) == 1
            assert await app.rooms.send_to_connection(await ann.call.whoami(), RoomClient.poke) == 1
            assert await app.rooms.send_to_everyone(RoomClient.poke) == 2
            await settle(ann, bob)
            for _ in range(4):
                await expect(ann.mock.poke).to_be_called()
            await expect(bob.mock.poke).to_be_called()
            expect(ann.mock.poke).not_to_be_called()
            expect(bob.mock.poke).not_to_be_called()

    async def test_a_method_that_takes_an_argument_needs_one(self) -> None:
        app = room_app()
        async with room_client(app, "ann", name="ann", room="a") as ann:
            send: Any = app.rooms.send  # what a type checker refuses, at run time
            with pytest.raises(grestws.ContractError, match="takes an argument"):
                await send("a", RoomClient.said)
            await settle(ann)
            expect(ann.mock.said).not_to_be_called()

    async def test_a_request_cannot_be_pushed(self) -> None:
        app = room_app()
        async with room_client(app, "ann", name="ann", room="a") as ann:
            ann_id = await ann.call.whoami()
            rooms = app.rooms
            ask: Any = RoomClient.ask
            with pytest.raises(grestws.ContractError, match="request"):
                await rooms.send("a", ask, "there?")
            with pytest.raises(grestws.ContractError, match="request"):
                await rooms.send_to_user("ann", ask, "there?")
            with pytest.raises(grestws.ContractError, match="request"):
                await rooms.send_to_connection(ann_id, ask, "there?")
            with pytest.raises(grestws.ContractError, match="request"):
                await rooms.send_to_everyone(ask, "there?")
            await settle(ann)
            expect(ann.mock.ask).not_to_be_called()

    async def test_a_method_of_no_served_contract_is_refused(self) -> None:
        app = room_app()
        async with room_client(app, "ann", name="ann", room="a") as ann:
            with pytest.raises(grestws.ContractError, match="not a server-to-client method"):
                await app.rooms.send("a", ElsewhereClient.said, line("a", "?"))
            with pytest.raises(grestws.ContractError, match="not a server-to-client method"):
                await app.rooms.send_to_everyone(ElsewhereClient.said, line("a", "?"))
            client_to_server: Any = RoomServer.join  # the wrong half of a served contract
            with pytest.raises(grestws.ContractError, match="not a server-to-client method"):
                await app.rooms.send("a", client_to_server, "a")
            await settle(ann)
            expect(ann.mock.said).not_to_be_called()

    async def test_two_contracts_sharing_a_room_name_get_only_their_own_pushes(self) -> None:
        app = room_app()
        async with (
            room_client(app, "ann", name="ann", room="shared") as ann,
            lobby_client(app, "bob", name="bob") as bob,
        ):
            await bob.call.join("shared")
            assert app.rooms.size("shared") == 2  # one room name, members of both contracts

            assert await app.rooms.send("shared", RoomClient.said, line("shared", "to RoomApi")) == 1
            assert await app.rooms.send("shared", LobbyClient.said, line("shared", "to LobbyApi")) == 1
            assert await app.rooms.send_to_everyone(RoomClient.poke) == 1
            assert await app.rooms.send_to_user("bob", RoomClient.said, line("", "bob has no RoomApi")) == 0
            await settle(ann, bob)

            await expect(ann.mock.said).to_match({"text": "to RoomApi"})
            await expect(ann.mock.poke).to_be_called()
            expect(ann.mock.said).not_to_be_called()
            await expect(bob.mock.said).to_match({"text": "to LobbyApi"})
            expect(bob.mock.said).not_to_be_called()
            # Nothing of RoomApi ever went down bob's wire.
            assert not [text for _, text in bob.log if "RoomApi" in text]


# -- sending to users, connections, everyone -----------------------------------------------


class TestDirectSends:
    async def test_send_to_user_reaches_every_device_of_the_user_only(self) -> None:
        app = room_app()
        async with (
            room_client(app, "ann", name="ann phone") as phone,
            room_client(app, "ann", name="ann laptop", room="a") as laptop,
            room_client(app, "bob", name="bob", room="a") as bob,
            room_client(app, name="nobody") as nobody,
        ):
            assert await app.rooms.send_to_user("ann", RoomClient.said, line("", "for ann")) == 2
            phone_id = await phone.call.whoami()
            sent = await app.rooms.send_to_user(
                "ann", RoomClient.said, line("", "not the phone"), exclude=phone_id
            )
            assert sent == 1
            assert await app.rooms.send_to_user("nobody-at-all", RoomClient.said, line("", "?")) == 0
            await settle(phone, laptop, bob, nobody)
            await expect(phone.mock.said).to_match({"text": "for ann"})
            await expect(laptop.mock.said).to_match({"text": "for ann"})
            await expect(laptop.mock.said).to_match({"text": "not the phone"})
            for client in (phone, laptop, bob, nobody):
                expect(client.mock.said).not_to_be_called()

    async def test_send_to_connection_by_id(self) -> None:
        app = room_app()
        async with (
            room_client(app, "ann", name="ann phone") as phone,
            room_client(app, "ann", name="ann laptop") as laptop,
        ):
            laptop_id = await laptop.call.whoami()
            assert await app.rooms.send_to_connection(laptop_id, RoomClient.said, line("", "just you")) == 1
            assert await app.rooms.send_to_connection("no-such-id", RoomClient.said, line("", "?")) == 0
            await settle(phone, laptop)
            await expect(laptop.mock.said).to_match({"text": "just you"})
            expect(laptop.mock.said).not_to_be_called()
            expect(phone.mock.said).not_to_be_called()

    async def test_send_to_everyone(self) -> None:
        app = room_app()
        async with (
            room_client(app, "ann", name="ann", room="a") as ann,
            room_client(app, "mod+room:moderator", name="mod") as mod,
            room_client(app, name="anonymous") as anonymous,
            lobby_client(app, "lob", name="lobby") as lobby,
        ):
            everyone = await app.rooms.send_to_everyone(RoomClient.said, line("", "all"))
            assert everyone == 3  # every RoomApi connection, in a room or not; not LobbyApi's
            ann_id = await ann.call.whoami()
            assert await app.rooms.send_to_everyone(RoomClient.said, line("", "but ann"), exclude=ann_id) == 2
            assert await app.rooms.send_to_everyone(RoomClient.said, line("", "mods"), only=MODERATOR) == 1
            await settle(ann, mod, anonymous, lobby)
            for client, texts in (
                (ann, ["all"]),
                (mod, ["all", "but ann", "mods"]),
                (anonymous, ["all", "but ann"]),
            ):
                for text in texts:
                    await expect(client.mock.said).to_match({"text": text})
                expect(client.mock.said).not_to_be_called()
            expect(lobby.mock.said).not_to_be_called()


# -- presence ------------------------------------------------------------------------------


class TestPresence:
    async def test_presence_and_users_list_the_local_members(self) -> None:
        app = room_app()
        assert isinstance(app.rooms.broker, LocalBroker)
        async with (
            room_client(app, "ann", name="ann phone", room="a") as phone,
            room_client(app, "ann", name="ann laptop", room="a") as laptop,
            room_client(app, "bob", name="bob", room="b") as bob,
            room_client(app, name="anonymous", room="a") as anonymous,
        ):
            node = app.rooms.node
            assert node == app.rooms.broker.node
            ids = {client: await client.call.whoami() for client in (phone, laptop, bob, anonymous)}
            members = sorted(await app.rooms.presence("a"), key=lambda member: member.connection)
            assert members == sorted(
                [
                    Member("a", ids[phone], "ann", node),
                    Member("a", ids[laptop], "ann", node),
                    Member("a", ids[anonymous], None, node),
                ],
                key=lambda member: member.connection,
            )
            assert await app.rooms.users("a") == ["ann"]  # each user once; no identity, no user
            assert await app.rooms.presence("b") == [Member("b", ids[bob], "bob", node)]
            assert await app.rooms.users("b") == ["bob"]
            assert await app.rooms.presence("nowhere") == []
            assert await app.rooms.users("nowhere") == []

            await bob.call.join("a")
            assert await app.rooms.users("a") == ["ann", "bob"]
            await phone.disconnect()
            await laptop.disconnect()
            assert await app.rooms.users("a") == ["bob"]
            left = await app.rooms.presence("a")
            assert sorted(member.connection for member in left) == sorted([ids[anonymous], ids[bob]])


# -- hooks ---------------------------------------------------------------------------------


class TestHooks:
    async def test_on_connect_runs_after_k_with_the_identity_and_the_handler(self) -> None:
        app = grestws.App()
        made: list[grestws.ServerConnection[Any]] = []

        def factory(conn: grestws.ServerConnection[RoomClient]) -> RoomHandler:
            made.append(conn)
            return RoomHandler(conn, app)

        app.add(RoomApi.use(auth), factory)
        ran: list[str] = []
        seen: list[tuple[bool, bool, grestws.Identity | None, bool]] = []
        done = asyncio.Event()

        @app.on_connect
        def first(conn: grestws.ServerConnection[Any]) -> None:
            seen.append((conn.accepted, conn.is_open, conn.identity, made == [conn]))
            ran.append("first")

        async def second(conn: grestws.ServerConnection[Any]) -> None:
            # A request to the client: the connection is open, k has gone out.
            answer = await conn.outgoing.ask("ready?")
            ran.append(f"second: {answer}")

        def third(conn: grestws.ServerConnection[Any]) -> None:
            ran.append("third")
            done.set()

        assert app.on_connect(second) is second
        app.on_connect(third)
        ann = room_client(app, "ann+x", name="ann")
        when(ann.mock.ask).reply("yes")
        async with ann:
            await asyncio.wait_for(done.wait(), WAIT)
            assert ran == ["first", "second: yes", "third"]
            assert seen == [(True, True, grestws.Identity("ann", frozenset({"x"})), True)]
            await expect(ann.mock.ask).to_match("ready?")

    async def test_the_clients_calls_run_while_an_on_connect_hook_waits(self) -> None:
        app = room_app()
        release = asyncio.Event()
        joined = asyncio.Event()

        @app.on_connect
        async def slow(conn: grestws.ServerConnection[Any]) -> None:
            await release.wait()
            app.rooms.join(conn, "late")
            joined.set()

        async with room_client(app, "ann", name="ann") as ann:
            assert await ann.call.join("early") == ["early"]
            release.set()
            await asyncio.wait_for(joined.wait(), WAIT)
            assert app.rooms.sizes() == {"early": 1, "late": 1}

    @pytest.mark.logs_errors
    async def test_a_failing_hook_is_logged_and_the_connection_goes_on(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        app = room_app()
        done = asyncio.Event()
        closed: list[int | None] = []

        def broken(conn: grestws.ServerConnection[Any]) -> None:
            raise RuntimeError("sync connect hook")

        async def broken_async(conn: grestws.ServerConnection[Any]) -> None:
            raise RuntimeError("async connect hook")

        def last(conn: grestws.ServerConnection[Any]) -> None:
            app.rooms.join(conn, "a")
            done.set()

        async def broken_disconnect(
            conn: grestws.ServerConnection[Any], code: int | None, reason: str
        ) -> None:
            raise RuntimeError("disconnect hook")

        for hook in (broken, broken_async, last):
            app.on_connect(hook)
        app.on_disconnect(broken_disconnect)
        app.on_disconnect(lambda conn, code, reason: closed.append(code))

        with caplog.at_level(logging.ERROR, logger="grestws"):
            async with room_client(app, "ann", name="ann") as ann:
                await asyncio.wait_for(done.wait(), WAIT)
                assert await ann.call.join("b") == ["a", "b"]  # the connection goes on
                assert await app.rooms.send("a", RoomClient.poke) == 1
                await expect(ann.mock.poke).to_be_called()
        assert closed == [1000]  # the hook after the failing one still ran
        failures = {
            str(record.exc_info[1]): record.getMessage()
            for record in caplog.records
            if record.levelno == logging.ERROR and record.exc_info
        }
        assert set(failures) == {"sync connect hook", "async connect hook", "disconnect hook"}
        assert failures["sync connect hook"].startswith("connect hook")
        assert failures["disconnect hook"].startswith("disconnect hook")

    async def test_hooks_do_not_run_for_a_refused_connection(self) -> None:
        app = grestws.App()
        app.add(RoomApi.use(grestws.BearerAuth(verify=verify)), lambda conn: RoomHandler(conn, app))
        calls: list[str] = []
        app.on_connect(lambda conn: calls.append("connect"))
        app.on_disconnect(lambda conn, code, reason: calls.append("disconnect"))
        with pytest.raises(grestws.NotAuthorizedError):
            await room_client(app, name="no token").connect()
        assert calls == []
        assert len(app.connections) == 0

    async def test_on_disconnect_gets_the_code_and_reason_of_a_client_disconnect(self) -> None:
        app = room_app()
        closed: list[tuple[str, int | None, str, bool, frozenset[str]]] = []

        async def record(conn: grestws.ServerConnection[Any], code: int | None, reason: str) -> None:
            closed.append((conn.id, code, reason, conn.closed, app.rooms.rooms_of(conn)))

        app.on_disconnect(record)
        async with room_client(app, "ann", name="ann", room="a") as ann:
            ann_id = await ann.call.whoami()
            conn = server_conn(app, ann_id)
            assert not conn.closed
            assert closed == []
        assert closed == [(ann_id, 1000, "", True, frozenset())]
        assert conn.closed

    async def test_on_disconnect_gets_the_code_and_reason_of_a_server_close(self) -> None:
        app = room_app()
        closed: list[tuple[str, int | None, str]] = []
        app.on_disconnect(lambda conn, code, reason: closed.append((conn.id, code, reason)))
        bob = room_client(app, "bob", name="bob", room="a")
        await bob.connect()
        bob_id = await bob.call.whoami()
        await server_conn(app, bob_id).close(4000, "x")
        await bob.disconnect()
        assert closed_with(bob) == (4000, "x")
        assert closed == [(bob_id, 4000, "x")]
        assert app.rooms.sizes() == {}

    async def test_drop_closes_at_once_with_a_code(self) -> None:
        app = room_app()
        closed: list[tuple[int | None, str]] = []
        app.on_disconnect(lambda conn, code, reason: closed.append((code, reason)))
        ann = room_client(app, "ann", name="ann", room="a")
        await ann.connect()
        conn = server_conn(app, await ann.call.whoami())
        conn.drop(4002, "go away")
        await ann.disconnect()
        assert closed_with(ann) == (4002, "go away")
        assert closed == [(4002, "go away")]
        assert conn.closed
        assert app.rooms.sizes() == {}


# -- disconnecting -------------------------------------------------------------------------


class TestDisconnect:
    async def test_disconnect_user_closes_every_connection_of_the_user(self) -> None:
        app = room_app()
        closed: list[tuple[str | None, int | None, str]] = []

        def record(conn: grestws.ServerConnection[Any], code: int | None, reason: str) -> None:
            closed.append((None if conn.identity is None else conn.identity.id, code, reason))

        app.on_disconnect(record)
        async with (
            room_client(app, "ann", name="ann phone", room="a") as phone,
            room_client(app, "ann", name="ann laptop", room="a") as laptop,
            lobby_client(app, "ann", name="ann lobby") as lobby,
            room_client(app, "bob", name="bob", room="a") as bob,
        ):
            assert await app.rooms.disconnect_user("ann") == 3  # every contract's connections
            for device in (phone, laptop, lobby):
                await device.disconnect()
                assert closed_with(device) == (1008, "Disconnected by the server")
            assert closed == [("ann", 1008, "Disconnected by the server")] * 3
            assert app.rooms.sizes() == {"a": 1}
            assert await bob.call.join("b") == ["a", "b"]  # bob is still there
            assert await app.rooms.disconnect_user("ann") == 0
            assert await app.rooms.disconnect_user("nobody") == 0

    async def test_disconnect_user_with_a_code_and_reason(self) -> None:
        app = room_app()
        async with room_client(app, "ann", name="ann") as ann:
            assert await app.rooms.disconnect_user("ann", code=4003, reason="Banned") == 1
            await ann.disconnect()
            assert closed_with(ann) == (4003, "Banned")

    async def test_disconnect_connection_closes_one_device(self) -> None:
        app = room_app()
        closed: list[tuple[str, int | None, str]] = []
        app.on_disconnect(lambda conn, code, reason: closed.append((conn.id, code, reason)))
        async with (
            room_client(app, "ann", name="ann phone", room="a") as phone,
            room_client(app, "ann", name="ann laptop", room="a") as laptop,
        ):
            phone_id = await phone.call.whoami()
            assert await app.rooms.disconnect_connection(phone_id) == 1
            await phone.disconnect()
            assert closed_with(phone) == (1008, "Disconnected by the server")
            assert closed == [(phone_id, 1008, "Disconnected by the server")]
            assert await laptop.call.join("b") == ["a", "b"]  # the other device stays
            assert app.rooms.sizes() == {"a": 1, "b": 1}
            assert await app.rooms.disconnect_connection(phone_id) == 0  # gone already
            assert await app.rooms.disconnect_connection("no-such-id") == 0

    async def test_disconnect_user_counts_only_the_connections_it_closed(self) -> None:
        release = asyncio.Event()
        app = room_app(release)
        gone = asyncio.Event()
        app.on_disconnect(lambda conn, code, reason: gone.set())
        async with room_client(app, "ann", name="ann laptop") as laptop:
            phone = room_client(app, "ann", name="ann phone")
            await phone.connect()
            held = asyncio.ensure_future(phone.call.hold())
            await phone.call.whoami()  # hold is running on the server
            await phone.client.close()  # gone, while its call runs on for shutdown_timeout
            await gone.wait()
            try:
                assert await app.rooms.disconnect_user("ann") == 1  # the laptop only
            finally:
                release.set()
                with pytest.raises(grestws.ConnectionClosedError):
                    await held
                await phone.disconnect()
            await laptop.disconnect()
            assert closed_with(laptop) == (1008, "Disconnected by the server")

    @pytest.mark.timeout(10)
    async def test_disconnect_after_awaiting_the_on_disconnect_hook_returns(self) -> None:
        app = room_app()
        gone = asyncio.Event()
        app.on_disconnect(lambda conn, code, reason: gone.set())
        ann = room_client(app, "ann", name="ann")
        await ann.connect()
        assert await app.rooms.disconnect_user("ann") == 1
        await gone.wait()  # the App has run its hooks: its task ends in this loop turn
        await ann.disconnect()
        assert closed_with(ann) == (1008, "Disconnected by the server")


class TestClosedState:
    async def test_a_connection_is_closed_once_close_returns(self) -> None:
        app = room_app()
        async with room_client(app, "ann", name="ann", room="a") as ann:
            conn = server_conn(app, await ann.call.whoami())
            await conn.close(4000, "x")
            assert conn.closed
            assert not conn.is_open
            app.rooms.join(conn, "b")  # closed: ignored
            assert "b" not in app.rooms.rooms_of(conn)

    async def test_a_dropped_connection_is_closing(self) -> None:
        app = room_app()
        async with room_client(app, "ann", name="ann", room="a") as ann:
            conn = server_conn(app, await ann.call.whoami())
            assert await app.rooms.disconnect_connection(conn.id) == 1
            assert conn.closed


# -- the App's start and stop --------------------------------------------------------------


class TestLifecycle:
    async def test_start_and_stop_are_idempotent(self) -> None:
        app = room_app()
        await app.start()
        await app.start()
        async with room_client(app, "ann", name="ann", room="a") as ann:
            assert await app.rooms.send("a", RoomClient.poke) == 1
            await expect(ann.mock.poke).to_be_called()
        await app.stop()
        await app.stop()
        async with room_client(app, "ann", name="ann", room="a") as ann:  # starts it again
            assert await app.rooms.send("a", RoomClient.poke) == 1
            await expect(ann.mock.poke).to_be_called()
        await app.stop()

    async def test_start_refuses_an_app_that_cannot_be_served(self) -> None:
        class Gated(Protocol):
            @grestws.request(permission=MODERATOR)
            async def hello(self) -> None: ...

        class GatedHandler(Gated):
            def __init__(self, conn: grestws.ServerConnection[RoomClient]) -> None:
                pass

            async def hello(self) -> None:
                pass

        contract = grestws.SocketContract("GatedApi", client_to_server=Gated, server_to_client=RoomClient)
        app = grestws.App()
        app.add(contract.at("/ws/gated"), GatedHandler)  # gated, and nothing identifies anyone
        with pytest.raises(grestws.ContractError, match="cannot be served"):
            await app.start()


# -- a member that does not read -----------------------------------------------------------


class TestSlowConsumer:
    async def test_a_room_send_never_waits_for_a_member_that_does_not_read(
        self, start_server: StartServer
    ) -> None:
        limits = grestws.Limits(push_buffer=1024, max_dropped_pushes=3, close_timeout=0.2)
        app = room_app(limits=limits)
        server = await start_server(app)
        padding = "x" * (64 << 10)
        async with (
            room_client(app, name="fast", room="r") as fast,  # in-process: never behind
            ws_connect(
                f"{server.url}{RoomApi.path}?room=r", max_queue=1, open_timeout=WAIT, close_timeout=0.2
            ) as slow,
        ):
            await slow.send("h:::{}")
            assert await asyncio.wait_for(slow.recv(), WAIT) == "k:::null"
            slow.transport.pause_reading()  # it reads nothing more
            fast_id = await fast.call.whoami()
            [slow_conn] = [conn for conn in app.rooms.members("r") if conn.id != fast_id]
            closed: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()

            def on_close(code: int | None, reason: str) -> None:
                if not closed.done():
                    closed.set_result((code, reason))

            slow_conn.on_close(on_close)

            counts: list[int] = []
            async with asyncio.timeout(WAIT):  # a send never waits for the slow member
                while len(counts) < 1000 and (not counts or counts[-1] == 2):
                    push = Line(room="r", text=str(len(counts)), padding=padding)
                    counts.append(await app.rooms.send("r", RoomClient.said, push))
                for _ in range(5):  # dropped, then closed: skipped all the same
                    counts.append(await app.rooms.send("r", RoomClient.said, line("r", str(len(counts)))))
            assert counts[0] == 2
            assert counts[-1] == 1, counts
            assert set(counts) == {1, 2}

            for seq in range(len(counts)):  # the fast member got every push, in order
                await expect(fast.mock.said).to_match({"text": str(seq)})
            assert await asyncio.wait_for(closed, WAIT) == (1013, "Missed 3 pushes in a row")
            assert app.rooms.members("r") == [server_conn(app, fast_id)]
            assert await app.rooms.send("r", RoomClient.poke) == 1
            await expect(fast.mock.poke).to_be_called()
