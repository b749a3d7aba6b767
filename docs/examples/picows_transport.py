"""picows: the same App served with picows, and a client that dials with picows.

Needs the ``picows`` extra (``pip install 'grestws[picows]'``). Run from the repository
root: ``python docs/examples/picows_transport.py``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import grestws
from grestws.transports.picows import PicowsDialer


class EchoServer(Protocol):
    @grestws.request
    async def echo(self, text: str) -> str: ...


class EchoClient(Protocol):
    @grestws.notify
    async def heard(self, text: str) -> None: ...


EchoApi = grestws.SocketContract("EchoApi", client_to_server=EchoServer, server_to_client=EchoClient).at(
    "/ws/echo"
)


class EchoHandler(EchoServer):
    def __init__(self, conn: grestws.ServerConnection[EchoClient]) -> None:
        self.conn = conn

    async def echo(self, text: str) -> str:
        await self.conn.outgoing.heard(text)
        return text.upper()


class Ears(EchoClient):
    def __init__(self) -> None:
        self.heard_texts: list[str] = []

    async def heard(self, text: str) -> None:
        self.heard_texts.append(text)


app = grestws.App()
app.add(EchoApi, EchoHandler)


async def main() -> None:
    # The server: transport="picows" instead of the default "websockets".
    async with grestws.serve(app, "127.0.0.1", 0, transport="picows", ping_interval=20.0) as server:
        # The client: a PicowsDialer opens its socket (any server will do).
        ears = Ears()
        dialer = PicowsDialer(max_message_size=1 << 20, ping_interval=20.0, ping_timeout=10.0)
        async with grestws.connect(server.url, EchoApi, handlers=ears, dialer=dialer) as client:
            assert await client.outgoing.echo("hello") == "HELLO"
        assert ears.heard_texts == ["hello"]
        print("echoed over picows on", server.urls())


if __name__ == "__main__":
    asyncio.run(main())
