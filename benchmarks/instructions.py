"""CPU instructions per message, counted by valgrind: a measure machine noise cannot blur.

``python -m benchmarks.instructions`` runs each scenario twice under
``valgrind --tool=callgrind`` (with no messages, then with ``--count``), with
``PYTHONHASHSEED=0``, and prints the difference per message and its ratio to plain
websockets. The counts are the process's own (user space): what the kernel does for a
socket is the same for every peer and left out. Four scenarios, the two sides of fan-out
and the two sides of calls:

- ``push``: a client connection is handed the server's frames of one ``Tick`` push, ten per
  ``data_received`` (``--batch``; as the network hands them over), and the next batch after
  a loop iteration. websockets is read the way the benchmark's websockets peer reads it (a task
  awaiting ``recv()`` and decoding with msgspec); grestws calls its typed handler.
- ``broadcast``: a server with 100 client connections (in another process, not counted)
  pushes one ``Tick`` to all of them per loop iteration: ``websockets.broadcast`` against
  ``grestws.broadcast``.
- ``serve``: a server answers one client (a plain websockets client in another process,
  not counted) that keeps 64 small calls in flight: the benchmark's websockets echo
  server (``async for message in ws: await ws.send(message)``) against grestws's typed
  ``echo`` request, its input validated and its result encoded (and the benchmark's
  plain picows echo server with ``--peers picows``). How many frames a read hands over
  depends on the timing of the two processes, so these counts vary by a percent or two
  between runs, where the fan-out ones do not.
- ``call``: a client keeps 64 small calls in flight to its peer's benchmark server (in
  another process, not counted): the benchmark's own pipelined clients, websockets'
  (send the JSON, decode the echo) against grestws's typed ``echo`` calls.

Needs valgrind; a count takes about half a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from grestws.transports import Dialed, Dialer

__all__ = ("main",)

PEERS = ("websockets", "grestws", "grestws-picows")
SCENARIOS = ("push", "broadcast", "serve", "call")
_BATCH = 10
_CONNECTIONS = 100
_WARMUP = 20
_DEPTH = 64
_COLLECTED = re.compile(rb"Collected : (\d+)")

_CLIENTS = """
import asyncio, sys
import grestws
from websockets.asyncio.client import connect
from benchmarks.peers.grestws_peer import BenchApi, _Ticks

async def main(peer: str, url: str, count: int) -> None:
    if peer == "websockets":
        clients = [await connect(url, compression=None) for _ in range(count)]
        async def drain(ws):
            async for _ in ws:
                pass
        readers = [asyncio.ensure_future(drain(ws)) for ws in clients]
    else:
        options = {}
        if peer == "grestws-picows":
            from grestws.transports.picows import PicowsDialer
            options["dialer"] = PicowsDialer()
        handlers = _Ticks(None)
        clients = [await grestws.connect(url, BenchApi, handlers=handlers, **options) for _ in range(count)]
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def _push(peer: str, count: int, batch: int = _BATCH) -> None:
    """Feed ``count`` pushes to one client connection of ``peer``; see the module."""
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import serve
    from websockets.frames import Frame, Opcode

    import grestws
    from benchmarks.payloads import Tick, tick
    from benchmarks.peers.grestws_peer import BenchApi, BenchClient, _Ticks, bench_app
    from grestws.protocol import codec

    received = 0

    def on_tick(_: Tick) -> None:
        nonlocal received
        received += 1

    reader: asyncio.Future[None] | None = None
    if peer == "websockets":
        server = await serve(_wait_closed, "127.0.0.1", 0, compression=None)
        ws = await connect(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", compression=None)
        decoder = msgspec.json.Decoder(Tick)

        async def read() -> None:
            while True:
                on_tick(decoder.decode(await ws.recv(decode=False)))

        reader = asyncio.ensure_future(read())
        payload = msgspec.json.encode(tick(42))
        feed: Callable[[bytes], None] = ws.data_received
    else:
        options: dict[str, Any] = {"transport": "picows"} if peer == "grestws-picows" else {}
        grestws_server = await grestws.serve(bench_app(), "127.0.0.1", 0, **options)
        dialer = _Keeping(peer)
        await grestws.connect(grestws_server.url, BenchApi, handlers=_Ticks(on_tick), dialer=dialer)
        await asyncio.sleep(0.05)  # the client's reader is running
        spec = BenchApi.contract.server_to_client.spec_for(BenchClient.tick)
        payload = bytes(codec.encode_call(spec.prefix, None, tick(42), True))
        feed = dialer.feeder()
    data = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[]) * batch
    for _ in range(_WARMUP):
        feed(data)
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    start = received
    for _ in range(count // batch):
        feed(data)
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    if received - start != count // batch * batch:
        raise SystemExit(f"{peer}: {received - start} of {count} pushes arrived")
    if reader is not None:
        reader.cancel()


class _Keeping:
    """The client's dialer (websockets' or picows'), keeping the transport it opens."""

    def __init__(self, peer: str) -> None:
        from grestws.transports.websockets import WebsocketsDialer

        self.dialer: Dialer = WebsocketsDialer()
        if peer == "grestws-picows":
            from grestws.transports.picows import PicowsDialer

            self.dialer = PicowsDialer()
        self.transport: object = None

    async def __call__(self, url: str, headers: Mapping[str, str], /) -> Dialed:
        dialed = await self.dialer(url, headers)
        self.transport = dialed.transport
        return dialed

    def feeder(self) -> Callable[[bytes], None]:
        """How bytes from the network reach the connection: websockets'
        ``data_received``, or picows' buffer protocol."""
        from grestws.transports.picows import PicowsTransport
        from grestws.transports.websockets import WebsocketsTransport

        transport = self.transport
        if isinstance(transport, WebsocketsTransport):
            return transport.ws.data_received
        assert isinstance(transport, PicowsTransport)
        assert transport.ws is not None
        protocol: Any = transport.ws.underlying_transport.get_protocol()

        def feed(data: bytes) -> None:
            buffer = protocol.get_buffer(len(data))
            buffer[: len(data)] = data
            protocol.buffer_updated(len(data))

        return feed


async def _wait_closed(ws: object) -> None:
    await ws.wait_closed()  # type: ignore[attr-defined]


async def _broadcast(peer: str, count: int) -> None:
    """Push ``count`` ticks to each of the connections of a client process; see the module."""
    import websockets

    import grestws
    from benchmarks.payloads import tick
    from benchmarks.peers.grestws_peer import BenchClient, bench_app

    message = tick(42)
    send: Callable[[], object]
    if peer == "websockets":
        listeners: set[object] = set()

        async def handler(ws: object) -> None:
            listeners.add(ws)
            await _wait_closed(ws)

        server = await websockets.serve(handler, "127.0.0.1", 0, compression=None)
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        encode = msgspec.json.Encoder().encode

        def send() -> object:
            websockets.broadcast(listeners, encode(message))  # type: ignore[arg-type]
            return None
    else:
        options: dict[str, Any] = {"transport": "picows"} if peer == "grestws-picows" else {}
        grestws_server = await grestws.serve(bench_app(), "127.0.0.1", 0, **options)
        url = grestws_server.url

        def send() -> object:
            return grestws.broadcast(grestws_server.connections, BenchClient.tick, message)

    clients = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CLIENTS, peer, url, str(_CONNECTIONS),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert clients.stdout is not None
    try:
        if (await asyncio.wait_for(clients.stdout.readline(), 120)).strip() != b"ready":
            raise SystemExit(f"{peer}: the clients did not connect")
        for _ in range(_WARMUP):
            send()
            await asyncio.sleep(0)
        await asyncio.sleep(0.2)
        for _ in range(count):
            send()
            await asyncio.sleep(0)
        await asyncio.sleep(0.2)
    finally:
        clients.kill()
        await clients.wait()


_CALLER = """
import asyncio, sys
from websockets.asyncio.client import connect

async def main(url: str, head: bytes, body: bytes, count: int, depth: int) -> None:
    async with connect(url, compression=None, max_size=None) as ws:
        if head:  # grestws: the handshake first
            await ws.send(b"h:::{}", text=True)
            if not (await ws.recv(decode=False)).startswith(b"k"):
                raise SystemExit("the handshake was refused")
        sent = answered = 0
        async def call() -> None:
            nonlocal sent
            sent += 1
            await ws.send((head % sent) + body if head else body, text=True)
        for _ in range(min(depth, count)):
            await call()
        while answered < count:
            await ws.recv(decode=False)
            answered += 1
            if sent < count:
                await call()

asyncio.run(main(sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode(), int(sys.argv[4]), int(sys.argv[5])))
"""


async def _serve(peer: str, count: int) -> None:
    """Answer ``count`` calls (after a warm-up) of a client in another process; see the module."""
    from websockets.asyncio.server import serve

    import grestws
    from benchmarks.payloads import ECHO
    from benchmarks.peers.grestws_peer import BenchApi, BenchServer, bench_app

    body = msgspec.json.encode(ECHO)
    if peer == "websockets":

        async def echo(ws: Any) -> None:
            async for message in ws:
                await ws.send(message)

        server = await serve(echo, "127.0.0.1", 0, compression=None)
        url, head = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", b""
    elif peer == "picows":
        from benchmarks.peers import picows_peer

        url, head = f"ws://127.0.0.1:{await picows_peer._serve()}/echo", b""
    else:
        options: dict[str, Any] = {"transport": "picows"} if peer == "grestws-picows" else {}
        grestws_server = await grestws.serve(bench_app(), "127.0.0.1", 0, **options)
        url = grestws_server.url + BenchApi.path
        head = BenchApi.contract.client_to_server.spec_for(BenchServer.echo).prefix + b"%d:"
    for calls in (_WARMUP * _DEPTH, count):
        if not calls:
            continue
        caller = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CALLER, url, head.decode(), body.decode(), str(calls), str(_DEPTH)
        )  # fmt: skip
        if await asyncio.wait_for(caller.wait(), 300) != 0:
            raise SystemExit(f"{peer}: the caller failed")


async def _call(peer: str, count: int) -> None:
    """Make ``count`` calls (after a warm-up) to ``peer``'s server in another process; see
    the module."""
    from benchmarks.common import PEER_ENV, server_command
    from benchmarks.peers.grestws_peer import GrestwsPeer
    from benchmarks.peers.grestws_picows_peer import GrestwsPicowsPeer
    from benchmarks.peers.websockets_peer import WebsocketsPeer
    from benchmarks.shapes import Peer

    peers: dict[str, type[Peer[Any]]] = {
        "websockets": WebsocketsPeer,
        "grestws": GrestwsPeer,
        "grestws-picows": GrestwsPicowsPeer,
    }
    server = await asyncio.create_subprocess_exec(
        *server_command(peer, "asyncio", None), stdout=subprocess.PIPE, env=PEER_ENV
    )
    assert server.stdout is not None
    try:
        port = int(await asyncio.wait_for(server.stdout.readline(), 120))
        client = peers[peer]("127.0.0.1", port)
        conn = await client.connect()
        await client.pipeline(conn, _WARMUP * _DEPTH, _DEPTH)
        if count:
            await client.pipeline(conn, count, _DEPTH)
        await client.close(conn)
    finally:
        server.kill()
        await server.wait()


def _run(scenario: str, peer: str, count: int, batch: int) -> None:
    """The process valgrind counts."""
    if scenario == "push":
        coroutine = _push(peer, count, batch)
    elif scenario == "broadcast":
        coroutine = _broadcast(peer, count)
    elif scenario == "serve":
        coroutine = _serve(peer, count)
    else:
        coroutine = _call(peer, count)
    asyncio.run(coroutine)


def count_instructions(valgrind: str, scenario: str, peer: str, count: int, batch: int = _BATCH) -> int:
    """Instructions of one run of ``scenario`` for ``peer`` with ``count`` messages."""
    command = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    command += ["-m", "benchmarks.instructions", "--batch", str(batch), "--run", scenario, peer, str(count)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, env=env, timeout=600, check=False)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{scenario} {peer}: failed\n{done.stderr.decode(errors='replace')[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument(
        "--count",
        type=int,
        default=20_000,
        help="pushes per push run, calls per serve and call run (broadcasts: 1/100)",
    )
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated peers")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument(
        "--batch", type=int, default=_BATCH, help=f"push frames per data_received (default {_BATCH})"
    )
    parser.add_argument("--run", nargs=3, metavar=("SCENARIO", "PEER", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        scenario, peer, count = args.run
        _run(scenario, peer, int(count), args.batch)
        return
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (apt install valgrind)")
    print("| scenario | peer | instructions per message | ÷ websockets |")
    print("|---|---|--:|--:|")
    for scenario in args.scenarios.split(","):
        messages = args.count // _CONNECTIONS if scenario == "broadcast" else args.count
        delivered = messages * _CONNECTIONS if scenario == "broadcast" else messages
        base: float | None = None
        for peer in args.peers.split(","):
            empty = count_instructions(valgrind, scenario, peer, 0, args.batch)
            full = count_instructions(valgrind, scenario, peer, messages, args.batch)
            each = (full - empty) / delivered
            if peer == "websockets":
                base = each
            ratio = f"{each / base:.2f}" if base else ""
            print(f"| {scenario} | {peer} | {each:,.0f} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
