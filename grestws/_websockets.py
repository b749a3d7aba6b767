"""The websockets library behind the :class:`~grestws.session.Transport` interface.

Whole messages go from websockets' protocol callback straight to the session's sink, with
no task in between: a response wakes its caller in the next loop iteration, as a plain
``await ws.recv()`` would. This is the one place where websockets' exceptions become
grestws's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.connection import Connection as WebSocket
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import DATA_OPCODES, Frame
from websockets.protocol import OPEN, Event

from grestws.exceptions import ConnectionClosedError

logger = logging.getLogger("grestws")

Sink = Callable[[bytes], None]


def closed_error(exc: ConnectionClosed) -> ConnectionClosedError:
    """websockets' close exception as ours, with the close code the peer sent (or ours)."""
    frame = exc.rcvd or exc.sent
    if frame is None:
        return ConnectionClosedError(1006, "connection lost")
    return ConnectionClosedError(frame.code, frame.reason)


class Messages:
    """Joins fragmented messages and hands every whole message to the sink, in order.

    Messages that arrive before a sink is set are kept and handed over when it is set.
    """

    __slots__ = ("_early", "_fragments", "_sink")

    def __init__(self) -> None:
        self._sink: Sink | None = None
        self._early: list[bytes] = []
        self._fragments: list[bytes] | None = None

    def take(self, frame: Frame) -> bool:
        """Handle a data frame; False for any other frame (left to websockets)."""
        if frame.opcode not in DATA_OPCODES:
            return False
        data = bytes(frame.data)
        if self._fragments is not None:
            self._fragments.append(data)
            if not frame.fin:
                return True
            data = b"".join(self._fragments)
            self._fragments = None
        elif not frame.fin:
            self._fragments = [data]
            return True
        sink = self._sink
        if sink is None:
            self._early.append(data)
            return True
        try:
            sink(data)
        except Exception:  # a sink must not break websockets' protocol callback
            logger.exception("failed to handle a message")
        return True

    def deliver_to(self, sink: Sink) -> None:
        """Hand every message to ``sink`` from now on, the ones kept so far first."""
        early, self._early = self._early, []
        self._sink = sink
        for data in early:
            sink(data)


class _PushMessages(WebSocket):
    """Hands whole messages to :attr:`messages` instead of websockets' own queue."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.messages = Messages()

    def process_event(self, event: Event) -> None:
        if not (isinstance(event, Frame) and self.messages.take(event)):
            super().process_event(event)


class PushServerConnection(_PushMessages, ServerConnection):
    """A websockets server connection whose messages go to :attr:`messages`."""


class PushClientConnection(_PushMessages, ClientConnection):
    """A websockets client connection whose messages go to :attr:`messages`."""


class WebsocketsTransport:
    """A websockets connection (either side) as a grestws transport."""

    __slots__ = ("messages", "ws")

    def __init__(self, ws: _PushMessages) -> None:
        self.ws: WebSocket = ws
        self.messages = ws.messages

    @property
    def remote_address(self) -> Any:
        return self.ws.remote_address

    def deliver_to(self, sink: Sink) -> None:
        self.messages.deliver_to(sink)

    async def send(self, frame: bytes) -> None:
        ws = self.ws
        if ws.protocol.state is OPEN and ws.send_in_progress is None:
            # What websockets.broadcast does for each connection, plus its flow control:
            # the frame is written at once and only a full write buffer makes us wait.
            ws.protocol.send_text(frame)
            ws.send_data()
            if ws.paused:
                await ws.drain()
            return
        try:
            await ws.send(frame, text=True)
        except ConnectionClosed as exc:
            raise closed_error(exc) from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)

    async def wait_closed(self) -> tuple[int | None, str]:
        await self.ws.wait_closed()  # shields websockets' own future: safe to cancel
        return self.ws.close_code, self.ws.close_reason or ""
