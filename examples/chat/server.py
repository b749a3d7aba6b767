"""The chat server: ``grestws serve examples.chat.server:app``.

Clients authenticate with a bearer token. The demo check: ``secret-<name>`` is user
``<name>``, and the user ``admin`` may also delete messages; anything else is refused.

A message goes to every connected client; ``typing`` goes to the others in the channel
(each client is in ``general`` and in every channel it posted, typed or asked
``whoIsHere`` in). Only ``admin`` may post in ``announcements``. ``whoIsHere`` asks the
channel's connections on this process ``areYouThere``. Messages and typing reach every
process of a cluster when the App has a broker:
``grestws serve examples.chat.server:app --workers 2 --broker redis://127.0.0.1:6379/0``
(see ``docs/scaling.md``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import grestws
from examples.chat.contract import (
    READ_ONLY_CHANNELS,
    ChannelInfo,
    ChatApi,
    ChatClient,
    ChatServer,
    DeleteMessageRequest,
    MarkAsReadRequest,
    Message,
    ReadOnlyChannel,
    SendMessageRequest,
    SendMessageResponse,
    TypingEvent,
    TypingRequest,
    WhoIsHereRequest,
)

logger = logging.getLogger("examples.chat")


async def verify(token: str) -> grestws.Identity | None:
    """The demo's token check; a real server would look the token up."""
    name = token.removeprefix("secret-")
    if not token.startswith("secret-") or not name:
        return None
    return grestws.Identity(name, frozenset({"chat:admin"}) if name == "admin" else frozenset())


auth = grestws.BearerAuth(verify=verify)
"""The server's bearer check: the socket's handshake here, HTTP routes in
:mod:`examples.chat.asgi`."""

ServerChatApi = ChatApi.use(auth)
"""The chat schema with the server's side of the bearer check."""


def channel_room(channel: str) -> str:
    """The room of a channel's members."""
    return f"channel:{channel}"


sent: dict[str, Message] = {}
"""The latest messages by id, so that an admin can delete them (at most ``KEEP``)."""
KEEP = 1000

ANSWER_TIMEOUT = 2.0
"""How long ``whoIsHere`` waits for each ``areYouThere`` answer, in seconds."""


def latest_messages(limit: int = 50) -> list[Message]:
    """The ``limit`` latest messages still kept, oldest first."""
    return list(sent.values())[-limit:] if limit > 0 else []


class ChatHandler(ChatServer):
    """One connected client's calls."""

    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn
        self.rooms = grestws.Rooms.of(conn)  # the rooms of whichever App serves it
        self.user = conn.identity.id if conn.identity is not None else "anonymous"
        self.enter("general")

    def enter(self, channel: str) -> None:
        """Join the channel's room (once); the connection leaves it when it closes."""
        self.rooms.join(self.conn, channel_room(channel))

    @property
    def admin(self) -> bool:
        return self.conn.identity is not None and "chat:admin" in self.conn.identity.scopes

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        if req.channel_id in READ_ONLY_CHANNELS and not self.admin:
            info = ChannelInfo(channel_id=req.channel_id, posters=["admin"])
            raise ReadOnlyChannel(f"Only admins may post in {req.channel_id}", data=info)
        message = Message(
            id=uuid.uuid4().hex,
            text=req.text,
            sender_id=self.user,
            timestamp=time.time_ns() // 1_000_000,
        )
        sent[message.id] = message
        if len(sent) > KEEP:
            del sent[next(iter(sent))]
        self.enter(req.channel_id)
        await self.rooms.send_to_everyone(ChatClient.new_message, message)
        return SendMessageResponse(success=True, message_id=message.id)

    async def is_typing(self, req: TypingRequest) -> None:
        self.enter(req.channel_id)
        event = TypingEvent(user_id=self.user, channel_id=req.channel_id)
        await self.rooms.send(channel_room(req.channel_id), ChatClient.typing, event, exclude=self.conn)

    async def who_is_here(self, req: WhoIsHereRequest) -> list[str]:
        self.enter(req.channel_id)
        members = self.rooms.members(channel_room(req.channel_id))
        answers = await asyncio.gather(*(self.ask(member) for member in members))
        return sorted({user for user in answers if user is not None})

    @staticmethod
    async def ask(conn: grestws.ServerConnection[ChatClient]) -> str | None:
        """``conn``'s user if it answers ``areYouThere`` with True in time, else None."""
        try:
            there = await conn.with_timeout(ANSWER_TIMEOUT).are_you_there()
        except (grestws.ApiError, grestws.RequestTimeoutError, grestws.ConnectionClosedError):
            return None
        return conn.identity.id if there and conn.identity is not None else None

    async def delete_message(self, req: DeleteMessageRequest) -> bool:
        logger.info("%s deleted %s", self.user, req.message_id)
        return sent.pop(req.message_id, None) is not None

    async def mark_as_read(self, req: MarkAsReadRequest) -> None:
        logger.info("%s read %s", self.conn.id, req.message_id)

    async def ping(self) -> None:
        pass


app = grestws.App()
app.add(ServerChatApi, ChatHandler)
