"""``grestws.broadcast`` over every server: one frame, encoded once, reaches every client
as the same message, whatever each connection negotiated."""

from __future__ import annotations

import contextlib
import logging

import pytest

import grestws
from tests.conftest import StartServer
from tests.support import Hub, Note, RawFrame, RoomApi, RoomClient, raw_socket, recv_frame, room_app

NOTE_PATH = RoomApi.contract.server_to_client.spec_for(RoomClient.notice).path


@pytest.mark.parametrize("compression", [True, False], ids=["deflate", "plain"])
@pytest.mark.parametrize("size", [10, 70_000], ids=["small", "over-64k"])
async def test_clients_with_and_without_compression_get_the_same_message(
    start_server: StartServer, size: int, compression: bool
) -> None:
    server = await start_server(room_app(Hub()), compression=compression)
    url = server.url + RoomApi.path
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(raw_socket(url, compression=compression))
            for compression in ("deflate", None, None, "deflate")
        ]
        assert sum(conn.is_open for conn in server.connections) == len(clients)  # k came after
        for round in range(3):
            note = Note("x" * size + str(round))
            assert grestws.broadcast(server.connections, RoomClient.notice, note) == len(clients)
            expected = RawFrame("m", NOTE_PATH, "", {"text": note.text, "roomId": "lobby"})
            for ws in clients:
                assert await recv_frame(ws) == expected


@pytest.mark.websockets_only("websockets' own debug log of the frames it sends")
async def test_websockets_debug_log_shows_broadcast_frames(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="websockets.server")
    server = await start_server(room_app(Hub()))
    async with raw_socket(server.url + RoomApi.path, compression=None) as ws:
        assert grestws.broadcast(server.connections, RoomClient.notice, Note("logged")) == 1
        assert (await recv_frame(ws)).data == {"text": "logged", "roomId": "lobby"}
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("> TEXT")]
    assert any(NOTE_PATH in message and "logged" in message for message in sent)
