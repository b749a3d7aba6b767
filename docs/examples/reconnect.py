"""Clients that survive the network: reconnect, setup, recovery and the pool.

Run it: ``python docs/examples/reconnect.py``. It serves a small ticker App on 127.0.0.1,
connects a client, restarts the server under it, cuts its link while prices are pushed,
and shows that the client comes back by itself and gets every price it missed, once.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import msgspec

import grestws

# -- the contract ------------------------------------------------------------------------


class Price(msgspec.Struct):
    symbol: str
    cents: int


class TickerServer(Protocol):
    @grestws.request(idempotent=True)  # safe to send again after a drop: a client does
    async def follow(self, symbol: str) -> int:
        """Get the symbol's prices pushed from now on; returns the last price."""
        ...


class TickerClient(Protocol):
    @grestws.notify
    async def price(self, price: Price) -> None: ...


TickerApi = grestws.SocketContract(
    "TickerApi", client_to_server=TickerServer, server_to_client=TickerClient
).at("/ws/ticker")

# -- the server --------------------------------------------------------------------------

app = grestws.App(recovery=grestws.Recovery(window=60))  # keep what clients miss for 60 s
last: dict[str, int] = {}


class Ticker(TickerServer):
    def __init__(self, conn: grestws.ServerConnection[TickerClient]) -> None:
        self.conn = conn

    async def follow(self, symbol: str) -> int:
        app.rooms.join(self.conn, f"symbol:{symbol}")
        return last.get(symbol, 0)


app.add(TickerApi, Ticker)


async def publish(symbol: str, cents: int) -> None:
    last[symbol] = cents
    await app.rooms.send(f"symbol:{symbol}", TickerClient.price, Price(symbol, cents))


# -- the client --------------------------------------------------------------------------


async def main() -> None:
    server = await grestws.serve(app, "127.0.0.1", 0)
    port = server.port
    seen: list[int] = []
    links: list[grestws.LinkInfo] = []
    got_all = asyncio.Event()
    dropped = asyncio.Event()
    tokens = iter(range(1, 1000))

    def token() -> dict[str, str]:
        return {"authorization": f"Bearer t{next(tokens)}"}  # called again for each connection

    async def setup(link: grestws.LinkInfo) -> None:
        # Runs on the first connection and on every reconnect, before other calls go out.
        links.append(link)
        if link.recovered is not True:  # a new session: nothing was kept for this client
            await client.outgoing.follow("ACME")

    client = grestws.Client(f"ws://127.0.0.1:{port}", TickerApi, headers=token, setup=setup, recover=True)

    @client.on(TickerClient.price)
    async def on_price(price: Price) -> None:
        seen.append(price.cents)
        if len(seen) == 10:
            got_all.set()

    client.on_drop(lambda drop: dropped.set())
    await client.connect()

    # 1. The server restarts gracefully: its clients get 1012 and come back at once.
    await server.close()
    await asyncio.wait_for(dropped.wait(), 5)
    server = await grestws.serve(app, "127.0.0.1", port)
    assert await client.outgoing.follow("ACME") == 0  # waits for the connection, then runs
    print("reconnected:", links[-1])

    # 2. The link drops while prices go out; the client gets every one it missed, once.
    for cents in range(100, 105):
        await publish("ACME", cents)
    dropped.clear()
    for conn in server.connections:
        conn.drop(1011, "the network went away")
    await asyncio.wait_for(dropped.wait(), 5)
    for cents in range(105, 110):
        await publish("ACME", cents)  # the client is away: these are kept for it
    await asyncio.wait_for(got_all.wait(), 5)
    assert seen == list(range(100, 110)), seen
    print("recovered:", links[-1].recovered, "prices:", seen)

    await client.disconnect()
    await server.close()

    # 3. A pool shares one connection per server and identity among tasks.
    server = await grestws.serve(app, "127.0.0.1", 0)
    connects: list[str] = []
    app.on_connect(lambda conn: connects.append(conn.id))
    async with grestws.ClientPool() as pool:

        async def quote() -> int:
            async with pool.get(server.url, TickerApi, headers={"authorization": "Bearer svc"}) as shared:
                return await shared.outgoing.follow("ACME")

        quotes = await asyncio.gather(*(quote() for _ in range(10)))
    assert len(connects) == 1
    print("pool:", len(quotes), "tasks, one connection, last price", quotes[0])
    await server.close()


if __name__ == "__main__":
    asyncio.run(main())
