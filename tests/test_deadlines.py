"""Handler deadlines of different lengths on one connection: the earliest is kept, and a
handler past its deadline is cancelled while the others run on."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

import grestws
from tests.conftest import StartServer
from tests.support import WAIT
from tests.test_limits import Board, FloodApi, flood_app


async def test_a_shorter_deadline_after_a_longer_one_is_kept(start_server: StartServer) -> None:
    board = Board()
    server = await start_server(flood_app(board, deadline=60.0))
    server.app.shutdown_timeout = 0.05
    async with grestws.connect(server.url, FloodApi) as client:
        blocked = asyncio.ensure_future(client.outgoing.block())  # 60 s deadline first
        try:
            assert await asyncio.wait_for(board.started.get(), WAIT) == "block"
            with pytest.raises(grestws.ServerError, match="Deadline exceeded"):
                await asyncio.wait_for(client.outgoing.hurry(), WAIT)  # then 0.05 s
            assert await asyncio.wait_for(board.ended.get(), WAIT) == "hurry"
            assert board.ended.empty()
            assert not blocked.done()
        finally:
            blocked.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await blocked
