"""The server against hostile peers, over real sockets: every limit of ``grestws.Limits``,
the slow-consumer policy, dead peers, the log ration, the origin check and the incidents
hook. Each finding of the hardening review has its regression test here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any, Protocol

import msgspec
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

import grestws
from grestws.incidents import PEER_LOG
from tests.conftest import StartServer
from tests.servers import ServedApp
from tests.support import WAIT, recv_frame

# -- a contract for abuse -------------------------------------------------------------------


class Blob(msgspec.Struct):
    text: str
    extra: Any = None


class FloodServer(Protocol):
    @grestws.request
    async def echo(self, blob: Blob) -> Blob: ...

    @grestws.request
    async def block(self) -> None: ...

    @grestws.request(deadline=0.05)
    async def hurry(self) -> None: ...

    @grestws.request(deadline=math.inf)
    async def linger(self) -> None: ...

    @grestws.request(rate=grestws.Rate(2, per=3600))
    async def rare(self) -> int: ...

    @grestws.request
    async def deep(self, levels: int) -> list[Any]: ...

    @grestws.request
    async def push(self, count: int) -> int: ...

    @grestws.notify
    async def note(self, blob: Blob) -> None: ...

    @grestws.notify
    async def stall(self) -> None: ...


class FloodClient(Protocol):
    @grestws.notify
    async def news(self, blob: Blob) -> None: ...


FloodApi = grestws.SocketContract("Flood", client_to_server=FloodServer, server_to_client=FloodClient).at(
    "/ws/flood"
)


class Board:
    """What the handlers of one test share with it."""

    def __init__(self) -> None:
        self.started: asyncio.Queue[str] = asyncio.Queue()
        self.ended: asyncio.Queue[str] = asyncio.Queue()
        self.notes: asyncio.Queue[Blob] = asyncio.Queue()
        self.incidents: list[grestws.Incident] = []
        self.reported: asyncio.Queue[grestws.Incident] = asyncio.Queue()
        self.connections: list[grestws.ServerConnection[FloodClient]] = []


class FloodHandler(FloodServer):
    def __init__(self, conn: grestws.ServerConnection[FloodClient], board: Board) -> None:
        self.conn = conn
        self.board = board
        board.connections.append(conn)

    async def _wait_forever(self, name: str) -> None:
        self.board.started.put_nowait(name)
        try:
            await asyncio.Event().wait()
        finally:
            self.board.ended.put_nowait(name)

    async def echo(self, blob: Blob) -> Blob:
        return blob

    async def block(self) -> None:
        await self._wait_forever("block")

    async def hurry(self) -> None:
        await self._wait_forever("hurry")

    async def linger(self) -> None:
        await self._wait_forever("linger")

    async def stall(self) -> None:
        await self._wait_forever("stall")

    async def rare(self) -> int:
        return 1

    async def deep(self, levels: int) -> list[Any]:
        value: list[Any] = []
        for _ in range(levels - 1):
            value = [value]
        return value

    async def push(self, count: int) -> int:
        blob = Blob("x" * 10_000)
        return grestws.broadcast([self.conn] * count, FloodClient.news, blob)

    async def note(self, blob: Blob) -> None:
        self.board.notes.put_nowait(blob)


def flood_app(board: Board, **limits: Any) -> grestws.App:
    def report(incident: grestws.Incident) -> None:
        board.incidents.append(incident)
        board.reported.put_nowait(incident)

    app = grestws.App(limits=grestws.Limits(**limits), on_error=report)
    app.add(FloodApi, lambda conn: FloodHandler(conn, board))
    return app


def kinds(board: Board) -> list[str]:
    return [incident.kind.value for incident in board.incidents]


@contextlib.asynccontextmanager
async def raw(server: ServedApp, **options: Any) -> AsyncIterator[ClientConnection]:
    """A plain socket to the flood schema that has done the handshake; closed on the way
    out unless the connection is gone (websockets' close() aborts the socket even then,
    which asyncio's selector transport fails with AttributeError once it has closed by
    draining a flood the server read)."""
    ws = await ws_connect(server.url + FloodApi.path, open_timeout=WAIT, **options)
    try:
        await ws.send("h:::{}")
        assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"
        yield ws
    finally:
        if not ws.connection_lost_waiter.done():
            await ws.close()


async def closed_with(ws: ClientConnection) -> tuple[int | None, str]:
    """Read until the server closes ``ws``; its close code and reason."""
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(WAIT):
            while True:
                await ws.recv()
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason or ""


def error_type(frame: Any) -> str:
    assert frame.type == "s"
    return str(frame.data["type"])


# -- finding 1: nesting -----------------------------------------------------------------------


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


class TestNesting:
    async def test_a_deep_frame_in_a_skipped_field_is_answered(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(flood_app(board))
        async with raw(server) as ws:
            await ws.send('r:Flood.echo:1:{"text":"a","x":' + nested(1000) + "}")
            frame = await recv_frame(ws)
            assert (frame.id, error_type(frame)) == ("1", "VALIDATION_ERROR")
            assert frame.data["data"] == [
                {"path": "", "code": "too_deep", "message": "Nested deeper than 64 levels"}
            ]
            await ws.send('r:Flood.echo:2:{"text":"fine","extra":' + nested(60) + "}")
            assert (await recv_frame(ws)).data["data"]["text"] == "fine"
        assert "invalid_payload" in kinds(board)

    async def test_a_deep_message_is_dropped_and_counted(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(flood_app(board))
        async with raw(server) as ws:
            await ws.send('m:Flood.note::{"text":"a","extra":' + nested(5000) + "}")
            await ws.send('m:Flood.note::{"text":"after"}')
            assert (await asyncio.wait_for(board.notes.get(), WAIT)).text == "after"
        assert kinds(board).count("invalid_payload") == 1

    async def test_the_limit_is_a_setting(self, start_server: StartServer) -> None:
        server = await start_server(flood_app(Board(), max_depth=3))
        async with raw(server) as ws:
            await ws.send('r:Flood.echo:1:{"text":"a","extra":[[1]]}')
            assert (await recv_frame(ws)).data["success"] is True
            await ws.send('r:Flood.echo:2:{"text":"a","extra":[[[1]]]}')
            assert error_type(await recv_frame(ws)) == "VALIDATION_ERROR"

    async def test_the_client_refuses_a_deep_result(self, start_server: StartServer) -> None:
        server = await start_server(flood_app(Board(), max_depth=200))
        async with grestws.connect(server.url, FloodApi) as client:
            assert await client.outgoing.deep(10) == [[[[[[[[[[]]]]]]]]]]
            with pytest.raises(grestws.ValidationError) as caught:
                await client.outgoing.deep(100)
            assert caught.value.data[0].code == "too_deep"
            assert await client.outgoing.deep(2) == [[]]


# -- findings 2 and 3: a peer that does not read ------------------------------------------


def fire(ws: ClientConnection, frames: list[str]) -> None:
    """Write ``frames`` straight into the socket's buffer, without waiting for anything."""
    for frame in frames:
        ws.protocol.send_text(frame.encode())
    ws.send_data()


def echoes(first: int, count: int, size: int) -> list[str]:
    text = "y" * size
    return [f'r:Flood.echo:{i}:{{"text":"{text}"}}' for i in range(first, first + count)]


class TestSlowReaders:
    @pytest.mark.websockets_only(
        "one loop's timing: the client reads all along, and only grestws.serve answers faster than "
        "it reads; uvicorn reads one message per loop turn, so the client keeps up "
        "(ASGI's slow consumer: tests/test_asgi_transport.py)"
    )
    async def test_a_peer_that_does_not_read_is_closed_with_1013(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(flood_app(board, rate=None, max_outgoing_buffer=256 << 10))
        async with raw(server, max_queue=1) as ws:
            ws.transport.pause_reading()  # the peer stops reading: nothing it is sent is taken
            fire(ws, echoes(1, 2_000, 20_000))
            ws.transport.resume_reading()
            code, reason = await closed_with(ws)
        assert (code, reason) == (1013, "Too slow to read")
        assert "slow_consumer" in kinds(board)
        closed: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()
        board.connections[0].on_close(lambda code, reason: closed.set_result((code, reason)))
        assert await asyncio.wait_for(closed, WAIT) == (1013, "Too slow to read")

    async def test_without_a_rate_a_peer_past_the_cap_is_still_closed(
        self, start_server: StartServer
    ) -> None:
        board = Board()
        server = await start_server(flood_app(board, rate=None, identity_rate=None, max_in_flight=1))
        async with raw(server) as ws:
            await ws.send("r:Flood.block:1:")
            assert await asyncio.wait_for(board.started.get(), WAIT) == "block"
            # Without a rate a peer is closed once its refusals outrun 1,000 a second past a
            # burst of 1,000: 5,000 refusals get there while the server refuses more than
            # 1,250 a second (1,100 would need 11,000 a second, too fast for a loaded host).
            fire(ws, [f"r:Flood.block:{i}:" for i in range(2, 5_002)])
            assert (await closed_with(ws)) == (1008, "Too many requests")
        assert kinds(board).count("in_flight_limited") >= 1_000  # the burst, and what refilled meanwhile

    async def test_requests_over_the_cap_are_answered_at_once(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(flood_app(board, max_in_flight=2))
        async with raw(server) as ws:
            for i in (1, 2):
                await ws.send(f"r:Flood.block:{i}:")
                assert await asyncio.wait_for(board.started.get(), WAIT) == "block"
            await ws.send("r:Flood.block:3:")
            await ws.send('m:Flood.note::{"text":"over"}')
            frame = await recv_frame(ws)
            assert (frame.id, error_type(frame)) == ("3", "TOO_MANY_REQUESTS")
            assert frame.data["context"]["displayMessage"] == "Over 2 calls in flight"
        assert kinds(board).count("in_flight_limited") == 2
        assert board.notes.empty()

    async def test_a_reset_with_replies_blocked_logs_nothing(self, start_server: StartServer) -> None:
        """Replies blocked on a full buffer when the peer resets the connection end quietly:
        no traceback, no task exception never retrieved (the autouse fixture checks)."""
        board = Board()
        server = await start_server(flood_app(board, rate=None))
        async with grestws.connect(server.url, FloodApi) as bystander:
            ws = await ws_connect(server.url + FloodApi.path, open_timeout=WAIT, max_queue=1)
            await ws.send("h:::{}")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"
            ws.transport.pause_reading()
            fire(ws, echoes(1, 120, 100_000))
            for _ in range(5):  # the server reads and answers into a full buffer meanwhile
                assert await bystander.outgoing.echo(Blob("ping")) == Blob("ping")
            sock = ws.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            ws.transport.abort()  # RST
            for _ in range(20):
                assert await bystander.outgoing.echo(Blob("still here")) == Blob("still here")
        gone = board.connections[0]
        closed = asyncio.Event()
        gone.on_close(lambda code, reason: closed.set())
        await asyncio.wait_for(closed.wait(), WAIT)


# -- finding 4: the log ------------------------------------------------------------------------


class TestLogRation:
    async def test_garbage_writes_a_bounded_number_of_lines(
        self, start_server: StartServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        board = Board()
        server = await start_server(flood_app(board, rate=None))
        async with raw(server) as ws:
            for _ in range(500):
                await ws.send("garbage")
            await ws.send("r:Flood.rare:1:")
            await recv_frame(ws)
        warnings = [r for r in caplog.records if r.name == "grestws" and r.levelno >= logging.WARNING]
        assert len(warnings) <= 6
        assert kinds(board).count("malformed_frame") == 500
        assert server.app.incidents.counts[grestws.IncidentKind.MALFORMED_FRAME] == 500
        PEER_LOG.flush(grestws.IncidentKind.MALFORMED_FRAME)
        assert "495 more malformed_frame warnings" in caplog.records[-1].getMessage()


# -- finding 5: dead peers ----------------------------------------------------------------------


class TestDeadPeers:
    @pytest.mark.websockets_only(
        "grestws's own Liveness drops the peer (1006); under uvicorn its ws_ping keepalive does "
        "(tests/test_asgi_transport.py)"
    )
    async def test_a_silent_peer_is_dropped_after_interval_and_timeout(
        self, start_server: StartServer
    ) -> None:
        board = Board()
        app = flood_app(board)
        server = await start_server(app, ping_interval=0.1, ping_timeout=0.1)
        async with raw(server) as ws:
            conn = board.connections[0] if board.connections else None
            assert conn is not None
            closed: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()
            conn.on_close(lambda code, reason: closed.set_result((code, reason)))
            ws.transport.pause_reading()  # a paused process: it never answers a ping
            started = asyncio.get_running_loop().time()
            assert await asyncio.wait_for(closed, WAIT) == (1006, "keepalive ping timeout")
            elapsed = asyncio.get_running_loop().time() - started
            ws.transport.resume_reading()
        assert elapsed < WAIT  # not the 10 s closing handshake of before

    async def test_the_client_drops_a_silent_server(self) -> None:
        async def stall(ws: Any) -> None:
            await ws.recv()  # the h frame
            await ws.send("k:::null")
            ws.transport.pause_reading()
            await ws.wait_closed()

        from websockets.asyncio.server import serve as ws_serve

        async with ws_serve(stall, "127.0.0.1", 0, ping_interval=None, close_timeout=0.1) as ws_server:
            port = ws_server.sockets[0].getsockname()[1]
            url = f"ws://127.0.0.1:{port}"
            client = await grestws.connect(
                url, FloodApi, ping_interval=0.1, ping_timeout=0.1, reconnect=False
            )
            closed: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()
            client.on_close(lambda code, reason: closed.set_result((code, reason)))
            assert await asyncio.wait_for(closed, WAIT) == (1006, "keepalive ping timeout")


# -- finding 6: limits ---------------------------------------------------------------------------


class TestRate:
    async def test_over_the_rate_a_request_gets_429_with_retry_after(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(flood_app(board, rate=grestws.Rate(3, per=3600)))
        async with grestws.connect(server.url, FloodApi) as client:
            for _ in range(3):
                await client.outgoing.echo(Blob("ok"))
            with pytest.raises(grestws.TooManyRequestsError) as caught:
                await client.outgoing.echo(Blob("over"))
            assert caught.value.data is not None
            assert 1_000_000 < caught.value.data.retry_after_ms <= 1_200_000
            await client.outgoing.note(Blob("dropped"))
        assert kinds(board).count("rate_limited") >= 1

    async def test_a_peer_that_keeps_going_is_closed_with_1008(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(flood_app(board, rate=grestws.Rate(3, per=3600)))
        async with raw(server) as ws:
            fire(ws, [f'r:Flood.echo:{i}:{{"text":"x"}}' for i in range(1, 20)])
            answers: list[str] = []
            with contextlib.suppress(ConnectionClosed):
                async with asyncio.timeout(WAIT):
                    while True:
                        frame = await recv_frame(ws)
                        answers.append("OK" if frame.data["success"] else error_type(frame))
            assert (ws.close_code, ws.close_reason) == (1008, "Too many requests")
        # 3 served, 3 refused (the burst of strikes), then the close: the refusals went out
        # at once, the replies of the served calls only if they were done before the close.
        assert answers.count("TOO_MANY_REQUESTS") == 3
        assert answers.count("OK") <= 3
        assert "policy_close" in kinds(board)

    @pytest.mark.parametrize(
        "frame",
        ["o:::", "s:Flood.echo:99:{}", "h:::{}", "k:::null"],
        ids=["pong", "answer-to-nothing", "second-h", "k"],
    )
    async def test_frames_asking_nothing_are_charged_too(self, start_server: StartServer, frame: str) -> None:
        """A flood of frames that ask nothing (pongs, answers to nothing asked, handshake
        frames after the handshake) costs the server a frame each, as a call does: it is
        charged to the rate, and a peer that keeps going is closed."""
        board = Board()
        server = await start_server(flood_app(board, rate=grestws.Rate(3, per=3600)))
        async with raw(server) as ws:
            fire(ws, [frame] * 20)
            assert await closed_with(ws) == (1008, "Too many requests")
        assert "policy_close" in kinds(board)

    async def test_a_dropped_peer_sees_the_close_at_once(self, start_server: StartServer) -> None:
        """A dropped peer's socket is half-closed behind the close frame: a peer that
        reads gets the close code at once, not at the server's close timeout (30 s here),
        though the server reads nothing more from it."""
        board = Board()
        server = await start_server(flood_app(board, rate=grestws.Rate(3, per=3600), close_timeout=30.0))
        async with raw(server) as ws:
            fire(ws, ["o:::"] * 20)
            assert await closed_with(ws) == (1008, "Too many requests")

    async def test_the_server_lets_a_dropped_peer_go_once_it_has_closed(
        self, start_server: StartServer
    ) -> None:
        """The server's side of a dropped connection ends as soon as the peer has closed
        its side, not at the close timeout (30 s here): what the peer sent after the
        frame that broke the limit is read and discarded, not left in the socket."""
        app = flood_app(Board(), rate=grestws.Rate(3, per=3600), close_timeout=30.0)
        gone: asyncio.Queue[int | None] = asyncio.Queue()
        app.on_disconnect(lambda conn, code, reason: gone.put_nowait(code))
        server = await start_server(app)
        async with raw(server) as ws:
            fire(ws, ["o:::"] * 20)
            assert await closed_with(ws) == (1008, "Too many requests")
        assert await asyncio.wait_for(gone.get(), WAIT) == 1008

    async def test_a_method_rate(self, start_server: StartServer) -> None:
        server = await start_server(flood_app(Board()))
        async with grestws.connect(server.url, FloodApi) as client:
            assert [await client.outgoing.rare() for _ in range(2)] == [1, 1]
            with pytest.raises(grestws.TooManyRequestsError):
                await client.outgoing.rare()
            assert await client.outgoing.echo(Blob("others pass")) == Blob("others pass")

    async def test_an_identity_rate_is_shared_by_its_connections(self, start_server: StartServer) -> None:
        board = Board()
        app = grestws.App(
            limits=grestws.Limits(rate=None, identity_rate=grestws.Rate(4, per=3600)),
            on_error=board.incidents.append,
        )
        schema = FloodApi.use(grestws.BearerAuth(verify=lambda token: _identity(token)))
        app.add(schema, lambda conn: FloodHandler(conn, board))
        server = await start_server(app)
        headers = {"authorization": "Bearer ann"}
        async with (
            grestws.connect(server.url, schema, headers=headers) as one,
            grestws.connect(server.url, schema, headers=headers) as two,
            grestws.connect(server.url, schema, headers={"authorization": "Bearer bob"}) as bob,
        ):
            for client in (one, two, one, two):
                await client.outgoing.echo(Blob("ok"))
            with pytest.raises(grestws.TooManyRequestsError):
                await one.outgoing.echo(Blob("over"))
            with pytest.raises(grestws.TooManyRequestsError):
                await two.outgoing.echo(Blob("over"))
            assert await bob.outgoing.echo(Blob("bob has his own")) == Blob("bob has his own")


async def _identity(token: str) -> grestws.Identity | None:
    return grestws.Identity(token)


class TestDeadlines:
    async def test_a_handler_past_its_deadline_is_cancelled(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(flood_app(board, deadline=0.05))
        async with grestws.connect(server.url, FloodApi) as client:
            with pytest.raises(grestws.ServerError) as caught:
                await client.outgoing.block()
            assert caught.value.message == "Deadline exceeded"
            assert await asyncio.wait_for(board.ended.get(), WAIT) == "block"
            assert await client.outgoing.echo(Blob("alive")) == Blob("alive")
        assert "deadline_exceeded" in kinds(board)

    async def test_a_message_past_its_deadline_is_cancelled_and_reported(
        self, start_server: StartServer
    ) -> None:
        board = Board()
        server = await start_server(flood_app(board, deadline=0.05))
        async with grestws.connect(server.url, FloodApi) as client:
            await client.outgoing.stall()
            assert await asyncio.wait_for(board.ended.get(), WAIT) == "stall"
            incident = await asyncio.wait_for(board.reported.get(), WAIT)
            assert incident.kind is grestws.IncidentKind.DEADLINE_EXCEEDED
            assert incident.message == "Flood.stall: cancelled at its deadline"
            (conn,) = server.connections
            assert conn.in_flight == 0
            assert await client.outgoing.echo(Blob("alive")) == Blob("alive")

    async def test_a_method_deadline_overrides_the_app(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(flood_app(board, deadline=None))
        async with grestws.connect(server.url, FloodApi) as client:
            with pytest.raises(grestws.ServerError, match="Deadline exceeded"):
                await client.outgoing.hurry()

    async def test_no_deadline(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(flood_app(board, deadline=0.01))
        async with grestws.connect(server.url, FloodApi, timeout=0.2) as client:
            with pytest.raises(grestws.RequestTimeoutError):
                await client.outgoing.linger()  # math.inf: runs until the client gives up
            assert board.ended.empty()

    async def test_handlers_of_a_closed_connection_are_cancelled(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(flood_app(board, deadline=None))
        server.app.shutdown_timeout = 0.05
        async with raw(server) as ws:
            await ws.send("r:Flood.block:1:")
            assert await asyncio.wait_for(board.started.get(), WAIT) == "block"
        assert await asyncio.wait_for(board.ended.get(), WAIT) == "block"


class TestPushes:
    async def test_pushes_to_a_peer_that_does_not_read_are_dropped(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(
            flood_app(board, push_buffer=64 << 10, max_outgoing_buffer=None, max_dropped_pushes=None)
        )
        async with raw(server, max_queue=1) as ws:
            ws.transport.pause_reading()
            await ws.send("r:Flood.push:1:2000")
            for _ in range(100):
                if "push_dropped" in kinds(board):
                    break
                await asyncio.sleep(0.01)
            assert "push_dropped" in kinds(board)
            assert board.connections[0].is_open
            ws.transport.resume_reading()
            while True:  # the reply comes after the pushes that were written
                frame = await recv_frame(ws)
                if frame.type == "s":
                    break
            written = frame.data["data"]
            assert 0 < written < 2000
            assert written + kinds(board).count("push_dropped") == 2000

    async def test_a_peer_that_misses_too_many_pushes_is_closed(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(flood_app(board, push_buffer=64 << 10, max_dropped_pushes=10))
        async with raw(server, max_queue=1) as ws:
            ws.transport.pause_reading()
            await ws.send("r:Flood.push:1:2000")
            ws.transport.resume_reading()
            assert await closed_with(ws) == (1013, "Missed 10 pushes in a row")


class TestConnectionCaps:
    async def test_over_the_server_cap_the_upgrade_gets_503(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(flood_app(board, max_connections=2))
        async with raw(server), raw(server):
            with pytest.raises(grestws.ConnectError, match="HTTP 503"):
                await grestws.connect(server.url, FloodApi)
        assert "connection_refused" in kinds(board)
        async with grestws.connect(server.url, FloodApi) as client:  # room again
            assert await client.outgoing.echo(Blob("in")) == Blob("in")

    async def test_over_the_identity_cap_the_handshake_is_refused(self, start_server: StartServer) -> None:
        app = grestws.App(limits=grestws.Limits(max_connections_per_identity=1))
        schema = FloodApi.use(grestws.BearerAuth(verify=_identity))
        app.add(schema, lambda conn: FloodHandler(conn, Board()))
        server = await start_server(app)
        headers = {"authorization": "Bearer ann"}
        async with grestws.connect(server.url, schema, headers=headers):
            with pytest.raises(grestws.TooManyRequestsError, match="Too many connections for this identity"):
                await grestws.connect(server.url, schema, headers=headers)
            async with grestws.connect(server.url, schema, headers={"authorization": "Bearer bob"}):
                pass
        async with grestws.connect(server.url, schema, headers=headers):  # ann's first one left
            pass


class TestHandshakeFlood:
    async def test_too_many_frames_before_k_close_the_connection(self, start_server: StartServer) -> None:
        class Slow(grestws.Middleware):
            async def process(self, handshake: grestws.ServerHandshake) -> None:
                await asyncio.sleep(0.2)

        app = grestws.App(limits=grestws.Limits(max_outgoing_buffer=64 << 10))
        app.add(FloodApi.use(Slow()), lambda conn: FloodHandler(conn, Board()))
        server = await start_server(app)
        async with ws_connect(server.url + FloodApi.path, open_timeout=WAIT) as ws:
            fire(ws, ["h:::{}", *echoes(1, 100, 1_000)])
            assert await closed_with(ws) == (1008, "Too many frames before the handshake ended")


# -- origins ---------------------------------------------------------------------------------


class Session(grestws.Middleware):
    """Cookie authentication: the ``session`` cookie names the user."""

    async def identify(self, handshake: grestws.ServerHandshake) -> grestws.Identity | None:
        user = handshake.cookies.get("session")
        if user is None:
            raise grestws.NotAuthorizedError("No session cookie")
        return grestws.Identity(user)


def cookie_app(**settings: Any) -> grestws.App:
    app = grestws.App(**settings)
    app.add(FloodApi.use(Session()), lambda conn: FloodHandler(conn, Board()))
    return app


def upgrade(origin: str | None) -> dict[str, str]:
    headers = {"Cookie": "session=alice"}
    if origin is not None:
        headers["Origin"] = origin
    return headers


class TestOrigins:
    async def test_a_foreign_page_cannot_use_the_cookie(self, start_server: StartServer) -> None:
        server = await start_server(cookie_app())
        with pytest.raises(grestws.NotAuthorizedError, match="No session cookie"):
            await grestws.connect(server.url, FloodApi, upgrade_headers=upgrade("https://evil.example"))

    @pytest.mark.parametrize("origin", [None, "same"])
    async def test_same_origin_and_non_browsers_use_the_cookie(
        self, start_server: StartServer, origin: str | None
    ) -> None:
        server = await start_server(cookie_app())
        if origin == "same":
            origin = server.url.replace("ws://", "http://")
        async with grestws.connect(server.url, FloodApi, upgrade_headers=upgrade(origin)) as client:
            assert await client.outgoing.echo(Blob("in")) == Blob("in")

    async def test_an_allowlist_refuses_other_origins_with_403(self, start_server: StartServer) -> None:
        server = await start_server(cookie_app(allowed_origins=["https://app.example.com"]))
        with pytest.raises(grestws.ConnectError, match="HTTP 403"):
            await grestws.connect(server.url, FloodApi, upgrade_headers=upgrade("https://evil.example"))
        async with grestws.connect(
            server.url, FloodApi, upgrade_headers=upgrade("https://app.example.com")
        ) as client:
            assert await client.outgoing.echo(Blob("in")) == Blob("in")


# -- the hook ----------------------------------------------------------------------------------


class TestOnError:
    async def test_the_hook_sees_the_connection_and_the_error(self, start_server: StartServer) -> None:
        board = Board()
        server = await start_server(flood_app(board))
        async with raw(server) as ws:
            await ws.send("r:Flood.nothing:1:")
            await recv_frame(ws)
        (incident,) = board.incidents
        assert incident.kind is grestws.IncidentKind.UNKNOWN_ROUTE
        assert incident.connection is board.connections[0]
        assert incident.path == "Flood.nothing"
        assert isinstance(incident.error, grestws.RouteNotFoundError)
        assert incident.answered is True

    @pytest.mark.logs_errors
    async def test_a_failing_hook_is_logged_not_raised(
        self, start_server: StartServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        def fail(incident: grestws.Incident) -> None:
            raise RuntimeError("hook bug")

        app = grestws.App(on_error=fail)
        app.add(FloodApi, lambda conn: FloodHandler(conn, Board()))
        server = await start_server(app)
        async with raw(server) as ws:
            await ws.send("garbage")
            await ws.send('r:Flood.echo:1:{"text":"alive"}')
            assert (await recv_frame(ws)).data["data"] == {"text": "alive", "extra": None}
        (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert record.getMessage() == "the on_error hook failed"
