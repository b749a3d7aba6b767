"""Fixtures shared by the test suite: real servers on 127.0.0.1 with ephemeral ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

import grestws

StartServer = Callable[[grestws.App], Awaitable[grestws.Server]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """``server = await start_server(app)`` serves ``app`` on 127.0.0.1 at a free port;
    every server started is shut down when the test ends."""
    servers: list[grestws.Server] = []

    async def start(app: grestws.App) -> grestws.Server:
        server = await grestws.serve(app, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close(timeout=1.0)
