"""The chat server: ``grestws serve examples.chat.server:app``."""

from __future__ import annotations

import logging
import time
import uuid

import grestws
from examples.chat.contract import (
    ChatApi,
    ChatClient,
    ChatServer,
    MarkAsReadRequest,
    Message,
    SendMessageRequest,
    SendMessageResponse,
)

logger = logging.getLogger("examples.chat")


class Room:
    """Everyone connected. A real app would keep this per channel, and in Redis across processes."""

    def __init__(self) -> None:
        self.members: set[grestws.ServerConnection[ChatClient]] = set()

    def publish(self, message: Message) -> None:
        """Push ``message`` to every member, encoded once."""
        grestws.broadcast(self.members, ChatClient.new_message, message)


room = Room()


class ChatHandler(ChatServer):
    """One connected client's calls."""

    def __init__(self, conn: grestws.ServerConnection[ChatClient]) -> None:
        self.conn = conn
        room.members.add(conn)
        conn.on_close(lambda code, reason: room.members.discard(conn))

    async def send_message(self, req: SendMessageRequest) -> SendMessageResponse:
        message = Message(
            id=uuid.uuid4().hex,
            text=req.text,
            sender_id=self.conn.id,
            timestamp=time.time_ns() // 1_000_000,
        )
        room.publish(message)
        return SendMessageResponse(success=True, message_id=message.id)

    async def mark_as_read(self, req: MarkAsReadRequest) -> None:
        logger.info("%s read %s", self.conn.id, req.message_id)

    async def ping(self) -> None:
        pass


app = grestws.App()
app.add(ChatApi, ChatHandler)
