"""``Transport.send`` over real sockets, for the client transports of websockets and picows:
a frame is written when ``send`` is called, what it returns is already done while the
write buffer has room (awaiting it never yields to the loop), waits while the buffer is
over its high-water mark and ends once the peer reads again; a ``limit`` refuses the frame
at once; a closed connection raises when ``send`` is called."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve

from grestws.exceptions import ConnectionClosedError
from grestws.transports import Dialed, Transport
from grestws.transports.picows import PicowsDialer
from grestws.transports.websockets import WebsocketsDialer
from tests.support import WAIT

Stalled = tuple[Transport, asyncio.Event]

DIALERS: dict[str, Callable[[], Callable[..., Awaitable[Dialed]]]] = {
    "websockets": WebsocketsDialer,
    "picows": PicowsDialer,
}
FRAME = b"m:Bench.tick::" + b"1" * 65_536
MOST_FRAMES = 2_000
"""Bound on frames written to a peer that reads nothing before a send has to wait
(128 MB: far more than loopback socket buffers hold)."""


@pytest.fixture(params=sorted(DIALERS))
async def stalled(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Transport, asyncio.Event]]:
    """A client transport (each dialer in turn) to a WebSocket server on loopback that
    reads nothing until the event is set, then reads everything (and discards it); the
    transport is closed at the end, the server reading again."""
    resume = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        ws.transport.pause_reading()
        await resume.wait()
        ws.transport.resume_reading()
        async for _ in ws:
            pass

    async with serve(handler, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        dialed = await DIALERS[request.param]()(f"ws://127.0.0.1:{port}/", {})
        try:
            yield dialed.transport, resume
        finally:
            resume.set()
            await dialed.transport.close()


async def fill(transport: Transport) -> Awaitable[bool]:
    """Send frames until one has to wait; return what that send returned."""
    for _ in range(MOST_FRAMES):
        sent = transport.send(FRAME)
        if not (asyncio.isfuture(sent) and sent.done()):
            return sent
        assert await sent is True
    raise AssertionError(f"{MOST_FRAMES} frames of {len(FRAME)} bytes went out without a wait")


class TestSend:
    async def test_a_send_with_room_is_done_when_called(self, stalled: Stalled) -> None:
        transport, _ = stalled
        sent = transport.send(b"m:Bench.tick::1")
        assert asyncio.isfuture(sent)
        assert sent.done()
        assert sent.result() is True

    async def test_a_full_buffer_waits_until_the_peer_reads(self, stalled: Stalled) -> None:
        transport, resume = stalled
        waiting = asyncio.ensure_future(await fill(transport))
        await asyncio.sleep(0)
        assert not waiting.done()
        resume.set()
        assert await asyncio.wait_for(waiting, WAIT) is True

    async def test_over_the_limit_nothing_is_written(self, stalled: Stalled) -> None:
        transport, resume = stalled
        waiting = asyncio.ensure_future(await fill(transport))
        before = transport.buffered
        assert before > 0
        refused = transport.send(FRAME, limit=before - 1)
        assert await refused is False
        assert transport.buffered == before
        resume.set()
        await asyncio.wait_for(waiting, WAIT)

    async def test_a_closed_connection_raises_when_called(self, stalled: Stalled) -> None:
        transport, resume = stalled
        resume.set()
        await transport.close()
        with pytest.raises(ConnectionClosedError):
            transport.send(b"m:Bench.tick::1")
