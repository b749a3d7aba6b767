"""The picows transport: :class:`~grestws.transports.picows.PicowsDialer` against both
servers (grestws.serve over websockets and over picows), what only the picows server does
(fragments, flow control, liveness), ``grestws serve --transport picows`` in a real
subprocess, and grestws without picows installed.

The whole integration suite also runs over the picows server: ``picows`` is one of the
transports of the ``start_server`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
import pytest
from picows import WSTransport
from websockets.asyncio.client import connect as ws_connect

import grestws
from grestws.server import TransportName
from grestws.transports import Dialed
from grestws.transports.picows import PicowsDialer, PicowsTransport
from tests.proxy import TcpProxy
from tests.support import (
    WAIT,
    Hub,
    Kick,
    Note,
    Posted,
    Question,
    RoomApi,
    RoomClientHandler,
    RoomFull,
    next_item,
    raw_socket,
    room_app,
)
from tests.test_cli import LISTENING, ROOT, chat_round_trip, run_cli, serve_command
from tests.test_limits import Board, closed_with, echoes, fire, flood_app, kinds, raw

SERVERS: tuple[TransportName, ...] = ("websockets", "picows")
DEAD = (1006, "keepalive ping timeout")
Closed = tuple[int | None, str]


@pytest.fixture(params=SERVERS)
def served_by(request: pytest.FixtureRequest) -> TransportName:
    """What grestws.serve accepts connections with."""
    kind: TransportName = request.param
    return kind


@contextlib.asynccontextmanager
async def serving(
    app: grestws.App, transport: TransportName, **options: Any
) -> AsyncIterator[grestws.Server]:
    async with grestws.serve(app, "127.0.0.1", 0, transport=transport, **options) as server:
        yield server


def dial(url: str, **options: Any) -> Any:
    """``grestws.connect`` to RoomApi at ``url`` with a PicowsDialer (``options`` split
    between the dialer and the client)."""
    dialer_options = {
        name: options.pop(name)
        for name in ("max_message_size", "ping_interval", "ping_timeout")
        if name in options
    }
    return grestws.connect(url, RoomApi, dialer=PicowsDialer(**dialer_options), **options)


def on_close(client: grestws.Client[Any, Any]) -> asyncio.Future[Closed]:
    closed: asyncio.Future[Closed] = asyncio.get_running_loop().create_future()

    def note(code: int | None, reason: str) -> None:
        if not closed.done():
            closed.set_result((code, reason))

    client.on_close(note)
    return closed


def on_disconnect(app: grestws.App) -> asyncio.Queue[Closed]:
    seen: asyncio.Queue[Closed] = asyncio.Queue()
    app.on_disconnect(lambda conn, code, reason: seen.put_nowait((code, reason)))
    return seen


# -- the dialer against both servers ----------------------------------------------------------


class TestDialerCalls:
    async def test_requests_messages_and_errors(self, served_by: TransportName) -> None:
        hub = Hub()
        async with serving(room_app(hub), served_by) as server, dial(server.url) as client:
            assert await asyncio.wait_for(client.outgoing.post(Note(text="hi")), WAIT) == Posted(1, "hi")
            assert await asyncio.wait_for(client.outgoing.double(21), WAIT) == 42
            await client.outgoing.record(Note(text="fire and forget"))
            assert (await next_item(hub.notes)).text == "fire and forget"
            with pytest.raises(RoomFull) as caught:
                await asyncio.wait_for(client.outgoing.post(Note(text="x", room_id="full")), WAIT)
            assert caught.value.data.seats == 8
            calls = [client.outgoing.double(n) for n in range(50)]
            assert await asyncio.wait_for(asyncio.gather(*calls), WAIT) == [2 * n for n in range(50)]
            info = await asyncio.wait_for(client.outgoing.whoami(), WAIT)
            assert (info.remote_host, info.path) == ("127.0.0.1", "/ws/room")

    async def test_pushes_and_server_requests(self, served_by: TransportName) -> None:
        hub = Hub()
        handler = RoomClientHandler()
        async with serving(room_app(hub), served_by) as server, dial(server.url, handlers=handler) as client:
            answer = await asyncio.wait_for(client.outgoing.ask_client(Question("loud")), WAIT)
            assert answer == "LOUD"
            conn = hub.connections[0]
            await conn.outgoing.notice(Note(text="pushed"))
            await conn.outgoing.tick()
            assert (await next_item(handler.notices)).text == "pushed"
            assert await next_item(handler.ticks) is None
            assert await asyncio.wait_for(conn.outgoing.confirm(), WAIT) is True

    async def test_a_large_message_both_ways(self, served_by: TransportName) -> None:
        text = "é" * 200_000  # 400 kB of UTF-8: many socket writes, and flow control
        async with serving(room_app(Hub()), served_by) as server, dial(server.url) as client:
            posted = await asyncio.wait_for(client.outgoing.post(Note(text=text)), WAIT)
            assert posted.text == text

    async def test_the_transport_shows_picows_own_once_upgraded(self, served_by: TransportName) -> None:
        dialed: list[Dialed] = []

        async def keeping(url: str, headers: Mapping[str, str], /) -> Dialed:
            dialed.append(await PicowsDialer()(url, headers))
            return dialed[0]

        async with serving(room_app(Hub()), served_by) as server:
            client = await grestws.connect(server.url, RoomApi, dialer=keeping)
            try:
                (first,) = dialed
                assert isinstance(first.transport, PicowsTransport)
                assert isinstance(first.transport.ws, WSTransport)
            finally:
                await client.close()
        assert PicowsTransport().ws is None  # not upgraded yet


class TestDialerCloseCodes:
    async def test_the_server_closes_with_its_code(self, served_by: TransportName) -> None:
        async with serving(room_app(Hub()), served_by) as server:
            client = await dial(server.url, reconnect=False)
            closed = on_close(client)
            await client.outgoing.kick(Kick(4002, "go away"))
            assert await asyncio.wait_for(closed, WAIT) == (4002, "go away")

    async def test_the_client_closes_with_1000(self, served_by: TransportName) -> None:
        app = room_app(Hub())
        seen = on_disconnect(app)
        async with serving(app, served_by) as server:
            async with dial(server.url):
                pass
            assert await next_item(seen) == (1000, "")

    async def test_a_graceful_shutdown_is_1012(self, served_by: TransportName) -> None:
        server = await grestws.serve(room_app(Hub()), "127.0.0.1", 0, transport=served_by)
        client = await dial(server.url, reconnect=False)
        closed = on_close(client)
        await server.close(timeout=1.0)
        assert await asyncio.wait_for(closed, WAIT) == (1012, "Server restarting")
        assert client.state is grestws.ClientState.CLOSED

    async def test_a_message_over_the_clients_limit_is_1009(self, served_by: TransportName) -> None:
        hub = Hub()
        async with serving(room_app(hub), served_by) as server:
            client = await dial(server.url, max_message_size=1024, reconnect=False)
            closed = on_close(client)
            await hub.connections[0].outgoing.notice(Note(text="x" * 2000))
            code, _ = await asyncio.wait_for(closed, WAIT)
            assert code == 1009


class TestRefusals:
    @pytest.mark.parametrize(
        ("path", "origin", "status", "text"),
        [
            ("/nope", None, 404, "Not Found\n"),
            (RoomApi.path, "https://evil.example.com", 403, "Origin not allowed\n"),
        ],
    )
    async def test_both_servers_answer_the_upgrade_alike(
        self, served_by: TransportName, path: str, origin: str | None, status: int, text: str
    ) -> None:
        upgrade = {
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            **({"Origin": origin} if origin else {}),
        }
        app = room_app(Hub(), allowed_origins=["https://app.example.com"])
        async with serving(app, served_by) as server, httpx.AsyncClient(timeout=WAIT) as http:
            response = await http.get(f"http://127.0.0.1:{server.port}{path}", headers=upgrade)
        assert (response.status_code, response.text) == (status, text)
        assert response.headers["content-type"] == "text/plain; charset=utf-8"


class TestDialerRefusals:
    async def test_an_unknown_path_is_http_404(self, served_by: TransportName) -> None:
        async with serving(room_app(Hub()), served_by) as server:
            with pytest.raises(grestws.ConnectError, match="HTTP 404"):
                await grestws.connect(server.url + "/nope", RoomApi, dialer=PicowsDialer(), reconnect=False)

    async def test_a_foreign_origin_is_http_403(self, served_by: TransportName) -> None:
        app = room_app(Hub(), allowed_origins=["https://app.example.com"])
        async with serving(app, served_by) as server:
            with pytest.raises(grestws.ConnectError, match="HTTP 403"):
                await grestws.connect(
                    server.url,
                    RoomApi,
                    dialer=PicowsDialer(),
                    upgrade_headers={"Origin": "https://evil.example.com"},
                    reconnect=False,
                )

    async def test_a_refused_handshake_is_the_typed_error(self, served_by: TransportName) -> None:
        hub = Hub()
        hub.refuse = grestws.NotAuthorizedError("No token")
        async with serving(room_app(hub), served_by) as server:
            with pytest.raises(grestws.NotAuthorizedError, match="No token"):
                await dial(server.url, reconnect=False)

    async def test_nothing_listening_is_a_connect_error(self) -> None:
        with socket_bound() as port, pytest.raises(grestws.ConnectError):
            await grestws.connect(f"ws://127.0.0.1:{port}", RoomApi, dialer=PicowsDialer(), reconnect=False)

    @pytest.mark.parametrize(
        ("option", "value"),
        [("max_message_size", 4096), ("ping_interval", 5.0), ("ping_timeout", None), ("compression", True)],
    )
    def test_a_transport_option_beside_a_dialer_is_refused(self, option: str, value: object) -> None:
        """The client's transport options are the default dialer's: beside another one
        they would do nothing, so the client says so instead of ignoring them."""
        options: dict[str, Any] = {option: value}
        with pytest.raises(ValueError, match=f"{option} would be ignored with the dialer PicowsDialer"):
            grestws.Client("ws://127.0.0.1:9", RoomApi, dialer=PicowsDialer(), **options)
        # Their defaults beside a dialer lose nothing: no error.
        grestws.Client(
            "ws://127.0.0.1:9",
            RoomApi,
            dialer=PicowsDialer(),
            max_message_size=1 << 20,
            ping_interval=30.0,
            ping_timeout=10.0,
            compression=False,
        )

    async def test_a_dial_cut_short_closes_its_socket(self) -> None:
        """A server that accepts and never answers the upgrade: the client gives up at its
        handshake timeout, and the socket it opened is closed (the server reads its end)."""
        ended = asyncio.Event()

        async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while await reader.read(4096):
                    pass
            ended.set()
            writer.close()

        mute_server = await asyncio.start_server(mute, "127.0.0.1", 0)
        try:
            port = mute_server.sockets[0].getsockname()[1]
            with pytest.raises(grestws.HandshakeTimeoutError):
                await grestws.connect(
                    f"ws://127.0.0.1:{port}",
                    RoomApi,
                    dialer=PicowsDialer(),
                    handshake_timeout=0.2,
                    reconnect=False,
                )
            await asyncio.wait_for(ended.wait(), WAIT)
        finally:
            mute_server.close()
            await mute_server.wait_closed()


@contextlib.contextmanager
def socket_bound() -> Iterator[int]:
    """A port that is bound and not listening: a connection to it is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


class TestDialerLiveness:
    async def test_both_ends_drop_a_black_holed_link(self, served_by: TransportName) -> None:
        app = room_app(Hub())
        seen = on_disconnect(app)
        async with (
            serving(app, served_by, ping_interval=0.1, ping_timeout=0.1) as server,
            TcpProxy(server.port) as proxy,
        ):
            client = await dial(
                f"ws://127.0.0.1:{proxy.port}", ping_interval=0.1, ping_timeout=0.1, reconnect=False
            )
            closed = on_close(client)
            assert await asyncio.wait_for(client.outgoing.double(2), WAIT) == 4
            proxy.black_hole()
            assert await next_item(seen) == DEAD
            assert await asyncio.wait_for(closed, WAIT) == DEAD
            assert server.connections == set()


# -- what the picows server does itself ----------------------------------------------------------


class TestPicowsServer:
    async def test_fragments_are_joined(self) -> None:
        hub = Hub()
        async with serving(room_app(hub), "picows") as server, raw_socket(server.url + RoomApi.path) as ws:
            await ws.send(['m:RoomApi.record::{"text":"', "in ", "three parts", '"}'])
            assert (await next_item(hub.notes)).text == "in three parts"
            await ws.send([b'm:RoomApi.record::{"text":"bin', b'ary"}'])  # binary frames: the same bytes
            assert (await next_item(hub.notes)).text == "binary"

    async def test_fragments_over_the_limit_are_1009(self) -> None:
        app = room_app(Hub(), limits=grestws.Limits(max_message_size=1024))
        async with serving(app, "picows") as server, raw_socket(server.url + RoomApi.path) as ws:
            await ws.send(["x" * 600, "y" * 600])  # each fragment fits, the message does not
            code, _ = await closed_with(ws)
            assert code == 1009

    async def test_a_peer_that_does_not_read_is_closed_with_1013(self) -> None:
        board = Board()
        app = flood_app(board, rate=None, max_outgoing_buffer=256 << 10)
        async with serving(app, "picows") as server, raw(server, max_queue=1) as ws:
            ws.transport.pause_reading()  # the peer stops reading: nothing it is sent is taken
            fire(ws, echoes(1, 2_000, 20_000))
            ws.transport.resume_reading()
            assert await closed_with(ws) == (1013, "Too slow to read")
        assert "slow_consumer" in kinds(board)

    async def test_a_silent_peer_is_dropped(self) -> None:
        board = Board()
        app = flood_app(board)
        async with serving(app, "picows", ping_interval=0.1, ping_timeout=0.1) as server, raw(server) as ws:
            closed: asyncio.Future[Closed] = asyncio.get_running_loop().create_future()
            board.connections[0].on_close(lambda code, reason: closed.set_result((code, reason)))
            ws.transport.pause_reading()  # a paused process: it never answers a ping
            assert await asyncio.wait_for(closed, WAIT) == DEAD
            ws.transport.resume_reading()
        assert "dead_peer" in kinds(board)

    async def test_pings_are_answered(self) -> None:
        """grestws answers pings itself (picows' automatic pongs are off, so that a ping
        reaches the liveness watch as any frame does)."""
        async with serving(room_app(Hub()), "picows") as server, raw_socket(server.url + RoomApi.path) as ws:
            for _ in range(3):
                await asyncio.wait_for(await ws.ping(), WAIT)

    async def test_handshake_request_details(self) -> None:
        hub = Hub()
        async with (
            serving(room_app(hub), "picows") as server,
            ws_connect(
                server.url + RoomApi.path + "?room=blue&empty=", additional_headers={"X-Trace": "t1"}
            ) as ws,
        ):
            await ws.send("h:::{}")
            assert await asyncio.wait_for(ws.recv(), WAIT) == "k:::null"
            request = hub.connections[0].request
            assert request.path == RoomApi.path
            assert dict(request.query) == {"room": "blue", "empty": ""}
            assert request.headers["x-trace"] == "t1"
            assert request.remote_address[0] == "127.0.0.1"

    def test_options_picows_cannot_honour(self) -> None:
        with pytest.raises(ValueError, match="permessage-deflate"):
            grestws.serve(grestws.App(), transport="picows", compression=True)
        with pytest.raises(ValueError, match="unknown transport"):
            grestws.serve(grestws.App(), transport="nope")  # type: ignore[arg-type]


# -- the command line and picows' absence ----------------------------------------------------------


@pytest.mark.slow
class TestCommandLine:
    async def test_serve_with_picows(self) -> None:
        command = serve_command("examples.chat.server:app", "--port", "0", "--transport", "picows")
        async with run_cli(command) as served:
            match = await served.read_until(LISTENING)
            await chat_round_trip(match[1].removesuffix("/ws/chat"))
            served.process.send_signal(signal.SIGTERM)
            assert await served.finish() == 0
        assert served.lines[-1].endswith("grestws: stopped")
        assert "Traceback" not in "\n".join(served.lines)

    def test_compression_is_a_usage_error(self) -> None:
        done = subprocess.run(
            serve_command("examples.chat.server:app", "--transport", "picows", "--compression"),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 2
        assert "picows has no permessage-deflate" in done.stderr


WITHOUT_PICOWS = """
import sys
sys.modules["picows"] = None  # as if it were not installed
import asyncio, grestws, grestws.server, grestws.client, grestws.cli
assert "grestws.transports.picows" not in sys.modules
async def main():
    await grestws.serve(grestws.App(), "127.0.0.1", 0, transport="picows")
try:
    asyncio.run(main())
except ImportError as exc:
    print(exc)
sys.exit(grestws.cli.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_without_picows() -> None:
    """grestws imports and serves without picows; asking for it says what to install."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PICOWS, "serve", "examples.chat.server:app", "--transport", "picows"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip() == "transport='picows' needs picows: pip install 'grestws[picows]'"
    assert "--transport picows needs picows: pip install 'grestws[picows]'" in done.stderr
