"""The App's registry of live connections: a drain of the whole App refuses connections
that open while it runs, and serves them again once it is over."""

from __future__ import annotations

import asyncio

import pytest

import grestws
from tests.conftest import StartServer
from tests.support import WAIT, Hub, RoomApi, room_app


async def test_connections_opened_during_a_drain_are_refused_then_served(start_server: StartServer) -> None:
    hub = Hub()
    app = room_app(hub)
    server = await start_server(app)
    async with grestws.connect(server.url, RoomApi) as busy:
        call = asyncio.ensure_future(busy.outgoing.block())
        await asyncio.wait_for(hub.started.wait(), WAIT)
        drain = asyncio.ensure_future(app.shutdown(timeout=WAIT))
        try:
            await asyncio.sleep(0)  # let the drain start: it marks the registry at once
            assert app.connections.draining
            with pytest.raises(grestws.UnavailableError, match="Server is shutting down"):
                await grestws.connect(server.url, RoomApi)
        finally:
            hub.release.set()
        await asyncio.wait_for(call, WAIT)  # the call in flight still answered
        await asyncio.wait_for(drain, WAIT)
    assert not app.connections.draining
    async with grestws.connect(server.url, RoomApi) as later:
        assert await later.outgoing.count() == 0
