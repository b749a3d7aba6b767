"""The App as an ASGI application (grestws.transports.asgi), on what only ASGI has: mounts
and root paths, plain HTTP requests, the lifespan, and the transport's own bookkeeping
under uvicorn. Everything else runs over uvicorn with the integration suite (the
``start_server`` fixture of tests/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

import grestws
from grestws.transports.asgi import AsgiTransport, connect_request
from tests.servers import UvicornServer
from tests.support import WAIT, Hub, Note, Posted, RoomApi, raw_socket, room_app


class StartUvicorn(Protocol):
    async def __call__(self, app: grestws.App, asgi: Any = None, **options: Any) -> UvicornServer: ...


@pytest.fixture
async def start_uvicorn() -> AsyncIterator[StartUvicorn]:
    """``await start_uvicorn(app, asgi=None, **uvicorn_config)``: ``app`` (or ``asgi``, which
    mounts it) under uvicorn on 127.0.0.1; every server is closed when the test ends."""
    servers: list[UvicornServer] = []

    async def start(app: grestws.App, asgi: Any = None, **options: Any) -> UvicornServer:
        server = await UvicornServer.start(app, asgi, **options)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close(timeout=1.0)


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds, looking every 10 ms, at most WAIT seconds (for
    state that nothing signals, such as the App's registry)."""
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    assert condition(), f"still not true after {WAIT} s"


def http_url(server: UvicornServer) -> str:
    return f"http://{server.host}:{server.port}"


class TestRoutes:
    async def test_a_mounted_app_serves_its_paths_under_the_mount(self, start_uvicorn: StartUvicorn) -> None:
        hub = Hub()
        sockets = room_app(hub)
        server = await start_uvicorn(sockets, Starlette(routes=[Mount("/rt", app=sockets)]))
        async with grestws.connect(server.url + "/rt", RoomApi) as client:
            assert await asyncio.wait_for(client.outgoing.post(Note(text="hi")), WAIT) == Posted(1, "hi")
            (conn,) = hub.connections
            assert conn.path == conn.request.path == "/ws/room"
        with pytest.raises(grestws.ConnectError, match="HTTP 404"):
            await asyncio.wait_for(grestws.connect(server.url + "/rt/ws", RoomApi), WAIT)

    async def test_the_root_path_of_a_proxy_is_not_part_of_the_route(
        self, start_uvicorn: StartUvicorn
    ) -> None:
        hub = Hub()
        server = await start_uvicorn(room_app(hub), root_path="/api")  # the proxy strips /api
        async with grestws.connect(server.url, RoomApi) as client:
            assert await asyncio.wait_for(client.outgoing.count(), WAIT) == 0
            assert hub.connections[0].request.path == "/ws/room"

    @pytest.mark.parametrize(
        ("root", "path", "route"),
        [
            ("/rt", "/rt/ws/room", "/ws/room"),
            ("/rt/", "/rt/ws/room", "/ws/room"),
            ("/rt", "/rt", "/"),
            ("/rt", "/rtx/ws/room", "/rtx/ws/room"),  # /rt is no prefix of /rtx
            ("", "/ws/room", "/ws/room"),
            ("", "/ws/room/", "/ws/room"),  # a mount that adds a trailing slash (Litestar)
            ("/rt", "/rt/", "/"),
            ("", "/", "/"),
        ],
    )
    def test_the_root_path_is_cut_whole_segments_at_a_time(self, root: str, path: str, route: str) -> None:
        scope: dict[str, Any] = {
            "type": "websocket",
            "path": path,
            "root_path": root,
            "query_string": b"a=1",
            "headers": [],
        }
        request = connect_request(scope)
        assert (request.path, request.query) == (route, {"a": "1"})

    async def test_a_plain_http_request_gets_404(self, start_uvicorn: StartUvicorn) -> None:
        server = await start_uvicorn(room_app(Hub()))
        async with httpx.AsyncClient(base_url=http_url(server), timeout=WAIT) as http:
            for path in (RoomApi.path, "/"):
                response = await http.get(path)
                assert response.status_code == 404
                assert response.text == "Not Found\n"


class LockedServer(Protocol):
    @grestws.request(permission=grestws.Scope("vault:open"))
    async def open(self) -> str: ...


class LockedClient(Protocol):
    @grestws.notify
    async def nothing(self) -> None: ...


Locked = grestws.SocketContract("Locked", client_to_server=LockedServer, server_to_client=LockedClient)


class LockedHandler(LockedServer):
    def __init__(self, conn: grestws.ServerConnection[LockedClient]) -> None:
        pass

    async def open(self) -> str:
        return "open"


def locked_app() -> grestws.App:
    """An App that cannot be served: a permission, and no middleware that identifies anyone."""
    app = grestws.App()
    app.add(Locked.at("/vault"), LockedHandler)
    return app


async def lifespan(app: grestws.App, *messages: str) -> list[dict[str, Any]]:
    """Run the App's ASGI lifespan with ``lifespan.<message>`` events; what it sent back."""
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message in messages:
        events.put_nowait({"type": f"lifespan.{message}"})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return await events.get()

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    await asyncio.wait_for(app(scope, receive, send), WAIT)
    return sent


class TestLifespan:
    async def test_startup_fails_for_an_app_that_cannot_be_served(self) -> None:
        app = locked_app()
        with pytest.raises(grestws.ContractError) as caught:
            app.check()
        (failed,) = await lifespan(app, "startup")
        assert failed == {"type": "lifespan.startup.failed", "message": str(caught.value)}
        assert "Locked.open at /vault" in failed["message"]

    @pytest.mark.logs_errors  # uvicorn logs "Application startup failed. Exiting." at ERROR
    async def test_uvicorn_refuses_to_start_it(self) -> None:
        with pytest.raises(RuntimeError, match="uvicorn exited"):
            await UvicornServer.start(locked_app())

    async def test_startup_and_shutdown_complete(self) -> None:
        sent = await lifespan(room_app(Hub()), "startup", "shutdown")
        assert [message["type"] for message in sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]

    async def test_shutdown_leaves_the_connections_of_another_server_alone(self) -> None:
        app = room_app(Hub())
        async with grestws.serve(app, "127.0.0.1", 0) as other, grestws.connect(other.url, RoomApi) as client:
            await lifespan(app, "startup", "shutdown")
            assert await asyncio.wait_for(client.outgoing.count(), WAIT) == 0
            assert len(other.connections) == 1


class TestConnections:
    async def test_the_registry_is_empty_once_clients_leave(self, start_uvicorn: StartUvicorn) -> None:
        app = room_app(Hub())
        server = await start_uvicorn(app)
        async with (
            grestws.connect(server.url, RoomApi) as one,
            grestws.connect(server.url, RoomApi) as two,
            raw_socket(server.url + RoomApi.path) as raw,
        ):
            await asyncio.wait_for(asyncio.gather(one.outgoing.count(), two.outgoing.count()), WAIT)
            await raw.send("r:RoomApi.count:1:")
            await asyncio.wait_for(raw.recv(), WAIT)
            assert len(server.connections) == len(app.connections) == 3
        await eventually(lambda: len(app.connections) == 0)
        assert not server.connections

    async def test_uvicorn_keepalive_ends_a_peer_that_never_answers_pings(
        self, start_uvicorn: StartUvicorn
    ) -> None:
        app = room_app(Hub())
        server = await start_uvicorn(app, ws_ping_interval=0.1, ws_ping_timeout=0.1)
        async with raw_socket(server.url + RoomApi.path) as ws:
            (conn,) = server.connections
            closed = asyncio.Event()
            conn.on_close(lambda code, reason: closed.set())
            ws.transport.pause_reading()  # a paused process: it never answers a ping
            await asyncio.wait_for(closed.wait(), WAIT)
            ws.transport.resume_reading()
        await eventually(lambda: len(app.connections) == 0)


# -- a peer that does not read --------------------------------------------------------------


class PipeServer(Protocol):
    @grestws.request
    async def blob(self, size: int) -> str:
        """``size`` bytes of text."""
        ...


class PipeClient(Protocol):
    @grestws.notify
    async def chunk(self, text: str) -> None: ...


PipeApi = grestws.SocketContract("Pipe", client_to_server=PipeServer, server_to_client=PipeClient).at(
    "/ws/pipe"
)


class PipeHandler(PipeServer):
    """Adds its connection to ``conns``; puts the size of every blob it serves in ``served``."""

    def __init__(
        self,
        conn: grestws.ServerConnection[PipeClient],
        conns: list[grestws.ServerConnection[PipeClient]],
        served: asyncio.Queue[int] | None = None,
    ) -> None:
        conns.append(conn)
        self.served = served

    async def blob(self, size: int) -> str:
        if self.served is not None:
            self.served.put_nowait(size)
        return "x" * size


BOUND = 256 << 10
ANSWER = 64 << 10


async def tight_socket(server: UvicornServer) -> socket.socket:
    """A socket connected to ``server`` whose receive buffer is small and fixed (no
    autotuning), so that a peer that does not read fills it soon."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 10)
        sock.setblocking(False)
        await asyncio.wait_for(
            asyncio.get_running_loop().sock_connect(sock, (server.host, server.port)), WAIT
        )
    except BaseException:
        sock.close()
        raise
    return sock


class TestSlowConsumer:
    async def test_a_flooding_peer_that_does_not_read_is_closed_with_1013(
        self, start_uvicorn: StartUvicorn
    ) -> None:
        """The answers to a peer that never reads wait in the transport's queue; past
        ``max_outgoing_buffer`` the peer is closed with 1013, and what was queued is freed."""
        conns: list[grestws.ServerConnection[PipeClient]] = []
        buffered: list[int] = []
        slow = asyncio.Event()

        def on_error(incident: grestws.Incident) -> None:
            if incident.kind is grestws.IncidentKind.SLOW_CONSUMER:
                buffered.append(conns[0].buffered)
                slow.set()

        limits = grestws.Limits(rate=None, identity_rate=None, max_outgoing_buffer=BOUND, close_timeout=0.2)
        app = grestws.App(limits=limits, on_error=on_error)
        app.add(PipeApi, lambda conn: PipeHandler(conn, conns))
        server = await start_uvicorn(app)
        async with ws_connect(
            server.url + PipeApi.path, sock=await tight_socket(server), open_timeout=WAIT, max_size=None
        ) as ws:
            await ws.send("h:::{}")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"
            closed: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()
            conns[0].on_close(lambda code, reason: closed.set_result((code, reason)))
            ws.transport.pause_reading()
            with contextlib.suppress(ConnectionClosed):
                for i in range(1, 401):  # 25 MiB of answers: more than the sockets' buffers hold
                    await ws.send(f"r:Pipe.blob:{i}:{ANSWER}")
                    if slow.is_set():
                        break
            await asyncio.wait_for(slow.wait(), WAIT)
            assert await asyncio.wait_for(closed, WAIT) == (1013, "Too slow to read")
            assert buffered[0] <= BOUND + ANSWER + 100  # the limit and the answer that crossed it
            assert conns[0].buffered == 0
            ws.transport.resume_reading()
            with pytest.raises(ConnectionClosed):  # noqa: PT012 - read what was sent until the end
                async with asyncio.timeout(WAIT):
                    while True:
                        await ws.recv()
        await eventually(lambda: len(app.connections) == 0)

    async def test_a_send_held_back_by_the_server_ends_with_the_dropped_peer(
        self, start_uvicorn: StartUvicorn
    ) -> None:
        """An answer the ASGI server holds back (the peer does not read) fails at once when
        the peer is dropped, so the connection leaves the registry within close_timeout,
        not shutdown_timeout."""
        conns: list[grestws.ServerConnection[PipeClient]] = []
        served: asyncio.Queue[int] = asyncio.Queue()
        limits = grestws.Limits(push_buffer=1024, max_dropped_pushes=3, close_timeout=0.2)
        app = grestws.App(limits=limits, shutdown_timeout=60)
        app.add(PipeApi, lambda conn: PipeHandler(conn, conns, served))
        server = await start_uvicorn(app)
        async with ws_connect(
            server.url + PipeApi.path, sock=await tight_socket(server), open_timeout=WAIT, max_size=None
        ) as ws:
            await ws.send("h:::{}")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"
            (conn,) = conns
            closed: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()
            conn.on_close(lambda code, reason: closed.set_result((code, reason)))
            ws.transport.pause_reading()
            await ws.send(f"r:Pipe.blob:1:{12 << 20}")  # more than the sockets' buffers hold
            assert await asyncio.wait_for(served.get(), WAIT) == 12 << 20
            await eventually(lambda: conn.in_flight == 0)  # handed to uvicorn, which now holds back
            await ws.send("r:Pipe.blob:2:1")
            assert await asyncio.wait_for(served.get(), WAIT) == 1
            assert conn.in_flight == 1  # its answer waits in uvicorn's send
            written = [grestws.broadcast([conn], PipeClient.chunk, "x" * 2048) for _ in range(4)]
            assert written == [1, 0, 0, 0]
            assert await asyncio.wait_for(closed, WAIT) == (1013, "Missed 3 pushes in a row")
            await eventually(lambda: len(app.connections) == 0)
            ws.transport.resume_reading()
            with pytest.raises(ConnectionClosed):  # noqa: PT012 - read what was sent until the end
                async with asyncio.timeout(WAIT):
                    while True:
                        await ws.recv()


class FakeAsgi:
    """The two callables an ASGI server hands a websocket connection, in-process: every
    ``send`` is recorded, and waits while ``writable`` is clear (a server holding back)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(self, message: Any) -> None:
        await self.writable.wait()
        self.sent.append(message.get("text", message["type"]))


class TestWriting:
    async def test_a_frame_reaches_a_send_that_does_not_wait_before_write_returns(self) -> None:
        """No task in between: a push or an answer is with the ASGI server when write()
        returns, as with uvicorn while the peer reads."""
        asgi = FakeAsgi()
        transport = AsgiTransport(asgi.receive, asgi.send, grestws.Limits())
        assert transport.write(b"m:Room.note::1")
        assert transport.write(b"m:Room.note::2")
        assert asgi.sent == ["m:Room.note::1", "m:Room.note::2"]
        assert transport.buffered == 0
        asgi.gone.set()
        assert await asyncio.wait_for(transport.wait_closed(), WAIT) == (1000, "")

    async def test_frames_behind_a_send_that_waits_stay_queued_and_go_in_order(self) -> None:
        asgi = FakeAsgi()
        transport = AsgiTransport(asgi.receive, asgi.send, grestws.Limits())
        asgi.writable.clear()
        assert transport.write(b"m:Room.note::1")
        assert transport.write(b"m:Room.note::2")
        assert not transport.write(b"m:Room.note::3", limit=10)  # over the limit: not queued
        assert asgi.sent == []
        assert transport.buffered == 2 * len(b"m:Room.note::1")
        asgi.writable.set()
        close = asyncio.create_task(transport.close(1000, "bye"))
        await eventually(lambda: asgi.sent == ["m:Room.note::1", "m:Room.note::2", "websocket.close"])
        assert transport.buffered == 0
        asgi.gone.set()
        await asyncio.wait_for(close, WAIT)
