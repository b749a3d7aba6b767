"""The chat contract, shared by the server and the client.

Python names are snake_case; the wire speaks camelCase, so a TypeScript peer written for
the same contract talks to this server unchanged.
"""

from __future__ import annotations

from typing import Annotated, Protocol

import msgspec

import grestws


class SendMessageRequest(msgspec.Struct, rename="camel"):
    text: Annotated[str, msgspec.Meta(min_length=1)]
    channel_id: str


class SendMessageResponse(msgspec.Struct, rename="camel"):
    success: bool
    message_id: str


class MarkAsReadRequest(msgspec.Struct, rename="camel"):
    message_id: str


class DeleteMessageRequest(msgspec.Struct, rename="camel"):
    message_id: str


class Message(msgspec.Struct, rename="camel"):
    id: str
    text: str
    sender_id: str
    timestamp: Annotated[int, msgspec.Meta(ge=0)]
    """Milliseconds since the epoch."""


class TypingEvent(msgspec.Struct, rename="camel"):
    user_id: str
    channel_id: str


class TypingRequest(msgspec.Struct, rename="camel"):
    channel_id: str


class WhoIsHereRequest(msgspec.Struct, rename="camel"):
    channel_id: str


class ChannelInfo(msgspec.Struct, rename="camel"):
    channel_id: str
    posters: list[str]
    """Who may post there."""


class ReadOnlyChannel(grestws.ApiError[ChannelInfo], type="READ_ONLY_CHANNEL", status_code=403):
    """Only some users may post in this channel."""


READ_ONLY_CHANNELS = frozenset({"announcements"})
"""The channels where only a ``chat:admin`` may post."""


class ChatServer(Protocol):
    """What a client may call on the server."""

    @grestws.request(errors=[ReadOnlyChannel], permission=grestws.PUBLIC)
    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        """Post a message to a channel; every connected client gets it as ``newMessage``.

        Only a ``chat:admin`` may post in ``announcements``: anyone else gets
        ``READ_ONLY_CHANNEL``."""
        ...

    @grestws.notify(permission=grestws.PUBLIC)
    async def mark_as_read(self, req: MarkAsReadRequest) -> None:
        """Tell the server a message was read."""
        ...

    @grestws.notify(permission=grestws.PUBLIC)
    async def ping(self) -> None:
        """Tell the server the client is still there."""
        ...

    @grestws.notify(permission=grestws.PUBLIC)
    async def is_typing(self, req: TypingRequest) -> None:
        """Tell the others in a channel that this user is typing."""
        ...

    @grestws.request(permission=grestws.PUBLIC)
    async def who_is_here(self, req: WhoIsHereRequest) -> list[str]:
        """Ask everyone in a channel ``areYouThere``; the users who answered True, sorted.

        Waits for the answers up to a few seconds; whoever does not answer in time is
        left out."""
        ...

    @grestws.request(permission=grestws.Scope("chat:admin"))
    async def delete_message(self, req: DeleteMessageRequest) -> bool:
        """Delete a message (moderators only); True if it existed."""
        ...


class ChatClient(Protocol):
    """What the server may call on a client."""

    @grestws.notify
    async def new_message(self, msg: Message) -> None:
        """A message was posted."""
        ...

    @grestws.notify
    async def typing(self, event: TypingEvent) -> None:
        """Someone else in one of the client's channels is typing."""
        ...

    @grestws.request
    async def are_you_there(self) -> bool:
        """Answer True to show the client is alive."""
        ...


ChatContract = grestws.SocketContract(
    "ChatApi", client_to_server=ChatServer, server_to_client=ChatClient, rename="camel"
)
ChatApi = ChatContract.at("/ws/chat")
"""The schema both sides share; each adds its side of :class:`grestws.BearerAuth`."""
