"""Rooms, users, subscriptions and presence with ``app.rooms``: a small team chat.

Every connection is in the ``lobby`` (joined by an ``on_connect`` hook) and in the
channels it joins by a call. A post goes to the others in its channel, a report to the
moderators in it, a mention to every device of the user named, an edit of a document to
the connections that watch it (a subscription declared in the contract, whose server
method checks access), and "find my phone" to one connection by id. When a user's last
connection closes, the lobby hears that they went offline.

The clients are the testkit's, connected to the App in-process: no port, no server.
Run from the repository root: ``python docs/examples/rooms.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

import msgspec

import grestws
from grestws.testkit import TestClient, call_on, expect

# -- The contract ------------------------------------------------------------------------


class Post(msgspec.Struct):
    channel: str
    text: str
    mention: str | None = None


class Message(msgspec.Struct):
    channel: str
    sender: str
    text: str


class Edit(msgspec.Struct):
    doc_id: str
    text: str


class Device(msgspec.Struct):
    connection: str
    current: bool


class TeamServer(Protocol):
    @grestws.request
    async def join(self, channel: str) -> list[str]:
        """Join a channel; the users in it."""
        ...

    @grestws.request
    async def post(self, post: Post) -> int:
        """Post to the others in a channel (and to every device of a mentioned user)."""
        ...

    @grestws.notify
    async def report(self, post: Post) -> None:
        """Show a post to the channel's moderators."""
        ...

    @grestws.watch("document")
    async def watch_document(self, doc_id: str) -> None:
        """Get the document's edits from now on; FORBIDDEN for a user who may not read it."""
        ...

    @grestws.unwatch("document")
    async def unwatch_document(self, doc_id: str) -> None:
        """Stop getting the document's edits."""
        ...

    @grestws.request
    async def edit(self, edit: Edit) -> int:
        """Change a document; the others who watch it get the edit."""
        ...

    @grestws.request
    async def devices(self) -> list[Device]:
        """The user's connections, wherever they are connected."""
        ...

    @grestws.request
    async def ring(self, connection: str) -> bool:
        """Make one of the user's other devices ring."""
        ...

    @grestws.request
    async def sign_out(self, connection: str) -> None:
        """Close one of the user's other devices."""
        ...


class TeamClient(Protocol):
    @grestws.notify
    async def new_message(self, msg: Message) -> None: ...

    @grestws.notify
    async def reported(self, msg: Message) -> None: ...

    @grestws.notify
    async def mentioned(self, msg: Message) -> None: ...

    @grestws.notify
    async def edited(self, edit: Edit) -> None: ...

    @grestws.notify
    async def ring(self) -> None: ...

    @grestws.notify
    async def went_offline(self, user: str) -> None: ...


TeamApi = grestws.SocketContract("TeamApi", client_to_server=TeamServer, server_to_client=TeamClient).at(
    "/ws/team"
)

# -- The server --------------------------------------------------------------------------

USERS = {"ann": frozenset[str](), "bob": frozenset[str](), "mo": frozenset({"team:moderator"})}
READERS = {"plan": {"ann", "bob"}, "payroll": {"ann"}}
"""Who may read (and edit) each document."""
MODERATORS = grestws.Scope("team:moderator")


async def verify(token: str) -> grestws.Identity | None:
    """The demo's token check: the token is the user's name."""
    scopes = USERS.get(token)
    return None if scopes is None else grestws.Identity(token, scopes)


app = grestws.App()


def channel_room(channel: str) -> str:
    """The room of a channel."""
    return f"channel:{channel}"


@app.on_connect
def arrived(conn: grestws.ServerConnection[Any]) -> None:
    app.rooms.join(conn, "lobby")


@app.on_disconnect
async def left(conn: grestws.ServerConnection[Any], code: int | None, reason: str) -> None:
    # The connection has left its rooms by now: is another device of the user still here?
    user = conn.identity.id if conn.identity is not None else None
    if user is not None and user not in await app.rooms.users("lobby"):
        await app.rooms.send("lobby", TeamClient.went_offline, user)


class TeamHandler(TeamServer):
    def __init__(self, conn: grestws.ServerConnection[TeamClient]) -> None:
        assert conn.identity is not None  # BearerAuth admits no connection without one
        self.conn = conn
        self.user = conn.identity.id

    async def join(self, channel: str) -> list[str]:
        app.rooms.join(self.conn, channel_room(channel))
        return await app.rooms.users(channel_room(channel))

    def said(self, post: Post) -> Message:
        if channel_room(post.channel) not in app.rooms.rooms_of(self.conn):
            raise grestws.ForbiddenError(f"join {post.channel} first")
        return Message(channel=post.channel, sender=self.user, text=post.text)

    async def post(self, post: Post) -> int:
        message = self.said(post)
        written = await app.rooms.send(
            channel_room(post.channel), TeamClient.new_message, message, exclude=self.conn
        )
        if post.mention is not None:
            await app.rooms.send_to_user(post.mention, TeamClient.mentioned, message)
        return written

    async def report(self, post: Post) -> None:
        message = self.said(post)
        await app.rooms.send(channel_room(post.channel), TeamClient.reported, message, only=MODERATORS)

    async def watch_document(self, doc_id: str) -> None:
        # The access check: returning subscribes this connection, raising refuses.
        if self.user not in READERS.get(doc_id, ()):
            raise grestws.ForbiddenError(f"{self.user} may not read {doc_id}")

    async def unwatch_document(self, doc_id: str) -> None:
        pass  # nothing to check: the connection leaves the topic's room once this returns

    async def edit(self, edit: Edit) -> int:
        await self.watch_document(edit.doc_id)
        return await app.rooms.send_to_topic(
            "document", edit.doc_id, TeamClient.edited, edit, exclude=self.conn
        )

    async def devices(self) -> list[Device]:
        present = await app.rooms.presence("lobby")
        return [
            Device(member.connection, member.connection == self.conn.id)
            for member in present
            if member.user == self.user
        ]

    async def own_device(self, connection: str) -> str:
        if connection not in {device.connection for device in await self.devices()}:
            raise grestws.ForbiddenError("not one of your devices")
        return connection

    async def ring(self, connection: str) -> bool:
        return await app.rooms.send_to_connection(await self.own_device(connection), TeamClient.ring) == 1

    async def sign_out(self, connection: str) -> None:
        await app.rooms.disconnect_connection(await self.own_device(connection), reason="Signed out")


app.add(TeamApi.use(grestws.BearerAuth(verify=verify)), TeamHandler)


# -- Clients -----------------------------------------------------------------------------


async def closed(client: TestClient[TeamServer, TeamClient]) -> tuple[int | None, str]:
    """Wait (at most 5 s) until the server closed ``client``'s connection."""
    done: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()

    def on_close(code: int | None, reason: str) -> None:
        if not done.done():
            done.set_result((code, reason))

    client.client.on_close(on_close)
    return await asyncio.wait_for(done, 5.0)


async def main() -> None:
    async with (
        call_on(TeamApi, app, token="ann", name="ann") as ann,
        call_on(TeamApi, app, token="bob", name="bob-phone") as bob_phone,
        call_on(TeamApi, app, token="bob", name="bob-laptop") as bob_laptop,
        call_on(TeamApi, app, token="mo", name="mo") as mo,
    ):
        # Every connection joined the lobby on connect; bob is there twice.
        assert await app.rooms.users("lobby") == ["ann", "bob", "mo"]
        assert app.rooms.size("lobby") == 4

        # Rooms joined by a call.
        assert await ann.call.join("design") == ["ann"]
        await bob_laptop.call.join("design")
        assert await mo.call.join("design") == ["ann", "bob", "mo"]
        print("rooms:", app.rooms.sizes())

        # A post reaches the others in the channel, not its sender.
        assert await ann.call.post(Post("design", "the mockups are up")) == 2
        await expect(bob_laptop.mock.new_message).to_match({"sender": "ann", "text": "the mockups are up"})
        await expect(mo.mock.new_message).to_match({"sender": "ann"})
        expect(ann.mock.new_message).not_to_be_called()
        expect(bob_phone.mock.new_message).not_to_be_called()  # not in the channel

        # A mention reaches every device of the user, in the channel or not.
        await ann.call.post(Post("design", "bob, have a look?", mention="bob"))
        await expect(bob_laptop.mock.new_message).to_match({"text": "bob, have a look?"})
        await expect(mo.mock.new_message).to_match({"text": "bob, have a look?"})
        await expect(bob_phone.mock.mentioned).to_match({"sender": "ann"})
        await expect(bob_laptop.mock.mentioned).to_match({"sender": "ann"})

        # only=: the moderators in the channel.
        await bob_laptop.call.report(Post("design", "buy cheap watches"))
        await expect(mo.mock.reported).to_match({"sender": "bob", "text": "buy cheap watches"})
        expect(ann.mock.reported).not_to_be_called()

        # A subscription: the server's watch_document is the access check.
        await ann.call.watch_document("plan")
        await bob_phone.call.watch_document("plan")
        await expect(mo.call.watch_document("plan")).to_be_error(grestws.ForbiddenError)
        assert len(app.rooms.watchers("document", "plan")) == 2

        assert await ann.call.edit(Edit("plan", "v2")) == 1
        await expect(bob_phone.mock.edited).to_match({"doc_id": "plan", "text": "v2"})
        await bob_phone.call.unwatch_document("plan")
        assert await ann.call.edit(Edit("plan", "v3")) == 0

        # One connection by id: bob's laptop rings bob's phone, then signs it out.
        devices = await bob_laptop.call.devices()
        phone = next(device.connection for device in devices if not device.current)
        assert await bob_laptop.call.ring(phone)
        await expect(bob_phone.mock.ring).to_be_called()
        await bob_laptop.call.sign_out(phone)
        print("bob's phone:", await closed(bob_phone))
        assert await app.rooms.users("lobby") == ["ann", "bob", "mo"]  # the laptop is still in

        # Every connection of a user, from anywhere in the server (an admin's action).
        assert await app.rooms.disconnect_user("bob", reason="Account suspended") == 1
        print("bob's laptop:", await closed(bob_laptop))
        await expect(ann.mock.went_offline).to_match("bob")
        await expect(mo.mock.went_offline).to_match("bob")
        assert await app.rooms.users("lobby") == ["ann", "mo"]

        # A user leaving on their own is the same to the hooks.
        await mo.disconnect()
        await expect(ann.mock.went_offline).to_match("mo")
    print("rooms:", app.rooms.sizes())


if __name__ == "__main__":
    asyncio.run(main())
