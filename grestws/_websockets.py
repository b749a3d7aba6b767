"""The websockets library behind the :class:`~grestws.session.Transport` interface.

The one place where websockets' exceptions become grestws's.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.connection import Connection as WebSocket
from websockets.exceptions import ConnectionClosed

from grestws.exceptions import ConnectionClosedError


def closed_error(exc: ConnectionClosed) -> ConnectionClosedError:
    """websockets' close exception as ours, with the close code the peer sent (or ours)."""
    frame = exc.rcvd or exc.sent
    if frame is None:
        return ConnectionClosedError(1006, "connection lost")
    return ConnectionClosedError(frame.code, frame.reason)


class WebsocketsTransport:
    """A websockets connection (either side) as a grestws transport."""

    __slots__ = ("ws",)

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws

    @property
    def remote_address(self) -> Any:
        return self.ws.remote_address

    async def send(self, frame: bytes) -> None:
        try:
            await self.ws.send(frame, text=True)
        except ConnectionClosed as exc:
            raise closed_error(exc) from exc

    async def recv(self) -> bytes:
        try:
            return await self.ws.recv(decode=False)
        except ConnectionClosed as exc:
            raise closed_error(exc) from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)
